//! Grounding: the host, not the model, finds each evidence quote in the
//! converted text.
//!
//! Both texts are normalized first (case, runs of whitespace, the many
//! Unicode dashes, quotes and the Lancet's decimal `·`, soft hyphens), with
//! a map back to code points of the original text. Then:
//!
//! - EXACT: the normalized quote occurs in the normalized text.
//! - FUZZY: some window of the text's words matches the quote's words with
//!   a similarity of at least [`FUZZY_THRESHOLD`] (1 − word-level edit
//!   distance / quote length), for quotes of at least [`FUZZY_MIN_WORDS`]
//!   words — a paraphrase-free quote with OCR-ish or converter noise.
//! - NOT_FOUND: neither; the value is flagged as ungrounded.

use serde::{Deserialize, Serialize};

use crate::plugins::converter::PageRange;

/// Word-level similarity from which a quote counts as found (fuzzily).
pub const FUZZY_THRESHOLD: f64 = 0.8;
/// Shortest quote, in words, that may match fuzzily.
pub const FUZZY_MIN_WORDS: usize = 4;
/// Longest quote kept, in words: evidence is a sentence or a table row, and
/// the fuzzy matcher's cost grows with the quote (a model's 400-word
/// "quote" would otherwise buy seconds of CPU per value).
pub const MAX_QUOTE_WORDS: usize = 80;

/// `quote` cut after its first [`MAX_QUOTE_WORDS`] words; true when cut.
pub fn cap_quote(quote: &str) -> (&str, bool) {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in quote.char_indices() {
        let alnum = c.is_alphanumeric();
        if alnum && !in_word {
            words += 1;
            if words > MAX_QUOTE_WORDS {
                return (quote[..i].trim_end(), true);
            }
        }
        in_word = alnum;
    }
    (quote, false)
}

/// A grounding verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Verbatim (after normalization).
    Exact,
    /// Close enough (see [`FUZZY_THRESHOLD`]).
    Fuzzy,
    /// Not in the text.
    NotFound,
}

/// Where a quote is, if it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Located {
    /// The verdict.
    pub verdict: Verdict,
    /// Code-point span in the text (start inclusive, end exclusive).
    pub start: Option<u32>,
    /// End of the span.
    pub end: Option<u32>,
    /// Page of the start.
    pub page: Option<u32>,
    /// Word-level similarity (1 for exact).
    pub similarity: f64,
}

/// A text prepared for grounding many quotes.
pub struct Grounder<'a> {
    text: &'a str,
    norm: String,
    /// For each byte of `norm`, the code point of the original it came from.
    origin: Vec<u32>,
    /// Words of `norm`: (byte start, byte end).
    words: Vec<(usize, usize)>,
    pages: &'a [PageRange],
    /// Table cells' spans in text order (see [`Grounder::with_cells`]).
    cells: Vec<(u32, u32)>,
}

