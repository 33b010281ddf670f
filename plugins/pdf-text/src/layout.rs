//! Lines, columns and reading order, from glyph positions.
//!
//! A PDF draws glyphs wherever it likes; nothing in the file says "this is
//! the left column". We rebuild the page in three steps:
//!
//! 1. **Segments**: runs of glyphs that the content stream draws one after
//!    the other on one baseline with no wide gap. A column gutter or a table
//!    cell gap always ends a segment, so a segment never straddles columns
//!    unless its text really does (a title, a full-width caption).
//! 2. **Gutter**: the widest vertical strip in the middle of the page that
//!    the fewest segments cross. It makes the page two-column only if both
//!    sides hold real text columns (enough text, lines about as wide as the
//!    column), not the cells of a table.
//! 3. **Bands**: rows that cross the gutter (titles, wide tables, full-width
//!    captions) stay where they are and cut the page into bands; inside a
//!    band the left column is read before the right one.
//!
//! Rotated text (landscape tables, margin notes) is laid out the same way in
//! its own frame and read after the page's main text.

use crate::glyphs::{Glyph, PageGlyphs};

/// Gap between glyphs, in ems, above which a word ends.
const WORD_GAP: f32 = 0.1;
/// Gap between glyphs, in ems, above which a segment ends (cells, columns).
const SEGMENT_GAP: f32 = 1.0;
/// The same, when the content stream drew a space glyph in the gap.
const SPACED_SEGMENT_GAP: f32 = 2.5;
/// Narrowest gutter between two columns, in ems.
const MIN_GUTTER: f32 = 0.5;

/// One cell of a line: text separated from its neighbours by a wide gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Left edge.
    pub x0: f32,
    /// Right edge.
    pub x1: f32,
    /// The cell's text.
    pub text: String,
    /// Where each character of `text` lies along the line, `(x0, x1)` in
    /// the line's frame: a glyph's advance shared by the characters it
    /// spells (a ligature), a space spanning the gap it stands for.
    pub edges: Vec<(f32, f32)>,
}

/// A line of text as read: one or more cells on one baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// 1-based page number.
    pub page: u32,
    /// Left edge of the first cell.
    pub x0: f32,
    /// Right edge of the last cell.
    pub x1: f32,
    /// Top of the line (y grows downwards).
    pub top: f32,
    /// Bottom of the line.
    pub bottom: f32,
    /// Baseline of the line's largest text.
    pub baseline: f32,
    /// Font size of most of the line's characters.
    pub size: f32,
    /// The line's cells, left to right; most lines have one.
    pub cells: Vec<Cell>,
    /// Reading region on the page: lines of one region are one column of
    /// one band (or one run of full-width rows), read top to bottom. A new
    /// region means the reader jumped (to the next column or band).
    pub region: u32,
    /// Left edge of the region's column.
    pub column_x0: f32,
    /// Right edge of the region's column.
    pub column_x1: f32,
    /// Text direction of the line (see [`Glyph::orientation`]).
    pub orientation: u8,
    /// Number of characters, for weighting sizes.
    pub chars: usize,
}

impl Line {
    /// The line's text, cells separated by a space.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&cell.text);
        }
        out
    }

    /// The line's text as [`Line::text`] gives it, with where each of its
    /// characters lies (see [`Cell::edges`]).
    pub fn text_with_edges(&self) -> (String, Vec<(f32, f32)>) {
        let mut out = String::new();
        let mut edges = Vec::new();
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                out.push(' ');
                edges.push((self.cells[i - 1].x1, cell.x0));
            }
            out.push_str(&cell.text);
            edges.extend_from_slice(&cell.edges);
        }
        (out, edges)
    }

    /// True when the line has several cells: a table row (or a row of
    /// labels); never joined into running text.
    pub fn is_row(&self) -> bool {
        self.cells.len() > 1
    }
}

