//! Scores PDF converters against the JATS XML of the same articles.
//!
//! ```text
//! cargo run -p pdf-text --release --example score -- CORPUS_DIR [--dump OUT_DIR] [--evistream BIN]
//! ```
//!
//! With `--evistream BIN` (the server binary), the same converter also runs
//! as the server runs it: the wasm32-wasip2 component inside the plugin
//! sandbox, through `BIN convert FILE` (a process per file, like pdftotext).
//!
//! `CORPUS_DIR` holds `pdf/ID.pdf` and `nxml/ID.nxml` (e.g.
//! `shared/corpus/rct`). For every PDF it runs each converter (ours,
//! in-process, and `pdftotext FILE -` when installed) and prints per paper
//! and overall:
//!
//! - **word recall**: the reference words (lowercase alphanumeric tokens of
//!   every `<p>` in the XML's `<abstract>` and `<body>`) found in the
//!   output, counted as a multiset;
//! - **paragraph fraction**: of the reference paragraphs with at least 10
//!   words, the share whose words 3–10 appear contiguously in the output.
//!   It checks reading order: columns read in the wrong order, running heads
//!   left in, or words split by a hyphen break those runs;
//! - **time**: wall time of each conversion (pdftotext's includes starting
//!   the process).
//!
//! Both sides are normalised the same way, so the numbers compare tools,
//! not tokenisers. The metric code below knows nothing about how a converter
//! runs: a converter is a name and a function from PDF bytes to text.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Minimum words for a reference paragraph to count in the paragraph score.
const MIN_PARAGRAPH_WORDS: usize = 10;
/// The words of a paragraph that must appear contiguously: 3rd to 10th.
const PARAGRAPH_PROBE: std::ops::Range<usize> = 2..10;

// ---------------------------------------------------------------------------
// Normalisation and reference text

/// Lowercase alphanumeric tokens: every maximal run of alphanumeric
/// characters, lowercased.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The text of every `<p>` inside `<abstract>` or `<body>`, as tokens. A
/// `<p>` nested in another counts once, as its own paragraph.
fn reference_paragraphs(xml: &str) -> Result<Vec<Vec<String>>, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| e.to_string())?;
    let paragraphs = doc
        .descendants()
        .filter(|n| n.has_tag_name("p"))
        .filter(|n| {
            n.ancestors()
                .any(|a| a.has_tag_name("abstract") || a.has_tag_name("body"))
        })
        .map(|p| {
            let mut text = String::new();
            paragraph_text(p, &mut text);
            tokens(&text)
        })
        .collect();
    Ok(paragraphs)
}

fn paragraph_text(node: roxmltree::Node, out: &mut String) {
    for child in node.children() {
        if child.is_text() {
            out.push_str(child.text().unwrap_or(""));
        } else if child.is_element() && !child.has_tag_name("p") {
            paragraph_text(child, out);
            // Elements such as <td> or <title> end a word.
            out.push(' ');
        }
    }
}

// ---------------------------------------------------------------------------
// Metrics

/// Scores of one output against one reference.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    /// Reference words found in the output (multiset).
    words_found: usize,
    /// Reference words.
    words: usize,
    /// Paragraphs whose probe was found contiguously.
    paragraphs_found: usize,
    /// Paragraphs with at least `MIN_PARAGRAPH_WORDS` words.
    paragraphs: usize,
}

impl Score {
    fn of(reference: &[Vec<String>], output: &str) -> Score {
        let output = tokens(output);
        let mut available: HashMap<&str, usize> = HashMap::new();
        for t in &output {
            *available.entry(t.as_str()).or_default() += 1;
        }
        let mut score = Score::default();
        for word in reference.iter().flatten() {
            score.words += 1;
            if let Some(n) = available.get_mut(word.as_str())
                && *n > 0
            {
                *n -= 1;
                score.words_found += 1;
            }
        }
        let probe_len = PARAGRAPH_PROBE.len();
        let runs: HashSet<&[String]> = output.windows(probe_len).collect();
        for paragraph in reference.iter().filter(|p| p.len() >= MIN_PARAGRAPH_WORDS) {
            score.paragraphs += 1;
            if runs.contains(&paragraph[PARAGRAPH_PROBE]) {
                score.paragraphs_found += 1;
            }
        }
        score
    }

    fn add(&mut self, other: Score) {
        self.words_found += other.words_found;
        self.words += other.words;
        self.paragraphs_found += other.paragraphs_found;
        self.paragraphs += other.paragraphs;
    }

    fn recall(&self) -> f64 {
        ratio(self.words_found, self.words)
    }

