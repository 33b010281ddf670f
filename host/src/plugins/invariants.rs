//! What a converter's output must be before the host keeps or serves it:
//! the contract's invariants, checked on every conversion and every
//! rendered page, and by `evistream plugin check`. A converter is a
//! tenant's own code: nothing it returns is trusted for size or shape.
//!
//! Counts are bounded by settings ([`DocumentBounds`]), so what one
//! document can make the host build later (a `tables` answer, a `boxes`
//! call, a signed page URL) is bounded by what a real paper needs, and
//! every refusal names the invariant it broke.

use page_layout::{Layout, Table};

use super::converter::ConvertedDocument;

/// The bounds a converted document and its page images are held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentBounds {
    /// Text plus located characters and cells, in bytes.
    pub max_output_bytes: u64,
    /// Pages of one document.
    pub max_pages: u32,
    /// Text runs (lines, cells) on one page.
    pub max_runs_per_page: u32,
    /// Tables of one document.
    pub max_tables: u32,
    /// Cells of all its tables together.
    pub max_cells: u32,
    /// Columns of one table.
    pub max_columns: u32,
    /// Bytes of one rendered page image.
    pub max_page_image_bytes: u64,
}

impl Default for DocumentBounds {
    fn default() -> Self {
        Self {
            max_output_bytes: 64 << 20,
            max_pages: 5_000,
            max_runs_per_page: 2_000,
            max_tables: 1_000,
            max_cells: 100_000,
            max_columns: 100,
            max_page_image_bytes: 8 << 20,
        }
    }
}

/// An invariant of the converter contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// The output fits the output limit.
    OutputSize,
    /// Page ranges are numbered from 1, in order, inside the text.
    PageRanges,
    /// The page count is the number of page ranges.
    PageCount,
    /// At most `max_pages` pages.
    PageLimit,
    /// One page size per page, in order, of a real page's size.
    PageSizes,
    /// Runs in text order, not overlapping, inside the text, on the
    /// document's pages, at finite positions.
    RunsInOrder,
    /// Every run holds at least one character.
    RunSize,
    /// At most `max_runs_per_page` runs on a page.
    RunsPerPage,
    /// At most `max_tables` tables and `max_cells` cells.
    TableLimit,
    /// A table is on pages of the document, in order, its caption inside the text.
    TablePlace,
    /// Cells lie inside the text, in order, not overlapping; a row's
    /// stretch of text does not reach back into the row before.
    CellsInRows,
    /// Every row spans the same columns (at most `max_columns`), every cell
    /// at least one row and column, no row span past the table.
    RowShape,
    /// A page image is a PNG of the requested width, within the size limit.
    PageImage,
}

impl Invariant {
    /// Stable name, as reports and errors show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::OutputSize => "output-size",
            Self::PageRanges => "page-ranges",
            Self::PageCount => "page-count",
            Self::PageLimit => "page-limit",
            Self::PageSizes => "page-sizes",
            Self::RunsInOrder => "runs-in-order",
            Self::RunSize => "run-size",
            Self::RunsPerPage => "runs-per-page",
            Self::TableLimit => "table-limit",
            Self::TablePlace => "table-place",
            Self::CellsInRows => "cells-in-rows",
            Self::RowShape => "row-shape",
            Self::PageImage => "page-image",
        }
    }
}

/// A broken invariant and what broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant {} broken: {detail}", invariant.name())]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// What was found.
    pub detail: String,
}

