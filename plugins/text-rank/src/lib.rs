//! Passages of a converted text (lines, long lines split into sentences,
//! verbatim with code-point offsets) and BM25 ranking over them.

use std::collections::HashMap;

pub mod tables;

/// A passage: a line, or a sentence of a long line, verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The text, a verbatim slice of the document.
    pub text: String,
    /// Offset of its first code point in the document.
    pub start: u32,
}

/// Longest passage before a line is split into sentences, in characters.
const SPLIT_OVER: usize = 320;

/// Splits `text` into passages: non-empty lines, long lines into sentences.
pub fn passages(text: &str) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut cp = 0u32; // code point offset of the current line
    for line in text.split('\n') {
        let len = line.chars().count() as u32;
        if line.chars().count() > SPLIT_OVER {
            for (s, e) in sentences(line) {
                push(&mut out, line, s, e, cp);
            }
        } else {
            push(&mut out, line, 0, line.len(), cp);
        }
        cp += len + 1;
    }
    out
}

/// Adds the trimmed byte range `s..e` of `line` (whose first code point is
/// at `line_cp`) when it has words.
fn push(out: &mut Vec<Passage>, line: &str, s: usize, e: usize, line_cp: u32) {
    let raw = &line[s..e];
    let lead = raw.len() - raw.trim_start().len();
    let t = raw.trim();
    if t.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return;
    }
    let start = line_cp + line[..s + lead].chars().count() as u32;
    out.push(Passage {
        text: t.to_owned(),
        start,
    });
}

/// Byte ranges of the sentences of `line`.
fn sentences(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    for i in 0..chars.len() {
        let (b, c) = chars[i];
        if !matches!(c, '.' | '?' | '!' | ';') {
            continue;
        }
        let next_space = chars.get(i + 1).is_some_and(|(_, n)| n.is_whitespace());
        let next_word = chars
            .get(i + 2)
            .is_some_and(|(_, n)| n.is_uppercase() || n.is_ascii_digit() || *n == '(');
        if next_space && next_word && b + 1 - start > 40 {
            out.push((start, b + 1));
            start = b + 1;
        }
    }
    if start < line.len() {
        out.push((start, line.len()));
    }
    out
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "which", "with", "one",
    "any", "give", "option", "options", "text", "number", "integer", "date", "true", "false",
    "yyyy", "mm", "dd", "unit", "list", "required", "hint", "study", "trial", "paper", "field",
];

/// Lower-case word stems of `s`, without stopwords.
pub fn terms(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| stem(&w.to_lowercase()))
        .filter(|w| !STOPWORDS.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// A light stemmer: enough to meet `randomised`/`randomized`/`randomly`.
pub fn stem(w: &str) -> String {
    let w = w.replace("isation", "ization").replace("ised", "ized");
    for suffix in [
        "ization", "ized", "ation", "ment", "ing", "ly", "ies", "es", "ed", "s",
    ] {
        if w.len() > suffix.len() + 3
            && let Some(base) = w.strip_suffix(suffix)
        {
            return base.to_owned();
        }
    }
    w
}

/// A BM25 index over passages.
pub struct Index {
    docs: Vec<HashMap<String, u32>>,
    lens: Vec<f64>,
    avg_len: f64,
    df: HashMap<String, u32>,
}

impl Index {
    /// Indexes `passages`.
    pub fn new(passages: &[Passage]) -> Self {
        let mut docs = Vec::with_capacity(passages.len());
        let mut lens = Vec::with_capacity(passages.len());
        let mut df: HashMap<String, u32> = HashMap::new();
        for p in passages {
            let mut tf: HashMap<String, u32> = HashMap::new();
            let ts = terms(&p.text);
            lens.push(ts.len() as f64);
            for t in ts {
                *tf.entry(t).or_default() += 1;
            }
            for t in tf.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
            docs.push(tf);
        }
        let avg_len = if lens.is_empty() {
            1.0
        } else {
            (lens.iter().sum::<f64>() / lens.len() as f64).max(1.0)
        };
        Self {
            docs,
            lens,
            avg_len,
            df,
        }
    }

    /// The `k` best passages for `query` terms: (passage index, score), best first.
    pub fn search(&self, query: &[String], k: usize) -> Vec<(usize, f64)> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let n = self.docs.len() as f64;
        let mut q: Vec<&String> = query.iter().collect();
        q.sort();
        q.dedup();
        let mut scored: Vec<(usize, f64)> = self
            .docs
            .iter()
            .enumerate()
            .map(|(i, tf)| {
                let mut s = 0.0;
                for t in &q {
                    let Some(&f) = tf.get(*t) else { continue };
                    let df = f64::from(*self.df.get(*t).unwrap_or(&0));
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let f = f64::from(f);
                    s += idf * f * (K1 + 1.0)
                        / (f + K1 * (1.0 - B + B * self.lens[i] / self.avg_len));
                }
                (i, s)
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_are_verbatim_with_code_point_offsets() {
        let text = "Résumé\n\nSecond line here.";
        let ps = passages(text);
        assert_eq!(ps.len(), 2);
        let chars: Vec<char> = text.chars().collect();
        for p in &ps {
            let n = p.text.chars().count();
            let s: String = chars[p.start as usize..p.start as usize + n]
                .iter()
                .collect();
            assert_eq!(s, p.text);
        }
    }

    #[test]
    fn long_lines_split_into_sentences() {
        let line = format!(
            "{} Then a second sentence follows here. {}",
            "word ".repeat(70),
            "Also a third one."
        );
        let ps = passages(&line);
        assert!(ps.len() >= 2, "{ps:?}");
        assert!(ps.iter().all(|p| line.contains(p.text.as_str())));
    }

    #[test]
    fn bm25_prefers_the_passage_with_the_rare_terms() {
        let ps = passages(
            "patients were randomised to placebo\n\nthe weather was fine\n\nrandomised controlled trial of patients",
        );
        let idx = Index::new(&ps);
        let hits = idx.search(&terms("randomized placebo"), 3);
        assert_eq!(hits[0].0, 0);
        assert_eq!(stem("randomised"), stem("randomized"));
    }
}
