//! From lines to blocks: paragraphs, headings and table rows, and how two
//! lines of one paragraph are joined (a space, or a word hyphenated across
//! the line break put back together).

use std::collections::{HashMap, HashSet};

use crate::layout::Line;

/// What a block of lines is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// The document's title (largest text on its first page).
    Title,
    /// A section heading (text set larger than the body).
    Heading,
    /// Running text: lines joined into one paragraph.
    Paragraph,
    /// Table rows: each line kept as its own row, cells kept apart.
    Table,
}

/// A run of lines, in reading order, that forms one block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// What the block is.
    pub kind: BlockKind,
    /// Indices into the document's lines.
    pub lines: Vec<usize>,
}

/// How two consecutive lines of a paragraph are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// With a space.
    Space,
    /// The first line ends in a hyphen that only splits a word: drop it and
    /// join without a space ("treat-" + "ment" = "treatment").
    Dehyphenate,
    /// The hyphen belongs to the word: keep it, no space
    /// ("placebo-" + "controlled" = "placebo-controlled").
    KeepHyphen,
}

/// Second parts of compounds that are written with a hyphen; a line break
/// after "placebo-" before one of these keeps the hyphen.
const COMPOUND_HEADS: &[&str] = &[
    "based",
    "blind",
    "blinded",
    "controlled",
    "related",
    "term",
    "up",
    "specific",
    "dependent",
    "induced",
    "free",
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "level",
    "scale",
    "wide",
    "center",
    "centre",
    "label",
    "masked",
    "treated",
    "matched",
    "adjusted",
    "reported",
    "associated",
    "sectional",
    "risk",
    "hour",
    "hours",
    "minute",
    "minutes",
    "dose",
    "group",
    "income",
    "value",
    "making",
    "effect",
    "effects",
    "fold",
    "lived",
];

/// First parts of compounds written with a hyphen ("non-", "self-", ...).
/// Only words that are not also common hyphenation points ("pre-", "inter-"
/// and "anti-" split "prevention", "intervention" and "antibiotic").
const COMPOUND_MODIFIERS: &[&str] = &[
    "non",
    "self",
    "well",
    "long",
    "short",
    "high",
    "low",
    "double",
    "single",
    "triple",
    "placebo",
    "cross",
    "follow",
    "open",
    "intention",
    "semi",
    "quasi",
    "half",
    "full",
    "first",
    "second",
    "third",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
];

/// Words and hyphenated compounds of a document, for deciding whether a
/// hyphen at a line break splits a word or belongs to it.
#[derive(Debug, Default)]
pub struct Vocabulary {
    words: HashMap<String, u32>,
    compounds: HashSet<String>,
}

impl Vocabulary {
    /// Collects the words of every line.
    pub fn from_lines(lines: &[Line]) -> Vocabulary {
        let mut vocab = Vocabulary::default();
        for line in lines {
            for cell in &line.cells {
                for token in cell.text.split(|c: char| !(c.is_alphabetic() || c == '-')) {
                    let token = token.trim_matches('-').to_lowercase();
                    if token.is_empty() {
                        continue;
                    }
                    if token.contains('-') {
                        vocab.compounds.insert(token.clone());
                    }
                    for word in token.split('-').filter(|w| !w.is_empty()) {
                        *vocab.words.entry(word.to_string()).or_default() += 1;
                    }
                }
            }
        }
        vocab
    }

