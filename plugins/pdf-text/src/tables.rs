//! Tables as cells: columns, header rows, captions and tables continued on
//! the next page, from the table blocks of [`crate::text::blocks`].
//!
//! Most trial papers draw tables without vertical rules, often without any,
//! so the grid comes from the text alone:
//!
//! 1. **Region**: a table block (lines with several cells), with the short
//!    label lines between its parts ("Demographics", "Race") taken in.
//! 2. **Columns**: the x-ranges that the cells of the table's fuller rows
//!    cover; a gap no cell (or hardly any) crosses separates two columns.
//!    Every cell then takes the columns it overlaps, so a heading centred
//!    over three columns spans three.
//! 3. **Rows**: the lines above the first line with a number in a value
//!    column are the header; its wrapped lines are joined per column. In
//!    the body a label that wraps onto a line of its own joins its row.
//! 4. **Caption and continuation**: a "Table 2 ..." paragraph just above is
//!    the caption; a captionless (or "continued") table at the top of the
//!    next page with the same columns goes on the table before.

use crate::layout::Line;
use crate::text::{Block, BlockKind};

/// Lines a table part needs with cells in at least two columns.
const MIN_ROWS: usize = 2;
/// More columns than this is not a table a reader could use (a scatter of
/// figure labels, say): left as rows.
const MAX_COLUMNS: usize = 40;
/// Label paragraphs taken in between two parts of one table, at most.
const MAX_LABEL_BLOCKS: usize = 4;

/// A piece of a table cell: cell `cell` of line `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Index into the document's lines.
    pub line: usize,
    /// Index into that line's cells.
    pub cell: usize,
}

/// One cell of a grid row: the pieces of text it holds, top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    /// First column.
    pub col: usize,
    /// Columns covered.
    pub span: usize,
    /// Its text, in reading order (a wrapped cell has several).
    pub pieces: Vec<Piece>,
}

/// A row of a table part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GridRow {
    /// The row's non-empty cells from the left, not overlapping.
    pub cells: Vec<GridCell>,
    /// Whether the row is a header row.
    pub header: bool,
}

/// A table as found in one block (one page's part of a table).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Index of its block.
    pub block: usize,
    /// Number of columns.
    pub columns: usize,
    /// Rows from the top.
    pub rows: Vec<GridRow>,
    /// The caption's block, when a "Table N" paragraph stands just above.
    pub caption: Option<usize>,
    /// Index of the grid this one continues (a table broken across pages).
    pub continues: Option<usize>,
}

/// Takes label paragraphs between two parts of a table into the table,
/// then recovers a grid for every table block that has one. Returns the
/// new blocks and the grids (in block order).
pub fn tables(blocks: Vec<Block>, lines: &[Line]) -> (Vec<Block>, Vec<Grid>) {
    let blocks = absorb_labels(blocks, lines);
    let mut grids: Vec<Grid> = Vec::new();
    for (b, block) in blocks.iter().enumerate() {
        if block.kind != BlockKind::Table {
            continue;
        }
        let Some(mut grid) = grid(b, &block.lines, lines) else {
            continue;
        };
        grid.caption = caption(&blocks, b, lines);
        if grid
            .caption
            .is_none_or(|c| is_continued(&block_text(&blocks[c], lines)))
            && let Some(prev) = grids.last()
            && continues(prev, &grid, &blocks, lines)
        {
            grid.continues = Some(grids.len() - 1);
        }
        grids.push(grid);
    }
    (blocks, grids)
}

/// Merges table blocks separated only by a few short label paragraphs on
/// the same page (a row group's name, a label wrapped onto its own line).
fn absorb_labels(blocks: Vec<Block>, lines: &[Line]) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    let mut i = 0;
    while i < blocks.len() {
        let block = &blocks[i];
        if block.kind != BlockKind::Table {
            out.push(block.clone());
            i += 1;
            continue;
        }
        let mut merged = block.clone();
        i += 1;
        loop {
            // Find the next table block within a few label blocks.
            let mut j = i;
            while j < blocks.len()
                && j - i < MAX_LABEL_BLOCKS
                && blocks[j].kind != BlockKind::Table
                && is_label_block(&blocks[j], &merged, lines)
            {
                j += 1;
            }
            let joins = j < blocks.len()
                && blocks[j].kind == BlockKind::Table
                && same_page(&merged, &blocks[j], lines);
            if !joins {
                break;
            }
            for block in &blocks[i..=j] {
                merged.lines.extend(block.lines.iter().copied());
            }
            i = j + 1;
        }
        out.push(merged);
    }
    out
}

