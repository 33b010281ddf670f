//! Page furniture: running heads and footers, page numbers.
//!
//! Furniture is text the publisher repeats on every page (journal name,
//! authors, "Page 3 of 10", a licence line) and lone page numbers. Left in,
//! it lands in the middle of sentences that continue from one page to the
//! next. We find it by what it is: the same text at the same height on many
//! pages, or a bare number at the very top or bottom of a page.

use std::collections::HashMap;

use crate::layout::PageLayout;

/// How many lines from the top and from the bottom of a page are looked at.
const EDGE_LINES: usize = 3;
/// How far from the page's top or bottom edge (fraction of its height)
/// furniture may sit.
const EDGE_ZONE: f32 = 0.15;
/// Vertical tolerance, in points, for "the same position" on two pages.
const SAME_HEIGHT: f32 = 4.0;

/// Removes running heads, running footers and page numbers from the pages.
///
/// Works on cells, not lines: a running head's parts ("Smith et al." on
/// the left, "Page 3 of 10" on the right) are one line on a single-column
/// page and two on a two-column one.
pub fn remove_furniture(pages: &mut [PageLayout]) {
    let min_repeats = if pages.len() <= 3 { 2 } else { 3 };
    // Candidates: (page, line, cell, key).
    let mut candidates: Vec<(usize, usize, usize, String)> = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        for i in edge_lines(page) {
            for (c, cell) in page.lines[i].cells.iter().enumerate() {
                let key = normalise(&cell.text);
                if !key.is_empty() {
                    candidates.push((p, i, c, key));
                }
            }
        }
    }
    // Key -> (page, baseline, orientation) of every occurrence.
    let mut seen: HashMap<&str, Vec<(usize, f32, u8)>> = HashMap::new();
    for (p, i, _, key) in &candidates {
        let line = &pages[*p].lines[*i];
        seen.entry(key.as_str())
            .or_default()
            .push((*p, line.baseline, line.orientation));
    }
    let mut furniture: Vec<(usize, usize, usize)> = Vec::new();
    for (p, i, c, key) in &candidates {
        let line = &pages[*p].lines[*i];
        let mut on_pages: Vec<usize> = seen
            .get(key.as_str())
            .map(|v| {
                v.iter()
                    .filter(|(_, y, o)| {
                        *o == line.orientation && (y - line.baseline).abs() <= SAME_HEIGHT
                    })
                    .map(|(q, _, _)| *q)
                    .collect()
            })
            .unwrap_or_default();
        on_pages.sort_unstable();
        on_pages.dedup();
        let number = is_page_number(&line.cells[*c].text);
        // Several bare numbers on one line are a table row (a table going
        // on at the top of a page), not a page number.
        if number
            && line
                .cells
                .iter()
                .filter(|c| is_page_number(&c.text))
                .count()
                > 1
        {
            continue;
        }
        if on_pages.len() >= min_repeats || number {
            furniture.push((*p, *i, *c));
        }
    }
    furniture.sort_unstable();
    furniture.dedup();
    for &(p, i, c) in furniture.iter().rev() {
        pages[p].lines[i].cells.remove(c);
    }
    for page in pages.iter_mut() {
        page.lines.retain(|l| !l.cells.is_empty());
        for line in &mut page.lines {
            line.x0 = line.cells.first().map_or(line.x0, |c| c.x0);
            line.x1 = line.cells.last().map_or(line.x1, |c| c.x1);
        }
    }
}

/// Indices of the lines that could be furniture: the first and last few
/// lines of the page by height, when they sit near the page's edge, and
/// every line of rotated text.
fn edge_lines(page: &PageLayout) -> Vec<usize> {
    let height = page.height.max(1.0);
    let mut upright: Vec<usize> = (0..page.lines.len())
        .filter(|&i| page.lines[i].orientation == 0)
        .collect();
    upright.sort_by(|&a, &b| page.lines[a].top.total_cmp(&page.lines[b].top));
    let mut out: Vec<usize> = Vec::new();
    let n = upright.len();
    for (rank, &i) in upright.iter().enumerate() {
        let line = &page.lines[i];
        let near_top = rank < EDGE_LINES && line.top < EDGE_ZONE * height;
        let near_bottom = rank + EDGE_LINES >= n && line.bottom > (1.0 - EDGE_ZONE) * height;
        if near_top || near_bottom {
            out.push(i);
        }
    }
    out.extend((0..page.lines.len()).filter(|&i| page.lines[i].orientation != 0));
    out
}

/// The text a running head keeps from page to page: letters, with every
/// run of digits standing for any number ("Page 3 of 10" = "Page 4 of 10").
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut last_digit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
        } else {
            last_digit = false;
            if c.is_alphanumeric() {
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

/// A bare page number: digits (or a roman numeral), alone in its cell.
fn is_page_number(text: &str) -> bool {
    let t = text.trim();
    let t = t.strip_prefix("Page").unwrap_or(t).trim();
    (!t.is_empty() && t.len() <= 4 && t.chars().all(|c| c.is_ascii_digit()))
        || (!t.is_empty() && t.len() <= 6 && t.chars().all(|c| matches!(c, 'i' | 'v' | 'x' | 'l')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_one_key() {
        assert_eq!(normalise("Page 3 of 10"), normalise("Page 4 of 10"));
        assert_eq!(
            normalise("Smith et al. BMC (2015) 15:10"),
            "smithetalbmc###"
        );
    }
}