    /// How to join `prev` (a line's text) to `next` (the following line's).
    pub fn join(&self, prev: &str, next: &str) -> Join {
        let mut chars = prev.chars().rev();
        let hyphen = chars.next();
        let before = chars.next();
        let soft = hyphen == Some('\u{AD}');
        if !(matches!(hyphen, Some('-' | '\u{2010}' | '\u{AD}'))
            && before.is_some_and(char::is_alphabetic))
        {
            return Join::Space;
        }
        let Some(first) = next.chars().next() else {
            return Join::Space;
        };
        if soft {
            // A soft hyphen is, by definition, a hyphenation point.
            return Join::Dehyphenate;
        }
        if !first.is_alphabetic() || first.is_uppercase() {
            // "COVID-" + "19", "non-" + "Hodgkin": the hyphen is part of it.
            return Join::KeepHyphen;
        }
        let prefix: String = prev[..prev.len() - hyphen.map_or(0, char::len_utf8)]
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic())
            .collect::<Vec<char>>()
            .into_iter()
            .rev()
            .collect::<String>()
            .to_lowercase();
        let suffix: String = next
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect::<String>()
            .to_lowercase();
        // The document itself is the best dictionary: if it spells the word
        // whole elsewhere, or with its hyphen, follow it.
        if self.words.contains_key(&format!("{prefix}{suffix}")) {
            return Join::Dehyphenate;
        }
        if self.compounds.contains(&format!("{prefix}-{suffix}")) {
            return Join::KeepHyphen;
        }
        if COMPOUND_HEADS.contains(&suffix.as_str())
            || COMPOUND_MODIFIERS.contains(&prefix.as_str())
        {
            return Join::KeepHyphen;
        }
        // Typesetters hyphenate words far more often than they break a
        // compound at its hyphen.
        Join::Dehyphenate
    }
}

/// Groups lines (in reading order) into blocks and tells headings apart.
pub fn blocks(lines: &[Line], body_size: f32) -> Vec<Block> {
    let pitches = typical_pitches(lines);
    let mut blocks: Vec<Block> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(block) = blocks.last_mut() {
            let prev = &lines[i - 1];
            let same = if line.is_row() {
                block.kind == BlockKind::Table && same_flow(prev, line)
            } else {
                block.kind == BlockKind::Paragraph && continues(prev, line, &pitches, body_size)
            };
            if same {
                block.lines.push(i);
                continue;
            }
        }
        blocks.push(Block {
            kind: if line.is_row() {
                BlockKind::Table
            } else {
                BlockKind::Paragraph
            },
            lines: vec![i],
        });
    }
    absorb_row_labels(&mut blocks, lines);
    mark_headings(&mut blocks, lines, body_size);
    blocks
}

/// Key of a run of same-sized lines in one region: (page, region, size in
/// half points).
type PitchKey = (u32, u32, i32);

fn pitch_key(line: &Line) -> PitchKey {
    (line.page, line.region, (line.size * 2.0).round() as i32)
}

