//! Where a converted document's text lies on its pages.
//!
//! A converter describes its markdown's place on the PDF as [`TextRun`]s:
//! one per line of text (or table cell), with the position of every
//! character along the line. From them, [`boxes`] turns any span of the
//! markdown into rectangles on the pages, one per line the span crosses,
//! as fractions of the page (0..1, origin top left), which is what a
//! viewer draws over a page image of any size.
//!
//! Offsets count Unicode code points of the markdown; coordinates are PDF
//! points from the top-left corner of the page's media box, y downwards.

use serde::{Deserialize, Serialize};

/// A page's size in PDF points (its media box).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageSize {
    /// 1-based page number.
    pub number: u32,
    /// Width in points.
    pub width: f32,
    /// Height in points.
    pub height: f32,
}

/// Where a stretch of the markdown lies on its page: one line of text, or
/// one table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextRun {
    /// First code point of the stretch in the markdown.
    pub start: u32,
    /// 1-based page number.
    pub page: u32,
    /// The text runs up or down the page (rotated text) rather than across.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vertical: bool,
    /// The line's extent across its direction: top and bottom (or left and
    /// right, for vertical text).
    pub across: (f32, f32),
    /// Where each character lies along the line's direction: from and to
    /// (x, or y for vertical text); one pair per code point of the stretch.
    pub edges: Vec<(f32, f32)>,
}

impl TextRun {
    /// Code points in the stretch.
    pub fn len(&self) -> u32 {
        self.edges.len() as u32
    }

    /// Whether the stretch is empty.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// One past the stretch's last code point.
    pub fn end(&self) -> u32 {
        self.start + self.len()
    }
}

/// Where a document's text lies on its pages.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Layout {
    /// Every page's size, in order.
    pub pages: Vec<PageSize>,
    /// The text's runs, in markdown order and not overlapping; text outside
    /// every run (markdown marks, table cell separators) is not on a page.
    pub runs: Vec<TextRun>,
    /// The tables the converter recovered, in markdown order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<Table>,
}

/// A table recovered as cells. A table continued on the next page is one
/// table: its `pages` lists both and its rows run on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    /// The pages the table is on, in order.
    pub pages: Vec<u32>,
    /// Where the caption ("Table 2 Outcomes at 12 weeks") lies in the
    /// markdown, when the table has one: start and end code points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<(u32, u32)>,
    /// Rows from the top; each row's column spans add up to the table's
    /// column count.
    pub rows: Vec<TableRow>,
}

/// One row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TableRow {
    /// Cells from the left.
    pub cells: Vec<TableCell>,
}

/// One cell of a [`TableRow`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableCell {
    /// The cell's text in the markdown: start and end code points; none
    /// when the cell is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<(u32, u32)>,
    /// Rows the cell covers (1 for most).
    pub row_span: u32,
    /// Columns the cell covers (more than 1 for a heading over several).
    pub col_span: u32,
    /// Whether the cell is a column heading.
    pub header: bool,
}

impl Layout {
    /// The spans of every non-empty table cell, in text order.
    pub fn cell_spans(&self) -> Vec<(u32, u32)> {
        let mut spans: Vec<(u32, u32)> = self
            .tables
            .iter()
            .flat_map(|t| &t.rows)
            .flat_map(|r| &r.cells)
            .filter_map(|c| c.span)
            .collect();
        spans.sort_unstable();
        spans
    }
}

impl Table {
    /// Number of columns: the widest row's spans.
    pub fn columns(&self) -> u32 {
        self.rows
            .iter()
            .map(|r| r.cells.iter().map(|c| c.col_span).sum::<u32>())
            .max()
            .unwrap_or(0)
    }
}

