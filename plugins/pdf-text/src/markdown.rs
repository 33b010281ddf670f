//! Markdown output and the page ranges into it.
//!
//! Offsets count Unicode code points (the WIT contract's unit), so the
//! writer counts characters as it goes rather than measuring bytes.

use page_layout::{Table, TableCell, TableRow};

use crate::layout::Line;
use crate::tables::Grid;
use crate::text::{Block, BlockKind, Join, Vocabulary};
use crate::{PageRange, TextRun};

/// Separator between the cells of a table row.
pub const CELL_SEPARATOR: &str = " | ";

/// The markdown of a document and where each page's text sits in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The whole document as markdown.
    pub markdown: String,
    /// One range per page, in order, covering the markdown.
    pub pages: Vec<PageRange>,
    /// Where the text lies on the pages: one run per line (per cell in a
    /// table row), in markdown order.
    pub runs: Vec<TextRun>,
    /// The tables, as cells located in the markdown.
    pub tables: Vec<Table>,
}

/// A page's frame: what turns a line's reading-frame coordinates into the
/// page's (points from the top-left corner of the media box).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Frame {
    /// The media box's top-left corner in PDF user space.
    pub origin: (f32, f32),
}

/// Appends text while counting code points.
struct Writer {
    out: String,
    chars: u32,
    /// Code point offset where each page's first line starts, if any.
    page_starts: Vec<Option<u32>>,
    runs: Vec<TextRun>,
}

impl Writer {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        self.chars += s.chars().count() as u32;
    }

    /// Appends a line's (or a cell's) text and notes where its characters
    /// lie on the page.
    fn push_located(&mut self, text: &str, edges: &[(f32, f32)], line: &Line, frame: Frame) {
        let start = self.chars;
        self.push(text);
        if edges.is_empty() || edges.len() != text.chars().count() {
            return;
        }
        self.runs
            .push(crate::run_from_frame(start, line, edges, frame));
    }

    /// Drops the hyphen that ends the output (a word split at a line break).
    fn pop_hyphen(&mut self) {
        if self.out.ends_with(['-', '\u{2010}', '\u{AD}']) && self.out.pop().is_some() {
            self.chars -= 1;
            if let Some(run) = self.runs.last_mut()
                && run.start + run.len() > self.chars
            {
                run.edges.pop();
            }
        }
    }

    /// Notes that the text of `page` starts here (the first time only).
    fn mark_page(&mut self, page: u32) {
        if let Some(slot) = self.page_starts.get_mut(page.saturating_sub(1) as usize)
            && slot.is_none()
        {
            *slot = Some(self.chars);
        }
    }
}

