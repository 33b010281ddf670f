//! Markdown output and the page ranges into it.
//!
//! Offsets count Unicode code points (the WIT contract's unit), so the
//! writer counts characters as it goes rather than measuring bytes.

use crate::layout::Line;
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
/// paragraphs with their lines joined, table rows one per line.
///
/// `frames` holds each page's frame (by page number, from 1), to place the
/// text on its page.
pub fn render(
    lines: &[Line],
    blocks: &[Block],
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
    for (b, block) in blocks.iter().enumerate() {
        if b > 0 {
            w.push("\n\n");
        }
        let mut previous: Option<String> = None;
        for (n, &i) in block.lines.iter().enumerate() {
            let line = &lines[i];
            let frame = frames
                .get(line.page.saturating_sub(1) as usize)
                .copied()
                .unwrap_or_default();
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
    }
    if !w.out.is_empty() {
        w.push("\n");
    }
    let pages = page_ranges(&w.page_starts, w.chars);
    Rendered {
        markdown: w.out,
        pages,
        runs: w.runs,
    }
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