/// Whether a paragraph is a short label inside the table's width.
fn is_label_block(block: &Block, table: &Block, lines: &[Line]) -> bool {
    if !matches!(block.kind, BlockKind::Paragraph | BlockKind::Heading)
        || block.lines.len() > 3
        || is_caption(&block_text(block, lines))
    {
        return false;
    }
    let (x0, x1) = extent(&table.lines, lines);
    let width = (x1 - x0).max(1.0);
    let Some(&first) = table.lines.first() else {
        return false;
    };
    block.lines.iter().all(|&i| {
        let l = &lines[i];
        let em = l.size.max(1.0);
        l.page == lines[first].page
            && l.x0 >= x0 - 2.0 * em
            && l.x1 <= x1 + 2.0 * em
            && (l.x1 - l.x0) <= 0.6 * width
            && l.chars <= 80
    })
}

fn same_page(a: &Block, b: &Block, lines: &[Line]) -> bool {
    match (a.lines.first(), b.lines.first()) {
        (Some(&x), Some(&y)) => lines[x].page == lines[y].page,
        _ => false,
    }
}

/// Leftmost and rightmost edge of some lines.
fn extent(of: &[usize], lines: &[Line]) -> (f32, f32) {
    of.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &i| {
            (a.min(lines[i].x0), b.max(lines[i].x1))
        })
}

/// The grid of a table block, if it has at least two rows with cells in
/// two columns.
fn grid(block: usize, of: &[usize], lines: &[Line]) -> Option<Grid> {
    let columns = columns(of, lines);
    if columns.len() < 2 || columns.len() > MAX_COLUMNS {
        return None;
    }
    // Each line's cells, placed in columns.
    let placed: Vec<(usize, Vec<GridCell>)> = of
        .iter()
        .map(|&i| (i, place(i, &lines[i], &columns)))
        .collect();
    let multi = placed.iter().filter(|(_, cells)| cells.len() >= 2).count();
    if multi < MIN_ROWS || is_prose(of, lines) {
        return None;
    }
    let first_data = placed
        .iter()
        .position(|(i, cells)| is_data(&lines[*i], cells));
    // The header: lines above the first data line, down to the last one
    // with something in a value column (group labels below it are body).
    let header_lines = match first_data {
        Some(d) => placed[..d]
            .iter()
            .rposition(|(_, cells)| cells.iter().any(|c| c.col > 0 || c.span > 1))
            .map_or(0, |k| k + 1),
        None => usize::from(placed.first().is_some_and(|(_, c)| c.len() >= 2)),
    };
    let mut rows: Vec<GridRow> = Vec::new();
    let mut previous_line: Option<usize> = None;
    for (k, (i, cells)) in placed.into_iter().enumerate() {
        let line = &lines[i];
        let header = k < header_lines;
        let near = previous_line.is_some_and(|p| near_below(&lines[p], line));
        previous_line = Some(i);
        if let Some(last) = rows.last_mut()
            && near
            && joins(last, &cells, header, lines)
        {
            for cell in cells {
                merge_into(last, cell);
            }
            continue;
        }
        rows.push(GridRow { cells, header });
    }
    Some(Grid {
        block,
        columns: columns.len(),
        rows,
        caption: None,
        continues: None,
    })
}

/// Cells this long are sentences rather than table entries.
const PROSE_CELL: usize = 30;

/// Whether the "table" is running text whose columns were not told apart
/// (two text columns read side by side): most of its cells are long.
fn is_prose(of: &[usize], lines: &[Line]) -> bool {
    let (mut cells, mut long) = (0, 0);
    for &i in of {
        for cell in &lines[i].cells {
            cells += 1;
            long += usize::from(cell.text.chars().count() >= PROSE_CELL);
        }
    }
    2 * long > cells
}

/// Whether line `b` sits right under line `a` (no blank line between).
fn near_below(a: &Line, b: &Line) -> bool {
    let em = a.size.max(b.size).max(1.0);
    a.page == b.page && b.baseline > a.baseline && b.baseline - a.baseline <= 1.6 * em
}

