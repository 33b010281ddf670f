//! eviStream's first-party PDF converter.
//!
//! PDF bytes in; out comes the whole document as markdown in reading order
//! (two-column pages read column by column, full-width titles and tables in
//! place), headings as `#`/`##`, paragraphs joined across line breaks with
//! hyphenation undone, running heads and page numbers dropped, table rows
//! kept as rows; plus per-page character ranges into the markdown, metadata
//! and warnings.
//!
//! The conversion is plain Rust ([`convert`]) so it can be tested and
//! measured natively; `component.rs` wraps it as the `pdf-converter`
//! WebAssembly component (evistream:plugin@0.2.0, on `evistream-plugin-sdk`).
//!
//! Pipeline: [`prepare`] (content streams made safe for pdf-extract) →
//! [`glyphs`] (positions from the content streams, via pdf-extract) → [`layout`] (lines, columns, reading order) →
//! [`furniture`] (running heads, page numbers) → [`text`] (paragraphs,
//! headings, tables, de-hyphenation) → [`markdown`] (text and page ranges);
//! [`metadata`] reads the Info dictionary; [`render`] draws a page as a PNG.

pub mod furniture;
pub mod glyphs;
pub mod layout;
pub mod markdown;
pub mod metadata;
pub mod prepare;
pub mod render;
pub mod tables;
pub mod text;

mod component;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// One page's range in the markdown, in Unicode code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    /// 1-based page number.
    pub number: u32,
    /// First code point of the page.
    pub start: u32,
    /// One past the last code point of the page.
    pub end: u32,
}

/// Document metadata, as far as the PDF tells it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// From the Info dictionary, else the largest text on the first page.
    pub title: Option<String>,
    /// From the Info dictionary's Author entry.
    pub authors: Vec<String>,
    /// Number of pages in the PDF.
    pub page_count: u32,
    /// Producer (or creator) application, for diagnostics.
    pub producer: Option<String>,
}

pub use page_layout::{Layout, PageSize, TextRun};

/// A line's stretch of the markdown, turned from the line's reading frame
/// (see [`glyphs::Glyph`]) into page coordinates.
pub fn run_from_frame(
    start: u32,
    line: &layout::Line,
    edges: &[(f32, f32)],
    frame: markdown::Frame,
) -> TextRun {
    let (ox, oy) = frame.origin;
    let (top, bottom) = (line.top, line.bottom);
    let sorted = |a: f32, b: f32| (a.min(b), a.max(b));
    let o = line.orientation;
    // The inverse of the rotations in `glyphs`.
    let along = |x: f32| match o {
        0 => x,
        1 => oy - x,
        2 => -x - ox,
        _ => oy + x,
    };
    let (vertical, across) = match o {
        0 => (false, (top, bottom)),
        1 => (true, sorted(top - ox, bottom - ox)),
        2 => (false, sorted(oy - top, oy - bottom)),
        _ => (true, sorted(-top - ox, -bottom - ox)),
    };
    TextRun {
        start,
        page: line.page,
        vertical,
        across,
        edges: edges
            .iter()
            .map(|&(a, b)| sorted(along(a), along(b)))
            .collect(),
    }
}

/// A converted document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The whole document as markdown, in reading order.
    pub markdown: String,
    /// One entry per page, in order, covering the markdown.
    pub pages: Vec<PageRange>,
    /// Where the markdown's text lies on the pages.
    pub layout: Layout,
    /// What the PDF says about itself.
    pub metadata: Metadata,
    /// Things a reviewer should know ("page 3 has no text layer (scanned?)").
    pub warnings: Vec<String>,
}

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// The PDF is encrypted and cannot be read without a password.
    Encrypted(String),
    /// The bytes are not a readable PDF (truncated, corrupt, not a PDF).
    Malformed(String),
    /// A valid PDF this converter cannot handle.
    Unsupported(String),
    /// A bug in the converter.
    Internal(String),
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Encrypted(m) => write!(f, "encrypted PDF: {m}"),
            ConvertError::Malformed(m) => write!(f, "malformed PDF: {m}"),
            ConvertError::Unsupported(m) => write!(f, "unsupported PDF: {m}"),
            ConvertError::Internal(m) => write!(f, "converter bug: {m}"),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Converts a PDF to markdown with page ranges, metadata and warnings.
