//! The face of a PDF converter: what the documents code calls, with
//! plugin-neutral types. The wasm implementation is `runtime::since_*`.

use super::PluginError;

/// One page's range in the markdown, in code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageRange {
    /// 1-based.
    pub number: u32,
    /// Inclusive start.
    pub start: u32,
    /// Exclusive end.
    pub end: u32,
}

/// A converted document, checked by the host.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConvertedDocument {
    /// Markdown in reading order.
    pub markdown: String,
    /// Page ranges, in order.
    pub pages: Vec<PageRange>,
    /// Title, if known.
    pub title: Option<String>,
    /// Authors, if known.
    pub authors: Vec<String>,
    /// Pages in the PDF.
    pub page_count: u32,
    /// Producing application.
    pub producer: Option<String>,
    /// Reviewer-facing warnings.
    pub warnings: Vec<String>,
    /// Where the text lies on the pages (contract 0.2 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<page_layout::Layout>,
}

/// Why a conversion failed: the converter's own verdict on the PDF, or the
/// sandbox's on the converter.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Encrypted PDF.
    #[error("the PDF is encrypted: {0}")]
    Encrypted(String),
    /// Not a readable PDF.
    #[error("the PDF is malformed: {0}")]
    Malformed(String),
    /// Valid but unsupported.
    #[error("the PDF is not supported: {0}")]
    Unsupported(String),
    /// The converter reported a bug of its own.
    #[error("the converter failed: {0}")]
    Failed(String),
    /// The plugin crashed, ran out of time or memory, or returned something unusable.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl ConvertError {
    /// Stable subkind for logs and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Encrypted(_) => "ENCRYPTED",
            Self::Malformed(_) => "MALFORMED",
            Self::Unsupported(_) => "UNSUPPORTED",
            Self::Failed(_) => "FAILED",
            Self::Plugin(p) => p.kind(),
        }
    }
}

/// A PDF-to-text converter, bound to the limits its calls run under.
#[async_trait::async_trait]
pub trait PdfConverter: Send + Sync {
    /// sha256 of the component: the provenance stored with every text.
    fn sha256(&self) -> &str;

    /// Converts `pdf`; `config` is the binding's configuration.
    async fn convert(
        &self,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
    ) -> Result<ConvertedDocument, ConvertError>;

    /// Renders page `page` (from 1) of `pdf` as a PNG `width` pixels wide.
    /// Converters of contract 0.1 cannot.
    async fn render(&self, pdf: Vec<u8>, page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
        let _ = (pdf, page, width);
        Err(ConvertError::Unsupported(
            "this converter implements contract 0.1, which renders no pages".into(),
        ))
    }
}

/// The host's check of a rendered page: a PNG within the output limit.
pub fn check_png(png: &[u8], max_output_bytes: u64) -> Result<(), PluginError> {
    if png.len() as u64 > max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "an image of {} bytes exceeds the limit of {max_output_bytes} bytes",
            png.len()
        )));
    }
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(PluginError::InvalidOutput(
            "the rendered page is not a PNG image".into(),
        ));
    }
    Ok(())
}

/// The host's checks of a converter's output: size, page ranges that
/// cover the text in order, and a layout that places only that text, in
/// order, on pages of a sane size.
pub fn check(doc: &ConvertedDocument, max_output_bytes: u64) -> Result<(), PluginError> {
    // Each character's position is two 4-byte numbers; a table cell, four.
    let (located, cells): (usize, usize) = doc.layout.as_ref().map_or((0, 0), |l| {
        (
            l.runs.iter().map(|r| r.edges.len()).sum(),
            l.tables
                .iter()
                .flat_map(|t| &t.rows)
                .map(|r| r.cells.len())
                .sum(),
        )
    });
    let size = doc.markdown.len() as u64 + 8 * located as u64 + 16 * cells as u64;
    if size > max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "output of {size} bytes exceeds the limit of {max_output_bytes} bytes",
        )));
    }
    let chars = doc.markdown.chars().count() as u32;
    let mut prev_end = 0u32;
    for (i, p) in doc.pages.iter().enumerate() {
        let ok =
            p.number as usize == i + 1 && p.start >= prev_end && p.start <= p.end && p.end <= chars;
        if !ok {
            return Err(PluginError::InvalidOutput(format!(
                "page range {i} ({}: {}..{}) is out of order or outside the text of {chars} characters",
                p.number, p.start, p.end
            )));
        }
        prev_end = p.end;
    }
    if let Some(layout) = &doc.layout {
        check_layout(layout, chars, doc.pages.len())?;
    }
    Ok(())
}