/// One page after layout: its lines in reading order.
#[derive(Debug, Clone, Default)]
pub struct PageLayout {
    /// 1-based page number.
    pub number: u32,
    /// Page height in points (for telling page edges).
    pub height: f32,
    /// Page width in points.
    pub width: f32,
    /// The media box's top-left corner in PDF user space.
    pub origin: (f32, f32),
    /// Lines in reading order.
    pub lines: Vec<Line>,
    /// Whether a two-column gutter was found for the main text.
    pub two_columns: bool,
}

/// A run of glyphs on one baseline, drawn one after the other.
#[derive(Debug, Clone)]
struct Segment {
    x0: f32,
    x1: f32,
    baseline: f32,
    /// Size of the largest glyph (the baseline is that glyph's).
    main_size: f32,
    /// Sum of glyph sizes weighted by characters, for the dominant size.
    size_sum: f32,
    chars: usize,
    text: String,
    /// Where each character of `text` lies (see [`Cell::edges`]).
    edges: Vec<(f32, f32)>,
    pending_space: bool,
}

/// Shares a glyph's advance among the `n` characters it spells.
fn split(edges: &mut Vec<(f32, f32)>, x: f32, width: f32, n: usize) {
    let step = width / n.max(1) as f32;
    edges.extend((0..n).map(|i| (x + step * i as f32, x + step * (i + 1) as f32)));
}

impl Segment {
    fn start(g: &Glyph, text: &str) -> Segment {
        let mut edges = Vec::new();
        split(&mut edges, g.x, g.width, text.chars().count());
        Segment {
            edges,
            x0: g.x,
            x1: g.x + g.width,
            baseline: g.y,
            main_size: g.size,
            size_sum: g.size * text.chars().count() as f32,
            chars: text.chars().count(),
            text: text.to_string(),
            pending_space: false,
        }
    }

    fn em(&self) -> f32 {
        self.main_size.max(1.0)
    }

    fn size(&self) -> f32 {
        if self.chars == 0 {
            self.main_size
        } else {
            self.size_sum / self.chars as f32
        }
    }

    /// Top of the text: ascenders reach about 0.8 em above the baseline.
    fn top(&self) -> f32 {
        self.baseline - 0.8 * self.em()
    }

    fn bottom(&self) -> f32 {
        self.baseline + 0.2 * self.em()
    }
}

/// Lays out one page: lines in reading order.
pub fn layout_page(page: &PageGlyphs) -> PageLayout {
    let mut layout = PageLayout {
        number: page.number,
        height: page.height,
        width: page.width,
        origin: page.origin,
        ..PageLayout::default()
    };
    // Orientations by amount of text: the page's main text first.
    let mut counts = [0usize; 4];
    for g in &page.glyphs {
        counts[(g.orientation & 3) as usize] += 1;
    }
    let mut orientations: Vec<u8> = (0..4u8).filter(|&o| counts[o as usize] > 0).collect();
    orientations.sort_by_key(|&o| std::cmp::Reverse(counts[o as usize]));
    let mut region = 0;
    for (i, &orientation) in orientations.iter().enumerate() {
        let segments = segments(page, orientation);
        if segments.is_empty() {
            continue;
        }
        // Only the page's main text is looked at for columns; rotated
        // bits are usually a table or a margin note.
        let (lines, two_columns) = order(segments, page.number, orientation, &mut region, i == 0);
        if i == 0 {
            layout.two_columns = two_columns;
        }
        layout.lines.extend(lines);
    }
    layout
}