/// Writes the blocks as markdown: `#` for the title, `##` for headings,
/// paragraphs with their lines joined, tables with a grid as markdown
/// tables (other table blocks one row per line, cells apart).
///
/// `frames` holds each page's frame (by page number, from 1), to place the
/// text on its page.
pub fn render(
    lines: &[Line],
    blocks: &[Block],
    grids: &[Grid],
    page_count: u32,
    vocab: &Vocabulary,
    frames: &[Frame],
) -> Rendered {
    let mut w = Writer {
        out: String::new(),
        chars: 0,
        page_starts: vec![None; page_count as usize],
        runs: Vec::new(),
    };
    let frame_of = |line: &Line| {
        frames
            .get(line.page.saturating_sub(1) as usize)
            .copied()
            .unwrap_or_default()
    };
    let mut spans: Vec<(u32, u32)> = Vec::with_capacity(blocks.len());
    let mut parts: Vec<Part> = Vec::with_capacity(grids.len());
    let mut next_grid = grids.iter().peekable();
    for (b, block) in blocks.iter().enumerate() {
        if b > 0 {
            w.push("\n\n");
        }
        let start = w.chars;
        if let Some(grid) = next_grid.next_if(|g| g.block == b) {
            parts.push(write_grid(&mut w, grid, lines, &frame_of));
            spans.push((start, w.chars));
            continue;
        }
        let mut previous: Option<String> = None;
        for (n, &i) in block.lines.iter().enumerate() {
            let line = &lines[i];
            let frame = frame_of(line);
            // Each piece of the line with where its characters lie.
            let pieces: Vec<(String, Vec<(f32, f32)>)> = match block.kind {
                BlockKind::Table => line
                    .cells
                    .iter()
                    .map(|c| clean(&c.text, &c.edges))
                    .collect(),
                _ => {
                    let (text, edges) = line.text_with_edges();
                    vec![clean(&text, &edges)]
                }
            };
            let text = pieces
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(CELL_SEPARATOR);
            if n > 0 {
                match block.kind {
                    BlockKind::Table => w.push("\n"),
                    _ => match previous.as_deref().map(|p| vocab.join(p, &text)) {
                        Some(Join::Dehyphenate) => w.pop_hyphen(),
                        Some(Join::KeepHyphen) => {}
                        _ => w.push(" "),
                    },
                }
            }
            w.mark_page(line.page);
            if n == 0 {
                match block.kind {
                    BlockKind::Title => w.push("# "),
                    BlockKind::Heading => w.push("## "),
                    // A paragraph that starts with "#" is not a heading.
                    _ if text.starts_with('#') => w.push("\\"),
                    _ => {}
                }
            }
            for (k, (piece, edges)) in pieces.iter().enumerate() {
                if k > 0 {
                    w.push(CELL_SEPARATOR);
                }
                w.push_located(piece, edges, line, frame);
            }
            previous = Some(text);
        }
        // A soft hyphen that ends a block hyphenates nothing.
        if w.out.ends_with('\u{AD}') {
            w.pop_hyphen();
        }
        spans.push((start, w.chars));
    }
    if !w.out.is_empty() {
        w.push("\n");
    }
    let pages = page_ranges(&w.page_starts, w.chars);
    let tables = join_parts(grids, parts, &spans);
    Rendered {
        markdown: w.out,
        pages,
        runs: w.runs,
        tables,
    }
}

/// One table part as written: its rows, each row's cell texts (to tell a
/// repeated header) and its page.
struct Part {
    rows: Vec<TableRow>,
    texts: Vec<Vec<String>>,
    page: u32,
}

/// Writes a grid as a markdown table: a row per line, `|` between cells,
/// the `---` rule under the first row; a cell spanning columns is followed
/// by empty ones. Notes where each cell's text lies.
fn write_grid(
    w: &mut Writer,
    grid: &Grid,
    lines: &[Line],
    frame_of: &dyn Fn(&Line) -> Frame,
) -> Part {
    let mut rows = Vec::with_capacity(grid.rows.len());
    let mut texts = Vec::with_capacity(grid.rows.len());
    let mut page = 0;
    for (r, row) in grid.rows.iter().enumerate() {
        if r > 0 {
            w.push("\n");
        }
        w.push("|");
        let mut cells = Vec::new();
        let mut row_texts = Vec::new();
        let mut col = 0;
        let mut next = row.cells.iter().peekable();
        while col < grid.columns {
            let Some(cell) = next.next_if(|c| c.col == col) else {
                w.push(" |");
                cells.push(TableCell {
                    span: None,
                    row_span: 1,
                    col_span: 1,
                    header: row.header,
                });
                col += 1;
                continue;
            };
            w.push(" ");
            let start = w.chars;
            let byte_start = w.out.len();
            for (k, piece) in cell.pieces.iter().enumerate() {
                if k > 0 {
                    w.push(" ");
                }
                let line = &lines[piece.line];
                let source = &line.cells[piece.cell];
                let (text, edges) = clean(&source.text, &source.edges);
                let (text, edges) = escape_pipes(&text, &edges);
                page = line.page;
                w.mark_page(line.page);
                w.push_located(&text, &edges, line, frame_of(line));
            }
            row_texts.push(w.out[byte_start..].to_string());
            cells.push(TableCell {
                span: Some((start, w.chars)),
                row_span: 1,
                col_span: cell.span as u32,
                header: row.header,
            });
            w.push(" |");
            // Markdown has no spans: the columns it covers stay empty.
            for _ in 1..cell.span {
                w.push(" |");
            }
            col += cell.span.max(1);
        }
        rows.push(TableRow { cells });
        texts.push(row_texts);
        if r == 0 {
            w.push("\n|");
            for _ in 0..grid.columns {
                w.push(" --- |");
            }
        }
    }
    Part { rows, texts, page }
}