/// Whether a line's cells continue the row above rather than start one.
fn joins(row: &GridRow, cells: &[GridCell], header: bool, lines: &[Line]) -> bool {
    if header {
        // A wrapped column heading: the line's cells each in one column,
        // under a row that is not a row of spanning headings.
        return row.header
            && cells.iter().all(|c| c.span == 1)
            && row.cells.iter().all(|c| c.span == 1);
    }
    if row.header {
        return false;
    }
    let text = |c: &GridCell| -> String {
        c.pieces
            .iter()
            .map(|p| lines[p.line].cells[p.cell].text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let label_only = |cs: &[GridCell]| cs.len() == 1 && cs[0].col == 0 && cs[0].span == 1;
    let row_label = row.cells.first().filter(|c| c.col == 0).map(text);
    if label_only(cells) {
        // A row label wrapped onto its own line: it starts in lower case,
        // or the label above stops mid-phrase.
        let next = text(&cells[0]);
        return row_label.is_some()
            && (next.chars().next().is_some_and(char::is_lowercase)
                || row_label.as_deref().is_some_and(ends_mid_phrase));
    }
    let no_label = cells.iter().all(|c| c.col > 0);
    if !no_label {
        return false;
    }
    // Values under a label that wrapped above them: the label line stops
    // mid-phrase and had no values of its own.
    if label_only(&row.cells) {
        return row_label.as_deref().is_some_and(ends_mid_phrase);
    }
    // A wrapped heading inside the body ("P-value for" / "differences"):
    // words under words, in columns the row above has words in.
    let words = |c: &GridCell| {
        !c.pieces
            .iter()
            .any(|p| is_numeric(&lines[p.line].cells[p.cell].text))
    };
    cells.iter().all(|c| {
        words(c)
            && row
                .cells
                .iter()
                .any(|r| r.col <= c.col && c.col < r.col + r.span && words(r))
    })
}

/// Words after which a label cannot end.
const CONNECTORS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "least", "of", "on", "or", "per", "than",
    "the", "to", "under", "with", "within", "without", "vs", "versus",
];

/// Whether a label visibly goes on (a comma, hyphen or open bracket, or a
/// connecting word at its end).
fn ends_mid_phrase(label: &str) -> bool {
    let t = label.trim_end();
    if t.ends_with([',', '-', '(', '/', '&', '\u{2010}']) {
        return true;
    }
    let last = t
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    CONNECTORS.contains(&last.as_str())
}

/// Adds a line's cell to a row: into the cell of the same column, else as
/// a new cell in column order.
fn merge_into(row: &mut GridRow, cell: GridCell) {
    if let Some(existing) = row
        .cells
        .iter_mut()
        .find(|c| c.col <= cell.col && cell.col < c.col + c.span)
    {
        existing.pieces.extend(cell.pieces);
        return;
    }
    let at = row.cells.partition_point(|c| c.col < cell.col);
    row.cells.insert(at, cell);
    // A new cell must not run into the next one.
    let next = row.cells.get(at + 1).map(|c| c.col);
    if let Some(next) = next {
        let c = &mut row.cells[at];
        c.span = c.span.min(next - c.col).max(1);
    }
}

/// Whether a line holds the table's data: a number in a value column.
fn is_data(line: &Line, cells: &[GridCell]) -> bool {
    cells
        .iter()
        .filter(|c| c.col > 0)
        .flat_map(|c| c.pieces.iter())
        .any(|p| is_numeric(&line.cells[p.cell].text))
}

/// Whether a cell's text is a value: it starts with a number (after signs,
/// brackets and comparison marks).
pub fn is_numeric(text: &str) -> bool {
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || "(<>≤≥±+-−–=~≈[".contains(c));
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.' | '·') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// The table's columns: x-ranges covered by the cells of its fuller rows,
/// split where (almost) no cell crosses.
fn columns(of: &[usize], lines: &[Line]) -> Vec<(f32, f32)> {
    let widest = of.iter().map(|&i| lines[i].cells.len()).max().unwrap_or(0);
    if widest < 2 {
        return Vec::new();
    }
    // Rows with at least half the widest row's cells: spanning headings
    // and lone labels would bridge the gaps between columns.
    let base: Vec<&Line> = of
        .iter()
        .map(|&i| &lines[i])
        .filter(|l| l.cells.len() >= 2 && 2 * l.cells.len() >= widest)
        .collect();
    let tolerance = base.len() / 10;
    let mut events: Vec<(f32, i32)> = Vec::new();
    for line in &base {
        for cell in &line.cells {
            if cell.x1 > cell.x0 {
                events.push((cell.x0, 1));
                events.push((cell.x1, -1));
            }
        }
    }
    // Ends before starts at one x: touching cells leave no gap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut columns: Vec<(f32, f32)> = Vec::new();
    let mut depth = 0i32;
    let mut open: Option<f32> = None;
    for (x, d) in events {
        depth += d;
        let covered = depth > tolerance as i32;
        match (covered, open) {
            (true, None) => open = Some(x),
            (false, Some(x0)) => {
                columns.push((x0, x));
                open = None;
            }
            _ => {}
        }
    }
    columns
}

/// A line's cells placed in columns: each takes the columns it overlaps
/// (the nearest one when it falls in a gap); cells that land in one column
/// are one cell.
fn place(i: usize, line: &Line, columns: &[(f32, f32)]) -> Vec<GridCell> {
    let mut out: Vec<GridCell> = Vec::new();
    for (k, cell) in line.cells.iter().enumerate() {
        if cell.text.trim().is_empty() {
            continue;
        }
        let (a, b) = (cell.x0 + 0.5, (cell.x1 - 0.5).max(cell.x0 + 0.5));
        let hit: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, (c0, c1))| *c0 < b && a < *c1)
            .map(|(n, _)| n)
            .collect();
        let (col, last) = match (hit.first(), hit.last()) {
            (Some(&f), Some(&l)) => (f, l),
            _ => {
                let centre = (cell.x0 + cell.x1) / 2.0;
                let n = nearest(columns, centre);
                (n, n)
            }
        };
        let piece = Piece { line: i, cell: k };
        match out.last_mut() {
            Some(prev) if col < prev.col + prev.span => {
                prev.span = prev.span.max(last + 1 - prev.col);
                prev.pieces.push(piece);
            }
            _ => out.push(GridCell {
                col,
                span: last + 1 - col,
                pieces: vec![piece],
            }),
        }
    }
    // A label spilling into the next column gives way to that column's cell.
    for k in 0..out.len().saturating_sub(1) {
        let next = out[k + 1].col;
        let c = &mut out[k];
        if c.col + c.span > next {
            c.span = (next - c.col).max(1);
        }
    }
    out
}