/// Builds segments from the glyphs of one orientation, in stream order.
fn segments(page: &PageGlyphs, orientation: u8) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut current: Option<Segment> = None;
    let mut last: Option<(&Glyph, &str)> = None;
    for g in page.glyphs.iter().filter(|g| g.orientation == orientation) {
        let text = page.glyph_text(g);
        // Some producers fake bold by drawing each glyph twice, a hair
        // apart: keep one.
        if let Some((prev, prev_text)) = last
            && !g.space
            && prev_text == text
            && (prev.x - g.x).abs() < 0.1 * g.size.max(1.0)
            && (prev.y - g.y).abs() < 0.1 * g.size.max(1.0)
        {
            continue;
        }
        last = Some((g, text));
        if let Some(seg) = current.as_mut() {
            let em = seg.em().max(g.size);
            let gap = g.x - seg.x1;
            // An explicit space glyph between two words says they are one
            // run of text even when justification stretched the gap.
            let max_gap = if seg.pending_space {
                SPACED_SEGMENT_GAP
            } else {
                SEGMENT_GAP
            };
            let continues =
                (g.y - seg.baseline).abs() <= 0.5 * em && gap <= max_gap * em && gap >= -0.5 * em;
            if continues {
                if g.space {
                    seg.pending_space = true;
                    continue;
                }
                if (seg.pending_space || gap > WORD_GAP * em) && !seg.text.ends_with(' ') {
                    seg.text.push(' ');
                    seg.edges.push((seg.x1, g.x.max(seg.x1)));
                }
                seg.pending_space = false;
                seg.text.push_str(text);
                let n = text.chars().count();
                split(&mut seg.edges, g.x, g.width, n);
                seg.chars += n;
                seg.size_sum += g.size * n as f32;
                seg.x0 = seg.x0.min(g.x);
                seg.x1 = seg.x1.max(g.x + g.width);
                if g.size > seg.main_size * 1.05 {
                    // The baseline is the main text's, not a superscript's.
                    seg.main_size = g.size;
                    seg.baseline = g.y;
                }
                continue;
            }
            if let Some(done) = current.take() {
                out.push(done);
            }
        }
        if !g.space {
            current = Some(Segment::start(g, text));
        }
    }
    if let Some(done) = current {
        out.push(done);
    }
    for seg in &mut out {
        let trimmed = seg.text.trim_end().len();
        seg.text.truncate(trimmed);
        seg.edges.truncate(seg.text.chars().count());
    }
    out.retain(|s| !s.text.is_empty());
    out
}

/// Orders the segments of one frame into lines; returns the lines and
/// whether two columns were found.
fn order(
    mut segs: Vec<Segment>,
    page: u32,
    orientation: u8,
    region: &mut u32,
    look_for_columns: bool,
) -> (Vec<Line>, bool) {
    segs.sort_by(|a, b| {
        a.baseline
            .total_cmp(&b.baseline)
            .then(a.x0.total_cmp(&b.x0))
    });
    let x_min = segs.iter().map(|s| s.x0).fold(f32::INFINITY, f32::min);
    let x_max = segs.iter().map(|s| s.x1).fold(f32::NEG_INFINITY, f32::max);
    let gutter = if look_for_columns {
        find_gutter(&segs, x_min, x_max)
    } else {
        None
    };
    let rows = rows(segs);
    let mut lines = Vec::new();
    let Some((g0, g1)) = gutter else {
        *region += 1;
        for row in rows {
            lines.push(make_line(row, page, orientation, *region, (x_min, x_max)));
        }
        return (lines, false);
    };
    // Walk the page top to bottom; rows that cross the gutter stay in place
    // and close the band above them.
    let geometry = Gutter {
        x_min,
        g0,
        g1,
        x_max,
    };
    let mut band = Band::default();
    for row in rows {
        let crosses = row.iter().any(|s| s.x0 < g0 + 1.0 && s.x1 > g1 - 1.0);
        if crosses {
            band.flush(&mut lines, page, orientation, region, &geometry);
            if !band.in_full_width {
                *region += 1;
                band.in_full_width = true;
            }
            lines.push(make_line(row, page, orientation, *region, (x_min, x_max)));
        } else {
            band.rows.push(row);
        }
    }
    band.flush(&mut lines, page, orientation, region, &geometry);
    (lines, true)
}

