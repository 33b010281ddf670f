//! Markdown output and the page ranges into it.
//!
//! Offsets count Unicode code points (the WIT contract's unit), so the
//! writer counts characters as it goes rather than measuring bytes.

use crate::PageRange;
use crate::layout::Line;
use crate::text::{Block, BlockKind, Join, Vocabulary};

/// Separator between the cells of a table row.
pub const CELL_SEPARATOR: &str = " | ";

/// The markdown of a document and where each page's text sits in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The whole document as markdown.
    pub markdown: String,
    /// One range per page, in order, covering the markdown.
    pub pages: Vec<PageRange>,
}

/// Appends text while counting code points.
struct Writer {
    out: String,
    chars: u32,
    /// Code point offset where each page's first line starts, if any.
    page_starts: Vec<Option<u32>>,
}

impl Writer {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        self.chars += s.chars().count() as u32;
    }

    /// Drops the hyphen that ends the output (a word split at a line break).
    fn pop_hyphen(&mut self) {
        if self.out.ends_with(['-', '\u{2010}', '\u{AD}']) && self.out.pop().is_some() {
            self.chars -= 1;
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
pub fn render(lines: &[Line], blocks: &[Block], page_count: u32, vocab: &Vocabulary) -> Rendered {
    let mut w = Writer {
        out: String::new(),
        chars: 0,
        page_starts: vec![None; page_count as usize],
    };
    for (b, block) in blocks.iter().enumerate() {
        if b > 0 {
            w.push("\n\n");
        }
        let mut previous: Option<String> = None;
        for (n, &i) in block.lines.iter().enumerate() {
            let line = &lines[i];
            let text = match block.kind {
                BlockKind::Table => line
                    .cells
                    .iter()
                    .map(|c| clean(&c.text))
                    .collect::<Vec<_>>()
                    .join(CELL_SEPARATOR),
                _ => clean(&line.text()),
            };
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
            w.push(&text);
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
/// a line is handled by the join).
fn clean(text: &str) -> String {
    let trimmed = text.strip_suffix('\u{AD}');
    let mut out: String = trimmed
        .unwrap_or(text)
        .chars()
        .filter(|&c| c != '\u{AD}')
        .collect();
    if trimmed.is_some() {
        out.push('\u{AD}');
    }
    out
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