    fn paragraph_fraction(&self) -> f64 {
        ratio(self.paragraphs_found, self.paragraphs)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

// ---------------------------------------------------------------------------
// Converters

/// How a converter runs: PDF path and bytes in, text (or an error) out.
/// The path is for external tools; in-process converters use the bytes.
type ConvertFn = dyn Fn(&Path, &[u8]) -> Result<String, String>;

/// A converter under test.
struct Converter {
    name: &'static str,
    run: Box<ConvertFn>,
}

fn ours() -> Converter {
    Converter {
        name: "pdf-text",
        run: Box::new(|_, bytes| {
            pdf_text::convert(bytes)
                .map(|doc| doc.markdown)
                .map_err(|e| e.to_string())
        }),
    }
}

/// The component in the server's sandbox, via `evistream convert`.
fn sandboxed(bin: PathBuf) -> Converter {
    Converter {
        name: "pdf-text.wasm",
        run: Box::new(move |path, _| {
            let out = Command::new(&bin)
                .arg("convert")
                .arg(path)
                .env("RUST_LOG", "warn")
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }),
    }
}

fn pdftotext() -> Option<Converter> {
    let installed = Command::new("pdftotext").arg("-v").output().is_ok();
    installed.then(|| Converter {
        name: "pdftotext",
        run: Box::new(|path, _| {
            let out = Command::new("pdftotext")
                .arg(path)
                .arg("-")
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }),
    })
}

// ---------------------------------------------------------------------------
// Running and reporting

/// One converter's result on one paper.
struct Run {
    score: Score,
    time: Duration,
    error: Option<String>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut corpus: Option<PathBuf> = None;
    let mut dump: Option<PathBuf> = None;
    let mut evistream: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dump" => dump = args.next().map(PathBuf::from),
            "--evistream" => evistream = args.next().map(PathBuf::from),
            _ => corpus = Some(PathBuf::from(arg)),
        }
    }
    let Some(corpus) = corpus else {
        eprintln!(
            "usage: score CORPUS_DIR [--dump OUT_DIR] [--evistream BIN]   (CORPUS_DIR holds pdf/ and nxml/)"
        );
        std::process::exit(2);
    };
    let mut converters = vec![ours()];
    if let Some(bin) = evistream {
        converters.push(sandboxed(bin));
    }
    match pdftotext() {
        Some(c) => converters.push(c),
        None => eprintln!("pdftotext not found (apt-get install poppler-utils): scoring ours only"),
    }
    if let Some(dir) = &dump
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("{}: {e}", dir.display());
        std::process::exit(1);
    }

    let papers = match papers(&corpus) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!(
                "no PDF with a matching nxml/ file under {}",
                corpus.display()
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{}: {e}", corpus.display());
            std::process::exit(1);
        }
    };

    print!("{:<12} {:>6}", "paper", "words");
    for c in &converters {
        print!(" | {:>9} {:>7} {:>6} {:>8}", c.name, "para", "", "time");
    }
    println!();
    let mut totals: Vec<(Score, Duration, f64)> =
        vec![(Score::default(), Duration::ZERO, 1.0); converters.len()];
    for (id, pdf, nxml) in &papers {
        let reference = match std::fs::read_to_string(nxml)
            .map_err(|e| e.to_string())
            .and_then(|xml| reference_paragraphs(&xml))
        {
            Ok(r) => r,
            Err(e) => {
                println!("{id:<12} reference unreadable: {e}");
                continue;
            }
        };
        let bytes = match std::fs::read(pdf) {
            Ok(b) => b,
            Err(e) => {
                println!("{id:<12} PDF unreadable: {e}");
                continue;
            }
        };
        let words: usize = reference.iter().map(Vec::len).sum();
        print!("{id:<12} {words:>6}");
        for (c, total) in converters.iter().zip(totals.iter_mut()) {
            let run = run(c, pdf, &bytes, &reference, dump.as_deref(), id);
            let s = run.score;
            print!(
                " | {:>9.3} {:>3}/{:<3} {:>6.3} {:>7.3}s",
                s.recall(),
                s.paragraphs_found,
                s.paragraphs,
                s.paragraph_fraction(),
                run.time.as_secs_f64()
            );
            if let Some(e) = run.error {
                print!(" ERROR {e}");
            }
            total.0.add(s);
            total.1 += run.time;
            total.2 = total.2.min(s.recall());
        }
        println!();
    }
    println!();
    for (c, (score, time, min_recall)) in converters.iter().zip(&totals) {
        println!(
            "{:<10} word recall {:.4} (lowest paper {:.3}), paragraphs {}/{} = {:.3}, time {:.3}s",
            c.name,
            score.recall(),
            min_recall,
            score.paragraphs_found,
            score.paragraphs,
            score.paragraph_fraction(),
            time.as_secs_f64()
        );
    }
    if let [(ours, ours_time, ours_min), (theirs, their_time, _)] = &totals[..] {
        println!();
        println!("targets (ours vs pdftotext):");
        println!(
            "  word recall >= 0.98 on every paper: {}",
            verdict(*ours_min >= 0.98)
        );
        println!(
            "  paragraph fraction within 0.02 of pdftotext: {} ({:+.3})",
            verdict(ours.paragraph_fraction() >= theirs.paragraph_fraction() - 0.02),
            ours.paragraph_fraction() - theirs.paragraph_fraction()
        );
        println!(
            "  time <= 2x pdftotext: {} ({:.2}x)",
            verdict(ours_time.as_secs_f64() <= 2.0 * their_time.as_secs_f64()),
            ours_time.as_secs_f64() / their_time.as_secs_f64().max(1e-9)
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn run(
    c: &Converter,
    pdf: &Path,
    bytes: &[u8],
    reference: &[Vec<String>],
    dump: Option<&Path>,
    id: &str,
) -> Run {
    let start = Instant::now();
    let result = (c.run)(pdf, bytes);
    let time = start.elapsed();
    let (text, error) = match result {
        Ok(t) => (t, None),
        Err(e) => (String::new(), Some(e)),
    };
    if let Some(dir) = dump {
        let path = dir.join(format!("{id}.{}.txt", c.name));
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("{}: {e}", path.display());
        }
    }
    Run {
        score: Score::of(reference, &text),
        time,
        error,
    }
}

/// `(id, pdf path, nxml path)` for every `pdf/ID.pdf` with an `nxml/ID.nxml`.
fn papers(corpus: &Path) -> std::io::Result<Vec<(String, PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(corpus.join("pdf"))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pdf") {
            continue;
        }
        let Some(id) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let nxml = corpus.join("nxml").join(format!("{id}.nxml"));
        if nxml.exists() {
            out.push((id, path, nxml));
        }
    }
    out.sort();
    Ok(out)
}