/// Where a two-column page's gutter is, and the extent of its text.
struct Gutter {
    x_min: f32,
    g0: f32,
    g1: f32,
    x_max: f32,
}

impl Gutter {
    fn is_left(&self, s: &Segment) -> bool {
        s.x0 + s.x1 <= self.g0 + self.g1
    }

    /// Width of the narrower column.
    fn column_width(&self) -> f32 {
        (self.g0 - self.x_min).min(self.x_max - self.g1).max(1.0)
    }
}

/// The rows between two full-width rows.
#[derive(Default)]
struct Band {
    rows: Vec<Vec<Segment>>,
    /// Whether the last lines emitted were full-width rows.
    in_full_width: bool,
}

impl Band {
    /// Whether the band is a wide table whose rows happen not to cross the
    /// gutter (it falls in the gap between two of the table's columns):
    /// rows of cells on both sides, and no text line as wide as a column.
    fn is_table(&self, gutter: &Gutter) -> bool {
        let narrow = 0.6 * gutter.column_width();
        let across = self
            .rows
            .iter()
            .filter(|row| {
                row.iter().any(|s| gutter.is_left(s)) && row.iter().any(|s| !gutter.is_left(s))
            })
            .count();
        let wide = self
            .rows
            .iter()
            .flatten()
            .filter(|s| s.x1 - s.x0 >= narrow)
            .count();
        let segments = self.rows.iter().map(Vec::len).sum::<usize>();
        across >= 2 && wide * 10 <= segments
    }

    /// Emits the band: a wide table row by row; else its left column, then
    /// its right column, each side grouped into rows on its own so that
    /// lines of the two columns with nearly the same baseline never chain
    /// into one row.
    ///
    /// A band with text on one side only (the last line of a full-width
    /// title, a short line under a full-width abstract) is not a column:
    /// it goes on in the full-width flow.
    fn flush(
        &mut self,
        lines: &mut Vec<Line>,
        page: u32,
        orientation: u8,
        region: &mut u32,
        gutter: &Gutter,
    ) {
        if self.rows.is_empty() {
            return;
        }
        let full = (gutter.x_min, gutter.x_max);
        if self.is_table(gutter) {
            if !self.in_full_width {
                *region += 1;
                self.in_full_width = true;
            }
            for row in self.rows.drain(..) {
                lines.push(make_line(row, page, orientation, *region, full));
            }
            return;
        }
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for seg in self.rows.drain(..).flatten() {
            if gutter.is_left(&seg) {
                left.push(seg);
            } else {
                right.push(seg);
            }
        }
        let one_sided = left.is_empty() != right.is_empty();
        let sides = [
            (left, (gutter.x_min, gutter.g0)),
            (right, (gutter.g1, gutter.x_max)),
        ];
        for (mut side, extent) in sides {
            if side.is_empty() {
                continue;
            }
            let extent = if one_sided && self.in_full_width {
                full
            } else {
                *region += 1;
                self.in_full_width = false;
                extent
            };
            side.sort_by(|a, b| {
                a.baseline
                    .total_cmp(&b.baseline)
                    .then(a.x0.total_cmp(&b.x0))
            });
            for row in rows(side) {
                lines.push(make_line(row, page, orientation, *region, extent));
            }
        }
    }
}

/// Groups segments (sorted by baseline) into rows: segments whose vertical
/// extents overlap by at least half of the smaller one share a row.
/// Superscripts and subscripts join their line this way.
fn rows(segs: Vec<Segment>) -> Vec<Vec<Segment>> {
    let mut rows: Vec<Vec<Segment>> = Vec::new();
    let mut span: (f32, f32) = (0.0, 0.0);
    for seg in segs {
        let (top, bottom) = (seg.top(), seg.bottom());
        if let Some(row) = rows.last_mut() {
            let overlap = bottom.min(span.1) - top.max(span.0);
            let smaller = (bottom - top).min(span.1 - span.0).max(0.1);
            if overlap >= 0.5 * smaller {
                // The row keeps the extent of its largest text.
                if seg.main_size > row.iter().map(|s| s.main_size).fold(0.0, f32::max) {
                    span = (top, bottom);
                }
                row.push(seg);
                continue;
            }
        }
        span = (top, bottom);
        rows.push(vec![seg]);
    }
    rows
}