/// Largest page side, in points (PDF's own limit is 14 400).
const MAX_PAGE_SIDE: f32 = 14_400.0;

fn check_layout(l: &page_layout::Layout, chars: u32, pages: usize) -> Result<(), PluginError> {
    let bad = |m: String| Err(PluginError::InvalidOutput(format!("layout: {m}")));
    if l.pages.len() != pages {
        return bad(format!("{} page sizes for {pages} pages", l.pages.len()));
    }
    for (i, p) in l.pages.iter().enumerate() {
        let side = |v: f32| v.is_finite() && v > 0.0 && v <= MAX_PAGE_SIDE;
        if p.number as usize != i + 1 || !side(p.width) || !side(p.height) {
            return bad(format!(
                "page size {i} ({}: {} × {}) is out of order or not a page",
                p.number, p.width, p.height
            ));
        }
    }
    // Positions may stray past the page (text drawn off it) but not to
    // nonsense.
    let sane = |v: f32| v.is_finite() && v.abs() <= 4.0 * MAX_PAGE_SIDE;
    let mut prev_end = 0u32;
    for r in &l.runs {
        let end = r.start.checked_add(r.len());
        let ok = r.start >= prev_end
            && end.is_some_and(|e| e <= chars)
            && (1..=pages as u32).contains(&r.page)
            && sane(r.across.0)
            && sane(r.across.1)
            && r.edges.iter().all(|&(a, b)| sane(a) && sane(b));
        if !ok {
            return bad(format!(
                "the run at {} (page {}, {} characters) overlaps the one before, \
                 leaves the text of {chars} characters, or is not on a page",
                r.start,
                r.page,
                r.len()
            ));
        }
        prev_end = end.unwrap_or(chars);
    }
    for (i, t) in l.tables.iter().enumerate() {
        check_table(t, chars, pages as u32).or_else(|m| bad(format!("table {}: {m}", i + 1)))?;
    }
    Ok(())
}