/// `|` inside a cell is written `\|`; the backslash takes the bar's place.
fn escape_pipes(text: &str, edges: &[(f32, f32)]) -> (String, Vec<(f32, f32)>) {
    if !text.contains('|') {
        return (text.to_string(), edges.to_vec());
    }
    let located = edges.len() == text.chars().count();
    let mut out = String::with_capacity(text.len() + 2);
    let mut kept = Vec::with_capacity(edges.len() + 2);
    for (i, c) in text.chars().enumerate() {
        if c == '|' {
            out.push('\\');
            if located {
                kept.push(edges[i]);
            }
        }
        out.push(c);
        if located {
            kept.push(edges[i]);
        }
    }
    (out, kept)
}

/// Joins the parts of tables broken across pages into one table each; a
/// continuation's repeated header rows are left out of it (they are in
/// the markdown still).
fn join_parts(grids: &[Grid], parts: Vec<Part>, spans: &[(u32, u32)]) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    // Which table each grid went into, and the header texts of that table.
    let mut into: Vec<usize> = Vec::with_capacity(grids.len());
    let mut headers: Vec<Vec<Vec<String>>> = Vec::new();
    for (grid, part) in grids.iter().zip(parts) {
        let header_rows = part
            .rows
            .iter()
            .take_while(|r| r.cells.iter().any(|c| c.header))
            .count();
        match grid.continues.and_then(|g| into.get(g).copied()) {
            Some(t) => {
                let repeated = header_rows > 0 && part.texts[..header_rows] == headers[t][..];
                let skip = if repeated { header_rows } else { 0 };
                let table = &mut tables[t];
                table.rows.extend(part.rows.into_iter().skip(skip));
                if table.pages.last() != Some(&part.page) {
                    table.pages.push(part.page);
                }
                into.push(t);
            }
            None => {
                headers.push(part.texts[..header_rows].to_vec());
                tables.push(Table {
                    pages: vec![part.page],
                    caption: grid.caption.and_then(|c| spans.get(c).copied()),
                    rows: part.rows,
                });
                into.push(tables.len() - 1);
            }
        }
    }
    tables
}

/// Turns page start offsets into contiguous ranges: a page runs from its
/// first line to the next page's first line; the first page starts at 0, a
/// page without text is an empty range where it would have been.
fn page_ranges(starts: &[Option<u32>], total: u32) -> Vec<PageRange> {
    let mut resolved = vec![total; starts.len()];
    let mut next = total;
    for (i, start) in starts.iter().enumerate().rev() {
        if let Some(s) = *start {
            next = s.min(next);
        }
        resolved[i] = next;
    }
    if let Some(first) = resolved.first_mut() {
        *first = 0;
    }
    (0..starts.len())
        .map(|i| PageRange {
            number: i as u32 + 1,
            start: resolved[i],
            end: resolved.get(i + 1).copied().unwrap_or(total),
        })
        .collect()
}

/// Soft hyphens inside a line are invisible: drop them (one at the end of
/// a line is handled by the join), with their positions (`edges`, one per
/// character, or empty when unknown).
fn clean(text: &str, edges: &[(f32, f32)]) -> (String, Vec<(f32, f32)>) {
    let located = edges.len() == text.chars().count();
    let n = text.chars().count();
    let mut out = String::with_capacity(text.len());
    let mut kept = Vec::with_capacity(if located { n } else { 0 });
    for (i, c) in text.chars().enumerate() {
        if c == '\u{AD}' && i + 1 < n {
            continue;
        }
        out.push(c);
        if located {
            kept.push(edges[i]);
        }
    }
    (out, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_text_in_order() {
        let r = page_ranges(&[Some(0), None, Some(10), Some(25)], 40);
        let spans: Vec<(u32, u32, u32)> = r.iter().map(|p| (p.number, p.start, p.end)).collect();
        assert_eq!(
            spans,
            vec![(1, 0, 10), (2, 10, 10), (3, 10, 25), (4, 25, 40)]
        );
    }

    #[test]
    fn a_first_page_without_text_starts_at_zero() {
        let r = page_ranges(&[None, Some(0)], 5);
        let spans: Vec<(u32, u32)> = r.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(spans, vec![(0, 0), (0, 5)]);
    }
}