/// Joins the segments of one row, left to right, into a line.
fn make_line(
    mut row: Vec<Segment>,
    page: u32,
    orientation: u8,
    region: u32,
    (column_x0, column_x1): (f32, f32),
) -> Line {
    row.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    let main = row
        .iter()
        .max_by(|a, b| a.main_size.total_cmp(&b.main_size))
        .map(|s| (s.baseline, s.top(), s.bottom()))
        .unwrap_or_default();
    let chars: usize = row.iter().map(|s| s.chars).sum();
    let size = if chars == 0 {
        row.first().map(|s| s.main_size).unwrap_or(0.0)
    } else {
        row.iter().map(|s| s.size() * s.chars as f32).sum::<f32>() / chars as f32
    };
    let mut cells: Vec<Cell> = Vec::new();
    for seg in row {
        if let Some(cell) = cells.last_mut() {
            let em = seg.em().max(size).max(1.0);
            let gap = seg.x0 - cell.x1;
            if gap <= 0.8 * em {
                if gap > WORD_GAP * em && !cell.text.ends_with(' ') {
                    cell.text.push(' ');
                    cell.edges.push((cell.x1, seg.x0.max(cell.x1)));
                }
                cell.text.push_str(&seg.text);
                cell.edges.extend_from_slice(&seg.edges);
                cell.x1 = cell.x1.max(seg.x1);
                continue;
            }
        }
        cells.push(Cell {
            x0: seg.x0,
            x1: seg.x1,
            text: seg.text,
            edges: seg.edges,
        });
    }
    Line {
        page,
        x0: cells.first().map(|c| c.x0).unwrap_or(0.0),
        x1: cells.iter().map(|c| c.x1).fold(f32::NEG_INFINITY, f32::max),
        top: main.1,
        bottom: main.2,
        baseline: main.0,
        size,
        cells,
        region,
        column_x0,
        column_x1,
        orientation,
        chars,
    }
}