/// A table: on pages the document has, in order; spans inside the text;
/// every row as wide as the others.
fn check_table(t: &page_layout::Table, chars: u32, pages: u32) -> Result<(), String> {
    let in_text = |(a, b): (u32, u32)| a <= b && b <= chars;
    if t.pages.is_empty()
        || t.pages.windows(2).any(|w| w[0] >= w[1])
        || t.pages.iter().any(|p| !(1..=pages).contains(p))
    {
        return Err(format!(
            "pages {:?} are out of order or not pages of the document",
            t.pages
        ));
    }
    if t.caption.is_some_and(|c| !in_text(c)) {
        return Err("its caption is outside the text".into());
    }
    let mut width = None;
    for (r, row) in t.rows.iter().enumerate() {
        let mut columns = 0u32;
        for cell in &row.cells {
            if cell.span.is_some_and(|s| !in_text(s)) || cell.row_span == 0 || cell.col_span == 0 {
                return Err(format!(
                    "a cell of row {} is outside the text or spans nothing",
                    r + 1
                ));
            }
            columns = columns.saturating_add(cell.col_span);
        }
        if *width.get_or_insert(columns) != columns || columns == 0 {
            return Err(format!(
                "row {} spans {columns} columns, not {}",
                r + 1,
                width.unwrap_or(0)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use page_layout::{Layout, PageSize, Table, TableCell, TableRow, TextRun};

    use super::*;

    fn doc(layout: Layout) -> ConvertedDocument {
        ConvertedDocument {
            markdown: "abcdef".into(),
            pages: vec![PageRange {
                number: 1,
                start: 0,
                end: 6,
            }],
            title: None,
            authors: Vec::new(),
            page_count: 1,
            producer: None,
            warnings: Vec::new(),
            layout: Some(layout),
        }
    }

    fn run(start: u32, n: usize, page: u32, x: f32) -> TextRun {
        TextRun {
            start,
            page,
            vertical: false,
            across: (10.0, 20.0),
            edges: vec![(x, x + 5.0); n],
        }
    }

    fn page() -> Vec<PageSize> {
        vec![PageSize {
            number: 1,
            width: 612.0,
            height: 792.0,
        }]
    }

    #[test]
    fn a_layout_places_only_the_text_in_order_on_real_pages() {
        let good = Layout {
            pages: page(),
            runs: vec![run(0, 2, 1, 0.0), run(3, 3, 1, 50.0)],
            ..Layout::default()
        };
        assert!(check(&doc(good), 1 << 20).is_ok());
        let bad = [
            // Overlapping runs.
            vec![run(0, 3, 1, 0.0), run(2, 2, 1, 0.0)],
            // Past the text.
            vec![run(4, 3, 1, 0.0)],
            // On a page the document does not have.
            vec![run(0, 1, 2, 0.0)],
            // Not a number.
            vec![run(0, 1, 1, f32::NAN)],
        ];
        for runs in bad {
            let l = Layout {
                pages: page(),
                runs,
                ..Layout::default()
            };
            assert!(
                matches!(
                    check(&doc(l.clone()), 1 << 20),
                    Err(PluginError::InvalidOutput(_))
                ),
                "{l:?}"
            );
        }
        let mut sizes = page();
        sizes[0].width = 0.0;
        let l = Layout {
            pages: sizes,
            ..Layout::default()
        };
        assert!(check(&doc(l), 1 << 20).is_err(), "a page without width");
        // Positions count against the output limit.
        let l = Layout {
            pages: page(),
            runs: vec![run(0, 6, 1, 0.0)],
            ..Layout::default()
        };
        assert!(check(&doc(l), 6 + 47).is_err());
    }

    fn cell(span: Option<(u32, u32)>, col_span: u32) -> TableCell {
        TableCell {
            span,
            row_span: 1,
            col_span,
            header: false,
        }
    }

    fn with_table(table: Table) -> ConvertedDocument {
        doc(Layout {
            pages: page(),
            tables: vec![table],
            ..Layout::default()
        })
    }

    #[test]
    fn tables_stay_in_the_text_and_keep_their_width() {
        let row = |cells: Vec<TableCell>| TableRow { cells };
        let good = Table {
            pages: vec![1],
            caption: Some((0, 2)),
            rows: vec![
                row(vec![cell(None, 2), cell(Some((2, 3)), 1)]),
                row(vec![
                    cell(Some((3, 4)), 1),
                    cell(None, 1),
                    cell(Some((5, 6)), 1),
                ]),
            ],
        };
        assert!(check(&with_table(good.clone()), 1 << 20).is_ok());
        let mut bad = Vec::new();
        let mut t = good.clone();
        t.rows[1].cells.pop();
        bad.push(("a narrower row", t));
        let mut t = good.clone();
        t.rows[0].cells[1].span = Some((5, 9));
        bad.push(("a cell past the text", t));
        let mut t = good.clone();
        t.rows[0].cells[1].col_span = 0;
        bad.push(("a cell spanning nothing", t));
        let mut t = good.clone();
        t.pages = vec![2];
        bad.push(("a page the document lacks", t));
        let mut t = good.clone();
        t.caption = Some((4, 2));
        bad.push(("a backwards caption", t));
        for (what, t) in bad {
            assert!(
                matches!(
                    check(&with_table(t), 1 << 20),
                    Err(PluginError::InvalidOutput(_))
                ),
                "{what}"
            );
        }
        // Cells count against the output limit.
        assert!(check(&with_table(good), 6 + 5 * 16 - 1).is_err());
    }
}
