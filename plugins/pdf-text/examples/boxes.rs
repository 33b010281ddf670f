//! Measures the page boxes of quotes against poppler's word boxes.
//!
//! ```text
//! cargo run -p pdf-text --release --example boxes -- PDF_DIR
//! ```
//!
//! For every PDF in `PDF_DIR` (e.g. `shared/corpus/rct/pdf`): converts it;
//! takes as quotes words 3–12 of every paragraph of the markdown with at
//! least 14 words, and the first cell of every table row; asks the
//! layout for each quote's boxes ([`page_layout::Layout::boxes`]); and
//! collects the words `pdftotext -bbox-layout` places inside those boxes
//! (a word is inside when its centre is). Compared as multisets of
//! lowercase alphanumeric tokens (a word that poppler splits at a line-end
//! hyphen is joined again):
//!
//! - **precision**: of the words inside the boxes, the share that are the
//!   quote's;
//! - **recall**: of the quote's words, the share found inside its boxes.
//!
//! Printed per paper and over all quotes (micro-averaged).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Minimum words of a paragraph to quote from it.
const MIN_WORDS: usize = 14;
/// The words of a paragraph quoted: 3rd to 12th.
const QUOTE: std::ops::Range<usize> = 2..12;

/// A word poppler found, in page fractions.
struct Word {
    page: u32,
    cx: f32,
    cy: f32,
    text: String,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    quotes: usize,
    boxed: usize,
    inside: usize,
    quoted: usize,
    hits: usize,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.quotes += o.quotes;
        self.boxed += o.boxed;
        self.inside += o.inside;
        self.quoted += o.quoted;
        self.hits += o.hits;
    }
    fn precision(&self) -> f64 {
        self.hits as f64 / self.inside.max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.hits as f64 / self.quoted.max(1) as f64
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            eprintln!("usage: boxes PDF_DIR");
            std::process::exit(2)
        });
    let mut pdfs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    let mut total = Tally::default();
    println!("paper          quotes  boxed  precision  recall");
    for pdf in &pdfs {
        let Some(words) = poppler_words(pdf) else {
            eprintln!(
                "pdftotext -bbox-layout failed on {}; is poppler-utils installed?",
                pdf.display()
            );
            std::process::exit(1);
        };
        let bytes = std::fs::read(pdf).expect("read");
        let doc = match pdf_text::convert(&bytes) {
            Ok(d) => d,
            Err(e) => {
                println!("{:<14} conversion failed: {e}", name(pdf));
                continue;
            }
        };
        let t = score(&doc, &words);
        println!(
            "{:<14} {:>6} {:>6} {:>10.3} {:>7.3}",
            name(pdf),
            t.quotes,
            t.boxed,
            t.precision(),
            t.recall()
        );
        total.add(t);
    }
    println!(
        "{:<14} {:>6} {:>6} {:>10.3} {:>7.3}",
        "ALL",
        total.quotes,
        total.boxed,
        total.precision(),
        total.recall()
    );
}

fn name(p: &Path) -> String {
    p.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The quotes of a document: `(start, end)` code point spans.
fn quotes(markdown: &str) -> Vec<(u32, u32)> {
    let chars: Vec<char> = markdown.chars().collect();
    let mut out = Vec::new();
    let mut at = 0usize;
    for para in markdown.split("\n\n") {
        let n = para.chars().count();
        let start_of = at;
        at += n + 2;
        if para.starts_with('#') {
            continue;
        }
        for (line_at, line) in lines_at(para, start_of) {
            if line.contains(" | ") {
                // A table row: its first cell.
                let cell = line.split(" | ").next().unwrap_or("");
                let len = cell.chars().count();
                if cell.chars().any(char::is_alphanumeric) {
                    out.push((line_at as u32, (line_at + len) as u32));
                }
            }
        }
        if para.contains(" | ") {
            continue;
        }
        // Word spans of the paragraph.
        let mut words = Vec::new();
        let mut i = start_of;
        while i < start_of + n {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let s = i;
            while i < start_of + n && !chars[i].is_whitespace() {
                i += 1;
            }
            words.push((s, i));
        }
        if words.len() >= MIN_WORDS {
            out.push((words[QUOTE.start].0 as u32, words[QUOTE.end - 1].1 as u32));
        }
    }
    out
}

/// The lines of a paragraph with their offsets in the document.
fn lines_at(para: &str, start: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = start;
    for line in para.split('\n') {
        out.push((at, line));
        at += line.chars().count() + 1;
    }
    out
}

fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn score(doc: &pdf_text::Document, words: &[Word]) -> Tally {
    let chars: Vec<char> = doc.markdown.chars().collect();
    let mut t = Tally::default();
    for (start, end) in quotes(&doc.markdown) {
        let quote: String = chars[start as usize..end as usize].iter().collect();
        let want = tokens(&quote);
        if want.is_empty() {
            continue;
        }
        t.quotes += 1;
        let boxes = doc.layout.boxes(start, end);
        if !boxes.is_empty() {
            t.boxed += 1;
        }
        // Poppler's words inside the boxes, a line-end hyphen joined again.
        let mut inside: Vec<String> = Vec::new();
        let mut carry = String::new();
        for w in words.iter().filter(|w| {
            boxes.iter().any(|b| {
                b.page == w.page
                    && w.cx >= b.x
                    && w.cx <= b.x + b.width
                    && w.cy >= b.y
                    && w.cy <= b.y + b.height
            })
        }) {
            if w.text.ends_with(['-', '\u{2010}']) && w.text.chars().count() > 1 {
                carry.push_str(w.text.trim_end_matches(['-', '\u{2010}']));
                continue;
            }
            let joined = format!("{carry}{}", w.text);
            carry.clear();
            inside.extend(tokens(&joined));
        }
        if !carry.is_empty() {
            inside.extend(tokens(&carry));
        }
        let mut bag: HashMap<&str, usize> = HashMap::new();
        for w in &want {
            *bag.entry(w.as_str()).or_default() += 1;
        }
        let mut hits = 0;
        for w in &inside {
            if let Some(n) = bag.get_mut(w.as_str())
                && *n > 0
            {
                *n -= 1;
                hits += 1;
            }
        }
        t.inside += inside.len();
        t.quoted += want.len();
        t.hits += hits;
    }
    t
}

/// Every word poppler finds, with its centre in page fractions.
fn poppler_words(pdf: &Path) -> Option<Vec<Word>> {
    let out = Command::new("pdftotext")
        .arg("-bbox-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Poppler passes control characters of broken fonts through, which
    // XML does not allow.
    let xml: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .collect();
    // XHTML with a DOCTYPE: parse what roxmltree accepts.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let tree = roxmltree::Document::parse_with_options(&xml, opts).ok()?;
    let mut words = Vec::new();
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse::<f32>().ok());
    for (i, page) in tree
        .descendants()
        .filter(|n| n.has_tag_name("page"))
        .enumerate()
    {
        let (Some(w), Some(h)) = (attr(page, "width"), attr(page, "height")) else {
            continue;
        };
        for word in page.descendants().filter(|n| n.has_tag_name("word")) {
            let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
                attr(word, "xMin"),
                attr(word, "yMin"),
                attr(word, "xMax"),
                attr(word, "yMax"),
            ) else {
                continue;
            };
            words.push(Word {
                page: i as u32 + 1,
                cx: (x0 + x1) / 2.0 / w,
                cy: (y0 + y1) / 2.0 / h,
                text: word.text().unwrap_or("").to_owned(),
            });
        }
    }
    Some(words)
}