fn broken<T>(invariant: Invariant, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

/// Largest page side, in points (PDF's own limit is 14 400).
const MAX_PAGE_SIDE: f32 = 14_400.0;

/// Checks a converted document: size, page ranges, page count, and a
/// layout that places only that text, in order, on pages of a sane size,
/// with tables whose cells are the text's own, in order.
pub fn check_document(doc: &ConvertedDocument, b: &DocumentBounds) -> Result<(), Violation> {
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
    if size > b.max_output_bytes {
        return broken(
            Invariant::OutputSize,
            format!(
                "output of {size} bytes exceeds the limit of {} bytes",
                b.max_output_bytes
            ),
        );
    }
    if doc.pages.len() as u64 > u64::from(b.max_pages) {
        return broken(
            Invariant::PageLimit,
            format!(
                "{} pages, more than the limit of {}",
                doc.pages.len(),
                b.max_pages
            ),
        );
    }
    if doc.page_count as usize != doc.pages.len() {
        return broken(
            Invariant::PageCount,
            format!(
                "the document claims {} pages but gives {} page ranges",
                doc.page_count,
                doc.pages.len()
            ),
        );
    }
    let chars = doc.markdown.chars().count() as u32;
    let mut prev_end = 0u32;
    for (i, p) in doc.pages.iter().enumerate() {
        let ok =
            p.number as usize == i + 1 && p.start >= prev_end && p.start <= p.end && p.end <= chars;
        if !ok {
            return broken(
                Invariant::PageRanges,
                format!(
                    "page range {i} ({}: {}..{}) is out of order or outside the text of {chars} characters",
                    p.number, p.start, p.end
                ),
            );
        }
        prev_end = p.end;
    }
    if let Some(layout) = &doc.layout {
        check_layout(layout, chars, doc.pages.len(), b)?;
    }
    Ok(())
}

fn check_layout(l: &Layout, chars: u32, pages: usize, b: &DocumentBounds) -> Result<(), Violation> {
    if l.pages.len() != pages {
        return broken(
            Invariant::PageSizes,
            format!("{} page sizes for {pages} pages", l.pages.len()),
        );
    }
    for (i, p) in l.pages.iter().enumerate() {
        let side = |v: f32| v.is_finite() && v > 0.0 && v <= MAX_PAGE_SIDE;
        if p.number as usize != i + 1 || !side(p.width) || !side(p.height) {
            return broken(
                Invariant::PageSizes,
                format!(
                    "page size {i} ({}: {} × {}) is out of order or not a page",
                    p.number, p.width, p.height
                ),
            );
        }
    }
    // Positions may stray past the page (text drawn off it) but not to
    // nonsense.
    let sane = |v: f32| v.is_finite() && v.abs() <= 4.0 * MAX_PAGE_SIDE;
    let mut per_page = vec![0u32; pages];
    let mut prev_end = 0u32;
    for r in &l.runs {
        if r.is_empty() {
            return broken(
                Invariant::RunSize,
                format!(
                    "the run at {} (page {}) holds no character",
                    r.start, r.page
                ),
            );
        }
        let end = r.start.checked_add(r.len());
        let ok = r.start >= prev_end
            && end.is_some_and(|e| e <= chars)
            && (1..=pages as u32).contains(&r.page)
            && sane(r.across.0)
            && sane(r.across.1)
            && r.edges.iter().all(|&(a, b)| sane(a) && sane(b));
        if !ok {
            return broken(
                Invariant::RunsInOrder,
                format!(
                    "the run at {} (page {}, {} characters) overlaps the one before, \
                     leaves the text of {chars} characters, or is not on a page",
                    r.start,
                    r.page,
                    r.len()
                ),
            );
        }
        let n = &mut per_page[r.page as usize - 1];
        *n += 1;
        if *n > b.max_runs_per_page {
            return broken(
                Invariant::RunsPerPage,
                format!("page {} has more than {} runs", r.page, b.max_runs_per_page),
            );
        }
        prev_end = end.unwrap_or(chars);
    }
    if l.tables.len() as u64 > u64::from(b.max_tables) {
        return broken(
            Invariant::TableLimit,
            format!(
                "{} tables, more than the limit of {}",
                l.tables.len(),
                b.max_tables
            ),
        );
    }
    let cells: usize = l
        .tables
        .iter()
        .flat_map(|t| &t.rows)
        .map(|r| r.cells.len())
        .sum();
    if cells as u64 > u64::from(b.max_cells) {
        return broken(
            Invariant::TableLimit,
            format!(
                "{cells} table cells, more than the limit of {}",
                b.max_cells
            ),
        );
    }
    for (i, t) in l.tables.iter().enumerate() {
        check_table(t, chars, pages as u32, b).map_err(|v| Violation {
            detail: format!("table {}: {}", i + 1, v.detail),
            ..v
        })?;
    }
    Ok(())
}

/// A table: on pages the document has, in order; cells inside the text,
/// in order and disjoint, rows not reaching back into the row before;
/// every row as wide as the others.
fn check_table(t: &Table, chars: u32, pages: u32, b: &DocumentBounds) -> Result<(), Violation> {
    let in_text = |(a, b): (u32, u32)| a <= b && b <= chars;
    if t.pages.is_empty()
        || t.pages.windows(2).any(|w| w[0] >= w[1])
        || t.pages.iter().any(|p| !(1..=pages).contains(p))
    {
        return broken(
            Invariant::TablePlace,
            format!(
                "pages {:?} are out of order or not pages of the document",
                t.pages
            ),
        );
    }
    if t.caption.is_some_and(|c| !in_text(c)) {
        return broken(
            Invariant::TablePlace,
            "its caption is outside the text".into(),
        );
    }
    let mut width = None;
    // End of the text the rows so far took up.
    let mut taken = 0u32;
    let rows = t.rows.len() as u32;
    for (r, row) in t.rows.iter().enumerate() {
        let mut columns = 0u32;
        let mut row_start = None;
        for cell in &row.cells {
            if cell.row_span == 0 || cell.col_span == 0 || cell.row_span > rows - r as u32 {
                return broken(
                    Invariant::RowShape,
                    format!(
                        "a cell of row {} spans {} rows and {} columns",
                        r + 1,
                        cell.row_span,
                        cell.col_span
                    ),
                );
            }
            if let Some(span) = cell.span {
                if !in_text(span) {
                    return broken(
                        Invariant::CellsInRows,
                        format!("a cell of row {} lies outside the text", r + 1),
                    );
                }
                if span.0 < taken {
                    return broken(
                        Invariant::CellsInRows,
                        format!(
                            "a cell of row {} ({}..{}) overlaps the cell or row before it",
                            r + 1,
                            span.0,
                            span.1
                        ),
                    );
                }
                row_start.get_or_insert(span.0);
                taken = span.1;
            }
            columns = columns.saturating_add(cell.col_span);
        }
        if columns == 0 || columns > b.max_columns {
            return broken(
                Invariant::RowShape,
                format!(
                    "row {} spans {columns} columns (1 to {} allowed)",
                    r + 1,
                    b.max_columns
                ),
            );
        }
        if *width.get_or_insert(columns) != columns {
            return broken(
                Invariant::RowShape,
                format!(
                    "row {} spans {columns} columns, not {}",
                    r + 1,
                    width.unwrap_or(0)
                ),
            );
        }
    }
    Ok(())
}

/// The PNG signature.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The width and height a PNG's header (its first chunk, IHDR) declares.
pub fn png_dimensions(png: &[u8]) -> Option<(u32, u32)> {
    if !png.starts_with(PNG_SIGNATURE) || png.get(12..16) != Some(b"IHDR") {
        return None;
    }
    let be = |r: std::ops::Range<usize>| {
        png.get(r)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_be_bytes)
    };
    Some((be(16..20)?, be(20..24)?))
}