/// The usual distance between baselines of same-sized lines in each
/// region: larger gaps separate paragraphs. Sized, because a two-line
/// title is set looser than the text under it.
fn typical_pitches(lines: &[Line]) -> HashMap<PitchKey, f32> {
    let mut all: HashMap<PitchKey, Vec<f32>> = HashMap::new();
    for pair in lines.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if same_flow(a, b) && !a.is_row() && !b.is_row() {
            let pitch = b.baseline - a.baseline;
            let em = a.size.max(b.size).max(1.0);
            if pitch > 0.5 * em && pitch < 3.0 * em {
                all.entry(pitch_key(a)).or_default().push(pitch);
            }
        }
    }
    // One distance alone says nothing about what is usual.
    all.into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(k, mut v)| {
            v.sort_by(f32::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect()
}

fn same_flow(a: &Line, b: &Line) -> bool {
    a.page == b.page && a.region == b.region
}

/// Whether `b` continues the paragraph that `a` is in.
fn continues(a: &Line, b: &Line, pitches: &HashMap<PitchKey, f32>, body_size: f32) -> bool {
    let em = a.size.max(b.size).max(1.0);
    if (a.size - b.size).abs() > 0.12 * em {
        return false;
    }
    let a_text = a.text();
    let b_text = b.text();
    let ends_sentence = a_text.trim_end().ends_with(['.', '?', '!', ':']);
    let starts_lower = b_text.chars().next().is_some_and(|c| c.is_lowercase());
    let ends_hyphen = a_text.ends_with(['-', '\u{2010}', '\u{AD}']);
    if !same_flow(a, b) {
        // A jump to the next column or page: the paragraph goes on only if
        // the sentence visibly does.
        return (ends_hyphen || !ends_sentence) && starts_lower;
    }
    let pitch = b.baseline - a.baseline;
    let typical = pitches.get(&pitch_key(a)).copied().unwrap_or(1.25 * em);
    if pitch <= 0.0 || pitch > typical * 1.15 + 0.5 {
        return false;
    }
    // Titles and headings are often centred or ragged: lines of the same
    // large size, set at their usual distance, are one block.
    if a.size >= 1.12 * body_size && b.size >= 1.12 * body_size {
        return true;
    }
    // A first-line indent starts a paragraph.
    if b.x0 > a.x0 + 0.8 * em && b.x0 > b.column_x0 + 0.8 * em {
        return false;
    }
    // A line that stops well short of the column's edge ends its paragraph
    // (unless it is ragged text going on mid-sentence).
    let width = (a.column_x1 - a.column_x0).max(1.0);
    let short = a.x1 < a.column_x1 - (2.0 * em).max(0.12 * width);
    if short && (ends_sentence || !starts_lower) {
        return false;
    }
    true
}

/// A short one-line paragraph between two parts of one table is a row
/// label ("Male", "Baseline"): it belongs to the table.
fn absorb_row_labels(blocks: &mut Vec<Block>, lines: &[Line]) {
    let mut i = 1;
    while i + 1 < blocks.len() {
        let (prev, mid, next) = (&blocks[i - 1], &blocks[i], &blocks[i + 1]);
        let label = mid.kind == BlockKind::Paragraph
            && mid.lines.len() == 1
            && prev.kind == BlockKind::Table
            && next.kind == BlockKind::Table
            && {
                let l = &lines[mid.lines[0]];
                let before = &lines[*prev.lines.last().unwrap_or(&0)];
                let after = &lines[next.lines[0]];
                same_flow(before, l) && same_flow(l, after)
            };
        if label {
            let mut merged = blocks[i - 1].lines.clone();
            merged.extend(blocks[i].lines.iter().copied());
            merged.extend(blocks[i + 1].lines.iter().copied());
            blocks[i - 1].lines = merged;
            blocks.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
}

/// Headings are short blocks set clearly larger than the body text; the
/// largest one on the first page with text is the title.
fn mark_headings(blocks: &mut [Block], lines: &[Line], body_size: f32) {
    let size_of = |b: &Block| -> f32 {
        let chars: usize = b.lines.iter().map(|&i| lines[i].chars).sum();
        let weighted: f32 = b
            .lines
            .iter()
            .map(|&i| lines[i].size * lines[i].chars as f32)
            .sum();
        if chars == 0 {
            0.0
        } else {
            weighted / chars as f32
        }
    };
    // Headings are short; a title may run to six lines.
    let is_heading_like = |b: &Block| -> bool {
        let chars: usize = b.lines.iter().map(|&i| lines[i].chars).sum();
        b.kind == BlockKind::Paragraph
            && b.lines.len() <= 6
            && chars <= 350
            && b.lines
                .iter()
                .any(|&i| lines[i].text().chars().any(char::is_alphabetic))
    };
    let first_page = blocks.first().map(|b| lines[b.lines[0]].page);
    let mut title: Option<(usize, f32)> = None;
    for (i, b) in blocks.iter().enumerate() {
        // A title has words: not a label ("Clinical Study", "Abstract") nor
        // letter-spaced capitals ("R E S E A R C H").
        let words = b
            .lines
            .iter()
            .flat_map(|&i| lines[i].cells.iter())
            .flat_map(|c| c.text.split_whitespace())
            .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
            .count();
        if Some(lines[b.lines[0]].page) != first_page || !is_heading_like(b) || words < 3 {
            continue;
        }
        let size = size_of(b);
        if title.is_none_or(|(_, s)| size > s + 0.01) {
            title = Some((i, size));
        }
    }
    if let Some((i, size)) = title
        && size >= 1.25 * body_size
    {
        blocks[i].kind = BlockKind::Title;
    }
    for b in blocks.iter_mut() {
        if b.kind != BlockKind::Paragraph || !is_heading_like(b) {
            continue;
        }
        let larger = b.lines.len() <= 3 && size_of(b) >= 1.12 * body_size;
        // Bold headings set at body size look like any short line; the
        // usual section names of a paper, alone on their line, are headings.
        let named = b.lines.len() == 1
            && size_of(b) >= 0.95 * body_size
            && is_section_name(&lines[b.lines[0]].text());
        if larger || named {
            b.kind = BlockKind::Heading;
        }
    }
}

/// Section names of scientific papers (lowercase, without numbering).
const SECTION_NAMES: &[&str] = &[
    "abstract",
    "background",
    "introduction",
    "methods",
    "method",
    "materials and methods",
    "material and methods",
    "methods and materials",
    "patients and methods",
    "subjects and methods",
    "results",
    "discussion",
    "results and discussion",
    "conclusion",
    "conclusions",
    "limitations",
    "strengths and limitations",
    "references",
    "acknowledgements",
    "acknowledgments",
    "acknowledgement",
    "funding",
    "competing interests",
    "conflict of interest",
    "conflicts of interest",
    "conflict of interests",
    "declaration of interest",
    "authors' contributions",
    "author contributions",
    "authors contributions",
    "abbreviations",
    "ethics",
    "ethical approval",
    "ethics approval and consent to participate",
    "consent for publication",
    "availability of data and materials",
    "data availability",
    "supporting information",
    "supplementary material",
    "additional files",
    "trial registration",
    "keywords",
    "key words",
    "summary",
    "study design",
    "statistical analysis",
    "participants",
    "outcomes",
    "randomization",
    "randomisation",
    "sample size",
    "interventions",
    "setting",
    "study population",
    "data analysis",
    "data collection",
    "procedures",
];

/// Whether a line is a known section name, possibly numbered ("2.", "3.1")
/// or followed by a colon.
fn is_section_name(text: &str) -> bool {
    let t = text.trim().trim_end_matches([':', '.']).trim();
    let t = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let lower = t.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    SECTION_NAMES.contains(&lower.as_str())
}

/// The size most of the document's characters are set in (half points).
pub fn body_size(lines: &[Line]) -> f32 {
    let mut by_size: HashMap<i32, usize> = HashMap::new();
    for line in lines {
        *by_size.entry((line.size * 2.0).round() as i32).or_default() += line.chars;
    }
    by_size
        .into_iter()
        .max_by_key(|&(k, n)| (n, std::cmp::Reverse(k)))
        .map(|(k, _)| k as f32 / 2.0)
        .unwrap_or(10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(text: &str) -> Vocabulary {
        let line = Line {
            page: 1,
            x0: 0.0,
            x1: 100.0,
            top: 0.0,
            bottom: 10.0,
            baseline: 8.0,
            size: 10.0,
            cells: vec![crate::layout::Cell {
                x0: 0.0,
                x1: 100.0,
                text: text.to_string(),
                edges: Vec::new(),
            }],
            region: 1,
            column_x0: 0.0,
            column_x1: 100.0,
            orientation: 0,
            chars: text.chars().count(),
        };
        Vocabulary::from_lines(&[line])
    }

    #[test]
    fn hyphens_that_split_words_go() {
        let v = vocab("");
        assert_eq!(v.join("a new treat-", "ment for"), Join::Dehyphenate);
        assert_eq!(v.join("infor\u{AD}", "mation"), Join::Dehyphenate);
    }

    #[test]
    fn hyphens_of_compounds_stay() {
        let v = vocab("");
        assert_eq!(v.join("a placebo-", "controlled trial"), Join::KeepHyphen);
        assert_eq!(v.join("COVID-", "19"), Join::KeepHyphen);
        assert_eq!(v.join("non-", "Hodgkin"), Join::KeepHyphen);
        assert_eq!(v.join("the end.", "Next"), Join::Space);
        assert_eq!(v.join("range 10 -", "20"), Join::Space);
    }

    #[test]
    fn section_names_are_recognised() {
        assert!(is_section_name("Methods"));
        assert!(is_section_name("2. Materials and Methods"));
        assert!(is_section_name("3.1 Statistical analysis"));
        assert!(is_section_name("Authors\u{2019} contributions"));
        assert!(is_section_name("CONCLUSIONS:"));
        assert!(!is_section_name("Methods were applied to all patients"));
    }

    #[test]
    fn the_document_decides_first() {
        let v = vocab("we used a fol-low up and a followup and a web-based tool");
        assert_eq!(v.join("the follow-", "up visit"), Join::Dehyphenate);
        assert_eq!(v.join("a web-", "based tool"), Join::KeepHyphen);
    }
}