///
/// Never panics on bad input: unreadable bytes are [`ConvertError::Malformed`],
/// password-protected files [`ConvertError::Encrypted`]. A page that cannot
/// be read costs that page only (and a warning).
pub fn convert(pdf: &[u8]) -> Result<Document, ConvertError> {
    // Last resort: the PDF crates underneath unwrap on some malformed
    // inputs. Natively a panic becomes an error here; in wasm (panic =
    // abort) the host turns the trap into a typed error.
    match catch_unwind(AssertUnwindSafe(|| convert_unguarded(pdf))) {
        Ok(result) => result,
        Err(_) => Err(ConvertError::Internal("the converter panicked".to_string())),
    }
}

fn convert_unguarded(pdf: &[u8]) -> Result<Document, ConvertError> {
    if pdf.is_empty() {
        return Err(ConvertError::Malformed("empty input".to_string()));
    }
    // The header may sit after some junk, but within the first kilobyte.
    let head = &pdf[..pdf.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(ConvertError::Malformed(
            "not a PDF (no %PDF- header)".to_string(),
        ));
    }
    let mut doc = load(pdf)?;
    // lopdf decrypts files whose user password is empty (permissions-only
    // encryption) and removes /Encrypt; one still carrying it needs a
    // password we do not have.
    if doc.trailer.get(b"Encrypt").is_ok() {
        return Err(ConvertError::Encrypted(
            "the PDF is encrypted and needs a password to open".to_string(),
        ));
    }
    let page_count = doc.get_pages().len() as u32;
    if page_count == 0 {
        return Err(ConvertError::Malformed("the PDF has no pages".to_string()));
    }

    prepare::prepare(&mut doc);
    let raw = glyphs::read_pages(&doc);
    let mut warnings = Vec::new();
    for page in &raw {
        if let Some(error) = &page.error {
            warnings.push(format!("page {} could not be read: {error}", page.number));
        } else if page.glyphs.iter().all(|g| g.space) {
            warnings.push(format!("page {} has no text layer (scanned?)", page.number));
        }
        let total = page.glyphs.len() + page.undecodable;
        if page.undecodable >= 5 && page.undecodable * 10 >= total {
            warnings.push(format!(
                "page {}: {} of {} characters have no Unicode mapping and were left out",
                page.number, page.undecodable, total
            ));
        }
    }
    if raw.iter().all(|p| p.error.is_some()) {
        return Err(ConvertError::Malformed(
            "no page of the PDF could be read".to_string(),
        ));
    }

    let mut pages: Vec<layout::PageLayout> = raw.iter().map(layout::layout_page).collect();
    let sizes: Vec<PageSize> = raw
        .iter()
        .map(|p| PageSize {
            number: p.number,
            width: p.width,
            height: p.height,
        })
        .collect();
    let frames: Vec<markdown::Frame> = raw
        .iter()
        .map(|p| markdown::Frame { origin: p.origin })
        .collect();
    drop(raw);
    furniture::remove_furniture(&mut pages);
    let lines: Vec<layout::Line> = pages.into_iter().flat_map(|p| p.lines).collect();
    let body = text::body_size(&lines);
    let blocks = text::blocks(&lines, body);
    let (blocks, grids) = tables::tables(blocks, &lines);
    let vocab = text::Vocabulary::from_lines(&lines);
    let rendered = markdown::render(&lines, &blocks, &grids, page_count, &vocab, &frames);

    let title_from_page = blocks
        .iter()
        .find(|b| b.kind == text::BlockKind::Title)
        .map(|b| {
            b.lines
                .iter()
                .map(|&i| lines[i].text())
                .collect::<Vec<_>>()
                .join(" ")
        });
    let metadata = metadata::read(&doc, page_count, title_from_page);
    Ok(Document {
        markdown: rendered.markdown,
        pages: rendered.pages,
        layout: Layout {
            pages: sizes,
            runs: rendered.runs,
            tables: rendered.tables,
        },
        metadata,
        warnings,
    })
}

/// Loads the document, telling encrypted files from broken ones.
fn load(pdf: &[u8]) -> Result<lopdf::Document, ConvertError> {
    let loaded = catch_unwind(AssertUnwindSafe(|| lopdf::Document::load_mem(pdf)));
    match loaded {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => {
            let encrypted = matches!(
                e,
                lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword
            ) || contains(pdf, b"/Encrypt");
            if encrypted {
                Err(ConvertError::Encrypted(format!(
                    "cannot decrypt the PDF: {e}"
                )))
            } else {
                Err(ConvertError::Malformed(e.to_string()))
            }
        }
        Err(_) => Err(ConvertError::Malformed(
            "the PDF parser failed on this file".to_string(),
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