/// Finds the gutter of a two-column page: `(start, end)` of the emptiest
/// vertical strip in the middle half of the text, if both sides of it hold
/// text columns.
fn find_gutter(segs: &[Segment], x_min: f32, x_max: f32) -> Option<(f32, f32)> {
    let width = x_max - x_min;
    // Glyphs are kept to the page, so the width is a page's; the upper
    // bound only keeps the histogram small whatever happens upstream.
    if !(width.is_finite() && width > 50.0 && width < 20_000.0) || segs.len() < 6 {
        return None;
    }
    // Coverage: how many segments cross each 1-pt slice of the page.
    let bins = width.ceil() as usize + 1;
    let mut delta = vec![0i32; bins + 1];
    // Page numbers and stray labels (a few characters) may sit in the
    // gutter; they do not make it text.
    for s in segs.iter().filter(|s| s.chars >= 4) {
        let a = ((s.x0 - x_min).floor().max(0.0) as usize).min(bins);
        let b = ((s.x1 - x_min).ceil().max(0.0) as usize).min(bins);
        if b > a {
            delta[a] += 1;
            delta[b] -= 1;
        }
    }
    let mut coverage = Vec::with_capacity(bins);
    let mut running = 0;
    for d in delta.iter().take(bins) {
        running += d;
        coverage.push(running);
    }
    let lo = (0.25 * width) as usize;
    let hi = ((0.75 * width) as usize).min(bins);
    // The emptiest strip. A few more crossing segments (a line running a
    // little into the gutter, the labels of a figure above the columns) do
    // not end it; a column's worth of lines does.
    let window = coverage.get(lo..hi)?;
    let fullest = *window.iter().max()?;
    let least = *window.iter().min()?;
    let least = least + ((fullest - least) as f32 * 0.15).max(1.0) as i32;
    // The widest run at the least coverage; ties go to the one nearest the
    // middle.
    let mut best: Option<(usize, usize)> = None;
    let mut i = lo;
    while i < hi {
        if coverage[i] > least {
            i += 1;
            continue;
        }
        let start = i;
        while i < hi && coverage[i] <= least {
            i += 1;
        }
        let better = match best {
            None => true,
            Some((s, e)) => {
                let (w_new, w_old) = (i - start, e - s);
                let mid = bins / 2;
                w_new > w_old || (w_new == w_old && start.abs_diff(mid) < s.abs_diff(mid))
            }
        };
        if better {
            best = Some((start, i));
        }
    }
    let (start, end) = best?;
    // The run found inside the search window may continue outside it.
    let (mut start, mut end) = (start, end);
    while start > 0 && coverage[start - 1] <= least {
        start -= 1;
    }
    while end < bins && coverage[end] <= least {
        end += 1;
    }
    let (g0, g1) = (x_min + start as f32, x_min + end as f32);
    let body = body_size(segs);
    if g1 - g0 < MIN_GUTTER * body {
        return None;
    }
    // Both sides must hold a fair share of the text, and the page must
    // read as text columns: one side mostly full-width lines, or several
    // full-width lines side by side (a table's cells are narrow; a figure's
    // labels or a table may fill one side's share of a column page).
    let total: usize = segs.iter().map(|s| s.chars).sum();
    // A side's segments stay clear of the gutter's far edge (the strip may
    // reach a little into a column where a few lines are shorter).
    let left: Vec<&Segment> = segs
        .iter()
        .filter(|s| s.x1 < g1 - 1.0 && s.x0 + s.x1 <= g0 + g1)
        .collect();
    let right: Vec<&Segment> = segs
        .iter()
        .filter(|s| s.x0 > g0 + 1.0 && s.x0 + s.x1 > g0 + g1)
        .collect();
    let enough = |side: &[&Segment]| {
        side.len() >= 4 && side.iter().map(|s| s.chars).sum::<usize>() * 100 >= total * 8
    };
    let wide = |side: &[&Segment], column_width: f32| -> Vec<f32> {
        side.iter()
            .filter(|s| s.x1 - s.x0 >= 0.6 * column_width)
            .map(|s| s.baseline)
            .collect()
    };
    let mostly_wide = |side: &[&Segment], column_width: f32| {
        let chars: usize = side.iter().map(|s| s.chars).sum();
        let in_wide: usize = side
            .iter()
            .filter(|s| s.x1 - s.x0 >= 0.6 * column_width)
            .map(|s| s.chars)
            .sum();
        in_wide * 2 >= chars
    };
    let (left_width, right_width) = (g0 - x_min, x_max - g1);
    let wide_left = wide(&left, left_width);
    let wide_right = wide(&right, right_width);
    let side_by_side = wide_left
        .iter()
        .filter(|&&y| wide_right.iter().any(|&z| (y - z).abs() < 1.2 * body))
        .count();
    let columns = enough(&left)
        && enough(&right)
        && wide_left.len() >= 3
        && wide_right.len() >= 3
        && (mostly_wide(&left, left_width)
            || mostly_wide(&right, right_width)
            || side_by_side >= 3);
    columns.then_some((g0, g1))
}

/// The size most characters are set in (rounded to half points).
fn body_size(segs: &[Segment]) -> f32 {
    let mut by_size: Vec<(i32, usize)> = Vec::new();
    for s in segs {
        let key = (s.size() * 2.0).round() as i32;
        match by_size.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += s.chars,
            None => by_size.push((key, s.chars)),
        }
    }
    by_size
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(k, _)| k as f32 / 2.0)
        .unwrap_or(10.0)
}