fn nearest(columns: &[(f32, f32)], x: f32) -> usize {
    let mut best = (0, f32::INFINITY);
    for (n, (c0, c1)) in columns.iter().enumerate() {
        let d = if x < *c0 {
            c0 - x
        } else if x > *c1 {
            x - c1
        } else {
            0.0
        };
        if d < best.1 {
            best = (n, d);
        }
    }
    best.0
}

/// The caption of the table in block `b`: a "Table N" paragraph among the
/// two blocks above it on the same page.
fn caption(blocks: &[Block], b: usize, lines: &[Line]) -> Option<usize> {
    let first = *blocks[b].lines.first()?;
    (b.saturating_sub(2)..b).rev().find(|&c| {
        let block = &blocks[c];
        block.kind != BlockKind::Table
            && block
                .lines
                .first()
                .is_some_and(|&l| lines[l].page == lines[first].page)
            && is_caption(&block_text(block, lines))
    })
}

fn block_text(block: &Block, lines: &[Line]) -> String {
    block
        .lines
        .iter()
        .map(|&i| lines[i].text())
        .collect::<Vec<_>>()
        .join(" ")
}

/// "Table 2", "TABLE 2.", "Table S1", "Table II": a table's caption.
pub fn is_caption(text: &str) -> bool {
    let t = text.trim_start();
    let Some(rest) = t.strip_prefix("Table").or_else(|| t.strip_prefix("TABLE")) else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\u{a0}']);
    let rest = rest.strip_prefix(['S', 'A']).unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_digit())
        || rest
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .is_some_and(|w| !w.is_empty() && w.chars().all(|c| "IVX".contains(c)))
}

fn is_continued(caption: &str) -> bool {
    let lower = caption.to_lowercase();
    lower.contains("contin") || lower.contains("(cont")
}

/// Whether `next` goes on from `prev`: the next page, the same columns,
/// and nothing but the page break (and body text of the previous page)
/// between them.
fn continues(prev: &Grid, next: &Grid, blocks: &[Block], lines: &[Line]) -> bool {
    let page = |g: &Grid| blocks[g.block].lines.first().map(|&i| lines[i].page);
    let (Some(p), Some(n)) = (page(prev), page(next)) else {
        return false;
    };
    if n != p + 1 || prev.columns != next.columns {
        return false;
    }
    // The next part is the first thing on its page but for its caption.
    blocks[..next.block]
        .iter()
        .enumerate()
        .rev()
        .take_while(|(_, b)| b.lines.first().is_some_and(|&i| lines[i].page == n))
        .all(|(k, _)| Some(k) == next.caption)
}