/// A rectangle on a page, in fractions of the page's width and height
/// (0..1, origin top left).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// 1-based page number.
    pub page: u32,
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl Layout {
    /// The rectangles of the markdown's code points `start..end`: one per
    /// run the span touches (a line, or a table cell). Empty when no part
    /// of the span is on a page.
    pub fn boxes(&self, start: u32, end: u32) -> Vec<Rect> {
        if end <= start {
            return Vec::new();
        }
        // Runs are in markdown order: find the first that ends after start.
        let first = self.runs.partition_point(|r| r.end() <= start);
        let mut out = Vec::new();
        for run in self.runs[first..].iter().take_while(|r| r.start < end) {
            let from = (start.max(run.start) - run.start) as usize;
            let to = (end.min(run.end()) - run.start) as usize;
            let Some(part) = run.edges.get(from..to) else {
                continue;
            };
            let Some((a, b)) = extent(part) else {
                continue;
            };
            let Some(page) = self.pages.iter().find(|p| p.number == run.page) else {
                continue;
            };
            if page.width <= 0.0 || page.height <= 0.0 {
                continue;
            }
            let (c, d) = run.across;
            let ((x0, x1), (y0, y1)) = if run.vertical {
                ((c, d), (a, b))
            } else {
                ((a, b), (c, d))
            };
            let fx = |v: f32| (v / page.width).clamp(0.0, 1.0);
            let fy = |v: f32| (v / page.height).clamp(0.0, 1.0);
            out.push(Rect {
                page: run.page,
                x: fx(x0),
                y: fy(y0),
                width: fx(x1) - fx(x0),
                height: fy(y1) - fy(y0),
            });
        }
        out
    }
}

/// The extent along the line of some characters' positions.
fn extent(part: &[(f32, f32)]) -> Option<(f32, f32)> {
    let lo = part
        .iter()
        .map(|e| e.0.min(e.1))
        .fold(f32::INFINITY, f32::min);
    let hi = part
        .iter()
        .map(|e| e.0.max(e.1))
        .fold(f32::NEG_INFINITY, f32::max);
    (lo.is_finite() && hi.is_finite() && hi >= lo).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        // Page 1 (200 × 100 pt): "ab cd" on one line at y 10..20, then a
        // marker "\n\n" off the page, then "ef" at y 30..40 on page 2.
        Layout {
            pages: vec![
                PageSize {
                    number: 1,
                    width: 200.0,
                    height: 100.0,
                },
                PageSize {
                    number: 2,
                    width: 200.0,
                    height: 100.0,
                },
            ],
            runs: vec![
                TextRun {
                    start: 0,
                    page: 1,
                    vertical: false,
                    across: (10.0, 20.0),
                    edges: vec![
                        (20.0, 30.0),
                        (30.0, 40.0),
                        (40.0, 50.0),
                        (50.0, 60.0),
                        (60.0, 70.0),
                    ],
                },
                TextRun {
                    start: 7,
                    page: 2,
                    vertical: false,
                    across: (30.0, 40.0),
                    edges: vec![(100.0, 110.0), (110.0, 120.0)],
                },
            ],
            tables: Vec::new(),
        }
    }

    /// `(page, x, y, width, height)` rounded to 1/1000 of the page.
    fn rounded(b: &[Rect]) -> Vec<(u32, i32, i32, i32, i32)> {
        let r = |v: f32| (v * 1000.0).round() as i32;
        b.iter()
            .map(|b| (b.page, r(b.x), r(b.y), r(b.width), r(b.height)))
            .collect()
    }

    #[test]
    fn a_span_inside_a_line_is_one_box_in_page_fractions() {
        assert_eq!(rounded(&layout().boxes(3, 5)), [(1, 250, 100, 100, 100)]);
    }

    #[test]
    fn a_span_across_lines_and_pages_gives_a_box_per_line() {
        assert_eq!(
            rounded(&layout().boxes(1, 9)),
            [(1, 150, 100, 200, 100), (2, 500, 300, 100, 100)]
        );
    }

    #[test]
    fn text_off_the_page_and_empty_spans_have_no_box() {
        assert!(layout().boxes(5, 7).is_empty());
        assert!(layout().boxes(4, 4).is_empty());
        assert!(layout().boxes(9, 3).is_empty());
        assert!(layout().boxes(100, 200).is_empty());
    }

    #[test]
    fn vertical_text_boxes_swap_the_axes() {
        let l = Layout {
            pages: vec![PageSize {
                number: 1,
                width: 100.0,
                height: 200.0,
            }],
            runs: vec![TextRun {
                start: 0,
                page: 1,
                vertical: true,
                across: (10.0, 20.0),
                edges: vec![(150.0, 160.0), (140.0, 150.0)],
            }],
            tables: Vec::new(),
        };
        assert_eq!(rounded(&l.boxes(0, 2)), [(1, 100, 700, 100, 100)]);
    }
}