fn normal_char(c: char) -> Option<char> {
    Some(match c {
        '\u{00AD}' => return None, // soft hyphen
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' | '`' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => '"',
        '\u{00B7}' | '\u{2027}' => '.',
        c if c.is_whitespace() => ' ',
        c => c,
    })
}

/// Normalizes `s`; returns the text and, per output byte, the input code point.
fn normalize(s: &str) -> (String, Vec<u32>) {
    let mut out = String::with_capacity(s.len());
    let mut origin = Vec::with_capacity(s.len());
    let mut last_space = true;
    for (cp, c) in s.chars().enumerate() {
        let Some(n) = normal_char(c) else { continue };
        if n == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        for l in n.to_lowercase() {
            let before = out.len();
            out.push(l);
            origin.extend(std::iter::repeat_n(cp as u32, out.len() - before));
        }
    }
    if out.ends_with(' ') {
        out.pop();
        origin.pop();
    }
    (out, origin)
}

/// Whether a table cell's text holds `value`: a number in it equal to a
/// numeric value, or a text value within it (case and spacing aside).
fn cell_holds(cell: &str, value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => {
            let Some(want) = n.as_f64() else {
                return false;
            };
            numbers_in(cell).any(|x| (x - want).abs() <= 1e-9 * want.abs().max(1.0))
        }
        serde_json::Value::String(s) => {
            let (want, _) = normalize(s);
            let (have, _) = normalize(cell);
            !want.is_empty() && have.contains(&want)
        }
        _ => false,
    }
}

/// The numbers written in `text` ("1,204", "-3.5", "12"), in order.
fn numbers_in(text: &str) -> impl Iterator<Item = f64> + '_ {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    // The two characters before the current one: a minus sign is one
    // that does not follow a word or number ("12-16" is a range).
    let (mut prev, mut before): (Option<char>, Option<char>) = (None, None);
    while let Some(c) = chars.next() {
        let next_digit = chars.peek().is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() {
            if current.is_empty()
                && matches!(prev, Some('-' | '\u{2212}'))
                && !before.is_some_and(char::is_alphanumeric)
            {
                current.push('-');
            }
            current.push(c);
        } else if c == '.' && next_digit && !current.contains('.') {
            current.push('.');
        } else if c == ',' && next_digit && !current.is_empty() && !current.contains('.') {
            // A thousands separator.
        } else if !current.is_empty() {
            out.extend(current.parse::<f64>().ok());
            current.clear();
        }
        (before, prev) = (prev, Some(c));
    }
    out.extend(current.parse::<f64>().ok());
    out.into_iter()
}

/// Most occurrences of one quote considered.
pub const MAX_OCCURRENCES: usize = 256;

/// Whether `text[b..e]` (a match) does not cut a number: a digit at either
/// end of the match must not continue into another digit (directly, or
/// past a decimal point or thousands separator).
fn whole_number(text: &str, b: usize, e: usize) -> bool {
    let m = &text[b..e];
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let before: Vec<char> = text[..b].chars().rev().take(2).collect();
    let after: Vec<char> = text[e..].chars().take(2).collect();
    let cuts_before = digit(m.chars().next())
        && (digit(before.first().copied())
            || (matches!(before.first(), Some('.' | ',')) && digit(before.get(1).copied())));
    let cuts_after = digit(m.chars().last())
        && (digit(after.first().copied())
            || (matches!(after.first(), Some('.' | ',')) && digit(after.get(1).copied())));
    !cuts_before && !cuts_after
}

fn words(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(st) = start.take() {
            out.push((st, i));
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

impl<'a> Grounder<'a> {
    /// Prepares `text` (with its page ranges).
    pub fn new(text: &'a str, pages: &'a [PageRange]) -> Self {
        let (norm, origin) = normalize(text);
        let words = words(&norm);
        Self {
            text,
            norm,
            origin,
            words,
            pages,
            cells: Vec::new(),
        }
    }

    /// Tells the grounder where the text's table cells are (code-point
    /// spans), so a quote across a table row can be narrowed to the cell
    /// that holds the value ([`Grounder::value_cell`]).
    pub fn with_cells(mut self, mut cells: Vec<(u32, u32)>) -> Self {
        cells.sort_unstable();
        self.cells = cells;
        self
    }

    /// The one table cell, among those the span `start..end` touches, that
    /// holds `value` (a number equal to it, or the text of it), when the
    /// span touches several cells. None when it touches fewer than two, or
    /// the value is in none or in more than one.
    pub fn value_cell(
        &self,
        start: u32,
        end: u32,
        value: &serde_json::Value,
    ) -> Option<(u32, u32)> {
        let first = self.cells.partition_point(|c| c.1 <= start);
        let touched: Vec<(u32, u32)> = self.cells[first..]
            .iter()
            .take_while(|c| c.0 < end)
            .copied()
            .filter(|c| c.1 > c.0)
            .collect();
        if touched.len() < 2 {
            return None;
        }
        // The touched stretch of the text once, not a walk from the start
        // of the text per cell.
        let from = touched[0].0;
        let stretch: Vec<char> = self
            .text
            .chars()
            .skip(from as usize)
            .take((touched[touched.len() - 1].1 - from) as usize)
            .collect();
        let holds = |&(a, b): &(u32, u32)| -> bool {
            let text: String = stretch
                .get((a - from) as usize..(b - from) as usize)
                .map(|cs| cs.iter().collect())
                .unwrap_or_default();
            cell_holds(&text, value)
        };
        let mut hits = touched.iter().filter(|c| holds(c));
        match (hits.next(), hits.next()) {
            (Some(&c), None) => Some(c),
            _ => None,
        }
    }

    fn page_of(&self, cp: u32) -> Option<u32> {
        self.pages
            .iter()
            .find(|p| p.start <= cp && cp < p.end)
            .or_else(|| self.pages.last().filter(|p| cp == p.end))
            .map(|p| p.number)
    }

    fn span(&self, b_start: usize, b_end: usize) -> (u32, u32) {
        let start = self.origin[b_start];
        let end = self.origin[b_end - 1] + 1;
        (start, end)
    }

    /// Locates `quote`; of several occurrences, one on `page_hint` (the
    /// page the extractor named) wins, else the first.
    pub fn locate(&self, quote: &str, page_hint: Option<u32>) -> Located {
        self.locate_near(quote, page_hint, &[])
    }

    /// Every exact occurrence of `quote` as code-point spans (verbatim;
    /// else after normalization), in text order, at most [`MAX_OCCURRENCES`].
    /// A number is matched whole: "12" is not found in "120" or "3.12".
    pub fn occurrences(&self, quote: &str) -> Vec<(u32, u32)> {
        let trimmed = quote.trim();
        if trimmed.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            let n = trimmed.chars().count() as u32;
            // Code points counted from one match to the next, not from 0.
            let (mut at_byte, mut at_cp) = (0usize, 0u32);
            let found: Vec<(u32, u32)> = self
                .text
                .match_indices(trimmed)
                .filter(|(b, _)| whole_number(self.text, *b, *b + trimmed.len()))
                .take(MAX_OCCURRENCES)
                .map(|(b, _)| {
                    at_cp += self.text[at_byte..b].chars().count() as u32;
                    at_byte = b;
                    (at_cp, at_cp + n)
                })
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        let (q, _) = normalize(quote);
        if q.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
            return Vec::new();
        }
        self.norm
            .match_indices(q.as_str())
            .filter(|(b, _)| whole_number(&self.norm, *b, *b + q.len()))
            .take(MAX_OCCURRENCES)
            .map(|(b, _)| self.span(b, b + q.len()))
            .collect()
    }

    /// Locates `quote`. Of several exact occurrences, the one nearest the
    /// `anchors` (spans of the value's other, distinctive evidence: a row
    /// label, a column header) wins; without anchors, one on `page_hint`,
    /// else the first.
    pub fn locate_near(
        &self,
        quote: &str,
        page_hint: Option<u32>,
        anchors: &[(u32, u32)],
    ) -> Located {
        let found = self.occurrences(quote);
        let distance = |&(s, e): &(u32, u32)| {
            anchors
                .iter()
                .map(|&(a, b)| if e <= a { a - e } else { s.saturating_sub(b) })
                .min()
                .unwrap_or(0)
        };
        let chosen = if anchors.is_empty() {
            found
                .iter()
                .find(|o| page_hint.is_some() && self.page_of(o.0) == page_hint)
                .or(found.first())
        } else {
            found.iter().min_by_key(|o| (distance(o), o.0))
        };
        if let Some(&(start, end)) = chosen {
            return Located {
                verdict: Verdict::Exact,
                start: Some(start),
                end: Some(end),
                page: self.page_of(start),
                similarity: 1.0,
            };
        }
        let (q, _) = normalize(quote);
        let not_found = Located {
            verdict: Verdict::NotFound,
            start: None,
            end: None,
            page: None,
            similarity: 0.0,
        };
        if q.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
            return not_found;
        }
        let qw: Vec<&str> = words(&q).iter().map(|&(s, e)| &q[s..e]).collect();
        if qw.len() < FUZZY_MIN_WORDS || self.words.is_empty() {
            return not_found;
        }
        let tw: Vec<&str> = self.words.iter().map(|&(s, e)| &self.norm[s..e]).collect();
        // Candidate windows: those sharing the most words with the quote
        // (a cheap filter), then edit similarity on the best few.
        let m = qw.len();
        let qset: std::collections::HashSet<&str> = qw.iter().copied().collect();
        let hits: Vec<u32> = tw.iter().map(|w| u32::from(qset.contains(w))).collect();
        let mut prefix = vec![0u32; hits.len() + 1];
        for (i, h) in hits.iter().enumerate() {
            prefix[i + 1] = prefix[i] + h;
        }
        let win = m.min(tw.len());
        let mut cands: Vec<(u32, usize)> = (0..=tw.len() - win)
            .map(|i| (prefix[i + win] - prefix[i], i))
            .filter(|(h, _)| f64::from(*h) >= FUZZY_THRESHOLD * m as f64 * 0.8)
            .collect();
        cands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        cands.truncate(8);
        let mut best: Option<(f64, usize, usize)> = None;
        // Let the window breathe by a few words either way.
        let slack = (m / 5).max(1);
        let shortest = m.saturating_sub(slack).max(1);
        for (_, i) in cands {
            for lo in i.saturating_sub(slack)..=i {
                // One edit-distance table gives every window length from `lo`.
                let hi_max = (lo + m + slack).min(tw.len());
                let dist = edit_distances(&qw, &tw[lo..hi_max]);
                for hi in (lo + shortest).min(hi_max)..=hi_max {
                    if hi <= lo {
                        continue;
                    }
                    let d = dist[hi - lo];
                    let sim = 1.0 - d as f64 / m.max(hi - lo) as f64;
                    if best.is_none_or(|(b, _, _)| sim > b) {
                        best = Some((sim, lo, hi));
                    }
                }
            }
        }
        match best {
            Some((sim, lo, hi)) if sim >= FUZZY_THRESHOLD => {
                let (start, end) = self.span(self.words[lo].0, self.words[hi - 1].1);
                Located {
                    verdict: Verdict::Fuzzy,
                    start: Some(start),
                    end: Some(end),
                    page: self.page_of(start),
                    similarity: (sim * 1000.0).round() / 1000.0,
                }
            }
            _ => not_found,
        }
    }
}

/// Word-level Levenshtein distances from `a` to every prefix of `b`
/// (`out[j]` is the distance to `b[..j]`): O(|a|·|b|).
fn edit_distances(a: &[&str], b: &[&str]) -> Vec<usize> {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_read_whole_with_signs_but_not_ranges() {
        let all = |t: &str| numbers_in(t).collect::<Vec<f64>>();
        assert_eq!(all("12 (8-16)"), [12.0, 8.0, 16.0]);
        assert_eq!(all("-3.5 vs \u{2212}2"), [-3.5, -2.0]);
        assert_eq!(all("1,204 (3.2%)"), [1204.0, 3.2]);
        assert_eq!(all("no numbers"), Vec::<f64>::new());
    }

    use super::*;

    const TEXT: &str = "Methods\n\nA total of 240 patients were randomly  assigned to drug X (n = 121)\nor placebo (n = 119).\n\nMean reduction was 12·4 mmHg — as planned.";

    fn pages() -> Vec<PageRange> {
        vec![
            PageRange {
                number: 1,
                start: 0,
                end: 60,
            },
            PageRange {
                number: 2,
                start: 60,
                end: TEXT.chars().count() as u32,
            },
        ]
    }

    fn slice(start: u32, end: u32) -> String {
        TEXT.chars()
            .skip(start as usize)
            .take((end - start) as usize)
            .collect()
    }

    #[test]
    fn verbatim_quotes_are_exact_with_code_point_spans() {
        let p = pages();
        let g = Grounder::new(TEXT, &p);
        let l = g.locate("randomly assigned to drug X (n = 121) or placebo", None);
        assert_eq!(l.verdict, Verdict::Exact);
        let s = slice(l.start.unwrap(), l.end.unwrap());
        assert!(s.starts_with("randomly") && s.ends_with("placebo"), "{s}");
        assert_eq!(l.page, Some(1));
        // Case, dashes and the Lancet's decimal point are normalized.
        let l = g.locate("mean reduction was 12.4 mmHg - as planned", None);
        assert_eq!(l.verdict, Verdict::Exact);
        assert_eq!(l.page, Some(2));
        assert_eq!(
            slice(l.start.unwrap(), l.end.unwrap()),
            "Mean reduction was 12·4 mmHg — as planned"
        );
    }

    #[test]
    fn near_quotes_are_fuzzy_and_invented_ones_not_found() {
        let p = pages();
        let g = Grounder::new(TEXT, &p);
        let l = g.locate(
            "A total of 240 patients were randomised assigned to drug X",
            None,
        );
        assert_eq!(l.verdict, Verdict::Fuzzy, "{l:?}");
        assert!(l.similarity >= FUZZY_THRESHOLD && l.similarity < 1.0);
        assert!(slice(l.start.unwrap(), l.end.unwrap()).starts_with("A total of 240"));
        let l = g.locate("Participants were enrolled at 40 hospitals in Europe", None);
        assert_eq!(l.verdict, Verdict::NotFound);
        assert_eq!(l.start, None);
        // A paraphrase is not the paper's words.
        let l = g.locate(
            "two hundred forty people got the drug or a dummy pill",
            None,
        );
        assert_eq!(l.verdict, Verdict::NotFound);
        assert_eq!(g.locate("", None).verdict, Verdict::NotFound);
    }

    #[test]
    fn long_quotes_are_capped_and_matching_stays_fast() {
        let long: String = (0..400).map(|i| format!("word{} ", i % 37)).collect();
        let (capped, cut) = cap_quote(&long);
        assert!(cut);
        assert_eq!(words(capped).len(), MAX_QUOTE_WORDS);
        assert_eq!(cap_quote("a short quote"), ("a short quote", false));
        // A near-miss quote of the maximal length against a long text whose
        // words all occur in it: every window is a candidate.
        let text: String = (0..40_000).map(|i| format!("word{} ", i % 41)).collect();
        let p = vec![PageRange {
            number: 1,
            start: 0,
            end: text.chars().count() as u32,
        }];
        let g = Grounder::new(&text, &p);
        let started = std::time::Instant::now();
        let l = g.locate(capped, None);
        // Generous for an unoptimised build; the unbounded matcher took
        // tens of seconds on a 400-word quote.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_ne!(l.verdict, Verdict::Exact);
    }

    #[test]
    fn numbers_match_whole() {
        let text = "n = 120, mean 3.12 (SD 12,5); 12 withdrew";
        let p = vec![PageRange {
            number: 1,
            start: 0,
            end: text.chars().count() as u32,
        }];
        let g = Grounder::new(text, &p);
        let l = g.locate("12", None);
        assert_eq!(slice_of(text, &l), "12");
        assert_eq!(l.start, Some(30), "{l:?}");
        assert_eq!(g.occurrences("12"), [(30, 32)]);
        // A word still matches inside a longer one.
        assert_eq!(g.locate("withdr", None).verdict, Verdict::Exact);
    }

    fn slice_of(text: &str, l: &Located) -> String {
        text.chars()
            .skip(l.start.unwrap() as usize)
            .take((l.end.unwrap() - l.start.unwrap()) as usize)
            .collect()
    }

    #[test]
    fn of_several_occurrences_the_one_nearest_the_anchors_wins() {
        let text = "Baseline weight 12.3 kg in both arms.\n\nTable 2 Outcomes\n\
                    HbA1c | Placebo 8.1 | Drug 12.3\nLDL | Placebo 3.2 | Drug 2.9";
        let p = vec![PageRange {
            number: 1,
            start: 0,
            end: text.chars().count() as u32,
        }];
        let g = Grounder::new(text, &p);
        let anchor = g.occurrences("HbA1c | Placebo 8.1 | Drug");
        assert_eq!(anchor.len(), 1);
        assert_eq!(g.locate("12.3", None).start, Some(16), "the first, alone");
        let near = g.locate_near("12.3", None, &anchor);
        assert_eq!(slice_of(text, &near), "12.3");
        assert!(near.start.unwrap() > anchor[0].1, "{near:?} {anchor:?}");
    }

    #[test]
    fn of_several_occurrences_the_one_on_the_named_page_wins() {
        let text = "placebo group\n\nmore text here\n\nplacebo group";
        let p = vec![
            PageRange {
                number: 1,
                start: 0,
                end: 30,
            },
            PageRange {
                number: 2,
                start: 30,
                end: text.chars().count() as u32,
            },
        ];
        let g = Grounder::new(text, &p);
        assert_eq!(g.locate("placebo group", None).page, Some(1));
        let l = g.locate("placebo group", Some(2));
        assert_eq!((l.page, l.start), (Some(2), Some(31)));
    }
}