/// Checks a rendered page: a PNG whose header says it is `width` pixels
/// wide and of a page's height, no larger than that many pixels could
/// need (4 bytes a pixel) nor than the page-image limit.
pub fn check_page_image(png: &[u8], width: u32, b: &DocumentBounds) -> Result<(), Violation> {
    let Some((w, h)) = png_dimensions(png) else {
        return broken(
            Invariant::PageImage,
            "the rendered page is not a PNG image".into(),
        );
    };
    // A page's sides are at most 14 400 pt, at least 1 pt: bound the ratio.
    if w != width || h == 0 || u64::from(h) > u64::from(width) * 50 {
        return broken(
            Invariant::PageImage,
            format!("asked for a page {width} pixels wide, got {w} × {h}"),
        );
    }
    let raw = u64::from(w) * u64::from(h) * 4 + (64 << 10);
    let limit = raw.min(b.max_page_image_bytes);
    if png.len() as u64 > limit {
        return broken(
            Invariant::PageImage,
            format!(
                "an image of {} bytes for {w} × {h} pixels exceeds the limit of {limit} bytes",
                png.len()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use page_layout::{Layout, PageSize, Table, TableCell, TableRow, TextRun};

    use super::*;
    use crate::plugins::converter::PageRange;

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

    fn b() -> DocumentBounds {
        DocumentBounds {
            max_output_bytes: 1 << 20,
            ..DocumentBounds::default()
        }
    }

    fn broke(d: &ConvertedDocument, bounds: &DocumentBounds) -> Option<Invariant> {
        check_document(d, bounds).err().map(|v| v.invariant)
    }

    #[test]
    fn a_layout_places_only_the_text_in_order_on_real_pages() {
        let good = Layout {
            pages: page(),
            runs: vec![run(0, 2, 1, 0.0), run(3, 3, 1, 50.0)],
            ..Layout::default()
        };
        assert_eq!(broke(&doc(good), &b()), None);
        let bad = [
            (
                vec![run(0, 3, 1, 0.0), run(2, 2, 1, 0.0)],
                Invariant::RunsInOrder,
            ),
            (vec![run(4, 3, 1, 0.0)], Invariant::RunsInOrder),
            (vec![run(0, 1, 2, 0.0)], Invariant::RunsInOrder),
            (vec![run(0, 1, 1, f32::NAN)], Invariant::RunsInOrder),
            (vec![run(0, 0, 1, 0.0)], Invariant::RunSize),
        ];
        for (runs, expected) in bad {
            let l = Layout {
                pages: page(),
                runs,
                ..Layout::default()
            };
            assert_eq!(broke(&doc(l.clone()), &b()), Some(expected), "{l:?}");
        }
        let mut sizes = page();
        sizes[0].width = 0.0;
        let l = Layout {
            pages: sizes,
            ..Layout::default()
        };
        assert_eq!(broke(&doc(l), &b()), Some(Invariant::PageSizes));
        // Positions count against the output limit.
        let l = Layout {
            pages: page(),
            runs: vec![run(0, 6, 1, 0.0)],
            ..Layout::default()
        };
        let tight = DocumentBounds {
            max_output_bytes: 6 + 47,
            ..b()
        };
        assert_eq!(broke(&doc(l), &tight), Some(Invariant::OutputSize));
        // Runs per page are bounded.
        let l = Layout {
            pages: page(),
            runs: (0..6).map(|i| run(i, 1, 1, 0.0)).collect(),
            ..Layout::default()
        };
        let few = DocumentBounds {
            max_runs_per_page: 5,
            ..b()
        };
        assert_eq!(broke(&doc(l.clone()), &b()), None);
        assert_eq!(broke(&doc(l), &few), Some(Invariant::RunsPerPage));
    }

    #[test]
    fn the_page_count_is_the_page_ranges() {
        let mut d = doc(Layout {
            pages: page(),
            ..Layout::default()
        });
        d.page_count = 2_000_000_000;
        assert_eq!(broke(&d, &b()), Some(Invariant::PageCount));
        d.page_count = 1;
        let none = DocumentBounds {
            max_pages: 0,
            ..b()
        };
        assert_eq!(broke(&d, &none), Some(Invariant::PageLimit));
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
    fn tables_keep_their_cells_in_the_text_in_order_and_their_width() {
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
        assert_eq!(broke(&with_table(good.clone()), &b()), None);
        let mut bad = Vec::new();
        let mut t = good.clone();
        t.rows[1].cells.pop();
        bad.push(("a narrower row", t, Invariant::RowShape));
        let mut t = good.clone();
        t.rows[0].cells[1].span = Some((5, 9));
        bad.push(("a cell past the text", t, Invariant::CellsInRows));
        let mut t = good.clone();
        t.rows[0].cells[1].col_span = 0;
        bad.push(("a cell spanning nothing", t, Invariant::RowShape));
        let mut t = good.clone();
        t.rows[0].cells[1].row_span = 3;
        bad.push(("a cell spanning past the table", t, Invariant::RowShape));
        let mut t = good.clone();
        t.pages = vec![2];
        bad.push(("a page the document lacks", t, Invariant::TablePlace));
        let mut t = good.clone();
        t.caption = Some((4, 2));
        bad.push(("a backwards caption", t, Invariant::TablePlace));
        let mut t = good.clone();
        t.rows[1].cells[0].span = Some((0, 6));
        bad.push(("a cell spanning the whole text", t, Invariant::CellsInRows));
        let mut t = good.clone();
        t.rows[1].cells[2].span = Some((3, 4));
        bad.push(("two cells of a row sharing text", t, Invariant::CellsInRows));
        for (what, t, expected) in bad {
            assert_eq!(broke(&with_table(t), &b()), Some(expected), "{what}");
        }
        // Cells count against the output limit and the cell limit.
        let tight = DocumentBounds {
            max_output_bytes: 6 + 5 * 16 - 1,
            ..b()
        };
        assert_eq!(
            broke(&with_table(good.clone()), &tight),
            Some(Invariant::OutputSize)
        );
        let few = DocumentBounds {
            max_cells: 4,
            ..b()
        };
        assert_eq!(broke(&with_table(good), &few), Some(Invariant::TableLimit));
    }

    fn png(w: u32, h: u32, len: usize) -> Vec<u8> {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend_from_slice(&[0, 0, 0, 13]);
        p.extend_from_slice(b"IHDR");
        p.extend_from_slice(&w.to_be_bytes());
        p.extend_from_slice(&h.to_be_bytes());
        p.resize(len.max(p.len()), 0);
        p
    }

    #[test]
    fn a_page_image_is_a_png_of_the_width_asked_and_a_bounded_size() {
        assert_eq!(png_dimensions(&png(800, 1035, 0)), Some((800, 1035)));
        assert!(check_page_image(&png(800, 1035, 200_000), 800, &b()).is_ok());
        for (what, image) in [
            ("another width", png(10, 13, 100)),
            ("no height", png(800, 0, 100)),
            ("16 MB behind a signature", png(800, 1035, 16 << 20)),
            ("not a PNG", b"GIF89a".to_vec()),
        ] {
            assert_eq!(
                check_page_image(&image, 800, &b())
                    .err()
                    .map(|v| v.invariant),
                Some(Invariant::PageImage),
                "{what}"
            );
        }
        // Larger than its pixels could need.
        assert!(check_page_image(&png(100, 100, 100 * 100 * 4 + 70_000), 100, &b()).is_err());
    }
}
