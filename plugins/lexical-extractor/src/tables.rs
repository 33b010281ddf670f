//! Values read from the converted text's tables: the row whose label names
//! the field's subject (an outcome, at a time point, under its group
//! label), the column whose heading names the field's own terms (an arm,
//! "mean"), and the number in that cell written the field's way.
//!
//! Trials report most numbers in tables, where a passage search sees a row
//! of numbers without the words that say which is which; the headings and
//! labels put those words back.

use crate::rank::tables::{Table, tables};
use crate::rank::terms;

/// A table prepared for reading: each column's heading terms and each body
/// row's label terms.
#[derive(Debug, Clone)]
pub struct View {
    /// The heading text of each column (rows above the data, a heading
    /// over several columns carried to the empty ones on its right).
    headings: Vec<String>,
    /// Terms of each column's heading.
    heading_terms: Vec<Vec<String>>,
    /// Body rows: (label terms with their group's, cell texts, the row's line).
    rows: Vec<BodyRow>,
    /// The heading rows' lines, for quoting a heading.
    heading_lines: Vec<String>,
    /// Terms of the caption.
    caption_terms: Vec<String>,
    /// Code point offset of the table in the text.
    pub start: u32,
}

#[derive(Debug, Clone)]
struct BodyRow {
    label: String,
    label_terms: Vec<String>,
    cells: Vec<String>,
    line: String,
}

/// Whether a cell's text is a value (starts with a number).
fn numeric(text: &str) -> bool {
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || "(<>≤≥±+-−–=~[".contains(c));
    t.starts_with(|c: char| c.is_ascii_digit())
}

/// The tables of `text`, prepared for reading.
pub fn views(text: &str) -> Vec<View> {
    tables(text).iter().filter_map(view).collect()
}

fn view(t: &Table) -> Option<View> {
    let width = t.rows.iter().map(|r| r.cells.len()).max()?;
    if width < 2 {
        return None;
    }
    // Heading rows: above the rule, and on down to the first row with a
    // number in a value column.
    let first_data = t
        .rows
        .iter()
        .position(|r| r.cells.iter().skip(1).any(|c| numeric(&c.text)))
        .unwrap_or(t.rows.len());
    // Group labels just above the data (a first cell alone) are body rows.
    let above = t.rows[..first_data]
        .iter()
        .rposition(|r| r.cells.iter().skip(1).any(|c| !c.text.is_empty()))
        .map_or(0, |k| k + 1);
    let heading_rows = if first_data == t.rows.len() {
        t.rule_after
    } else {
        t.rule_after.max(above).min(first_data)
    };
    let mut headings = vec![String::new(); width];
    for row in &t.rows[..heading_rows] {
        let mut carried = String::new();
        for (j, heading) in headings.iter_mut().enumerate() {
            let text = row.cells.get(j).map(|c| c.text.as_str()).unwrap_or("");
            // A heading spanning columns is written in its first one.
            let text = if text.is_empty() && j > 0 {
                carried.clone()
            } else {
                text.to_owned()
            };
            carried = text.clone();
            if !text.is_empty() {
                if !heading.is_empty() {
                    heading.push(' ');
                }
                heading.push_str(&text);
            }
        }
    }
    let mut rows = Vec::new();
    let mut group: Option<String> = None;
    for row in &t.rows[heading_rows..] {
        let cells: Vec<String> = row.cells.iter().map(|c| c.text.clone()).collect();
        let label = cells.first().cloned().unwrap_or_default();
        if cells.iter().skip(1).all(|c| c.is_empty()) {
            // A group label ("Secondary outcomes", "At 6 months").
            group = Some(label);
            continue;
        }
        let mut label_text = label.clone();
        if let Some(g) = &group {
            label_text.push(' ');
            label_text.push_str(g);
        }
        rows.push(BodyRow {
            label: label.clone(),
            label_terms: terms(&label_text),
            cells,
            line: row.line.clone(),
        });
    }
    Some(View {
        heading_terms: headings.iter().map(|h| terms(h)).collect(),
        headings,
        rows,
        heading_lines: t.rows[..heading_rows]
            .iter()
            .map(|r| r.line.clone())
            .collect(),
        caption_terms: t.caption.as_deref().map(terms).unwrap_or_default(),
        start: t.start,
    })
}

/// Words papers use for a control arm, as stems: a form's "control" is
/// the paper's "placebo" column, and the other way round.
pub const CONTROL_ARMS: &[&str] = &["control", "placebo", "sham", "usual"];

/// Whether a heading's terms hold `term`, a control arm's name standing
/// for any of [`CONTROL_ARMS`].
fn names_arm(heading: &[String], term: &str) -> bool {
    heading.iter().any(|h| h == term)
        || (CONTROL_ARMS.contains(&term)
            && heading.iter().any(|h| CONTROL_ARMS.contains(&h.as_str())))
}

/// Heading words (stems) of a column of values before treatment.
const BASELINE: &[&str] = &["baseline", "pre", "before", "pretreatment", "prior"];
/// Heading words of a column measured against baseline ("Mean change
/// from baseline"): a follow-up result, not a baseline one.
const CHANGE: &[&str] = &[
    "change",
    "chang",
    "difference",
    "differ",
    "reduction",
    "improvement",
    "improv",
    "delta",
];

/// Whether a row label names a row of group sizes.
fn is_count_label(label: &str) -> bool {
    let l = label.trim().trim_end_matches([':', '.']).to_lowercase();
    matches!(
        l.as_str(),
        "n" | "no" | "number" | "n (%)" | "sample size" | "patients" | "participants" | "subjects"
    ) || l.starts_with("no. of ")
        || l.starts_with("number of ")
        || l.starts_with("n =")
}

/// Least share of the subject's terms a row (with the caption) must hold.
const MIN_SHARE: f64 = 0.4;

/// A cell chosen for a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The text to read the value from.
    pub text: String,
    /// The quote: the row's line (or the heading's, for a count in it).
    pub quote: String,
    /// How well row and column match (share of subject terms in the row
    /// label, plus column terms matched).
    pub score: f64,
}

/// Where a field's value sits in the tables: the body cell whose row label
/// holds the most of `subject` (the terms all the step's fields share: the
/// outcome) and whose column heading holds the most of `own` (the field's
/// own terms: its arm, "mean"). With `in_heading`, the heading of that
/// column instead (group sizes are written there: "Drug (n = 24)").
pub fn find(views: &[View], subject: &[String], own: &[String], in_heading: bool) -> Option<Found> {
    let mut best: Option<Found> = None;
    for v in views {
        for (j, heading) in v.heading_terms.iter().enumerate().skip(1) {
            let col = own.iter().filter(|t| names_arm(heading, t)).count();
            if col == 0 {
                continue;
            }
            if in_heading {
                // A row of group sizes ("n", "No. of patients") under the
                // arm's column comes first: it counts who was analysed.
                for row in v.rows.iter().filter(|r| is_count_label(&r.label)) {
                    let Some(cell) = row.cells.get(j).filter(|c| numeric(c)) else {
                        continue;
                    };
                    let score = col as f64 + 1.0;
                    if best.as_ref().is_none_or(|b| score > b.score) {
                        best = Some(Found {
                            text: format!("n = {cell}"),
                            quote: row.line.clone(),
                            score,
                        });
                    }
                }
                // The table is about the subject when its caption or rows say so.
                let about = subject.is_empty()
                    || subject.iter().any(|t| {
                        v.caption_terms.contains(t)
                            || v.rows.iter().any(|r| r.label_terms.contains(t))
                    });
                let score = col as f64 + if about { 0.5 } else { 0.0 };
                if about && best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(Found {
                        text: v.headings[j].clone(),
                        quote: v.heading_lines.last().cloned().unwrap_or_default(),
                        score,
                    });
                }
                continue;
            }
            for row in &v.rows {
                let Some(cell) = row.cells.get(j).filter(|c| numeric(c)) else {
                    continue;
                };
                let hits = subject
                    .iter()
                    .filter(|t| row.label_terms.contains(t) || v.caption_terms.contains(t))
                    .count();
                let in_label = subject
                    .iter()
                    .filter(|t| row.label_terms.contains(t))
                    .count();
                if in_label == 0 {
                    continue;
                }
                let share = hits as f64 / subject.len().max(1) as f64;
                if share < MIN_SHARE {
                    continue;
                }
                // Extra label words not asked for make a row less likely.
                let extra = row.label_terms.len().saturating_sub(in_label) as f64 * 0.02;
                // Outcomes are compared at follow-up: a baseline column
                // is the last choice.
                let heading = &v.heading_terms[j];
                let baseline = if heading.iter().any(|t| BASELINE.contains(&t.as_str()))
                    && !heading
                        .iter()
                        .any(|t| CHANGE.iter().any(|c| t.starts_with(c)))
                {
                    0.5
                } else {
                    0.0
                };
                let score = share + col as f64 - extra - baseline;
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(Found {
                        text: cell.clone(),
                        quote: row.line.clone(),
                        score,
                    });
                }
            }
        }
    }
    best
}

/// The body row whose label holds the largest share (at least
/// [`MIN_SHARE`]) of `subject`: its line and its value cells.
pub fn subject_row(views: &[View], subject: &[String]) -> Option<(String, Vec<String>)> {
    let mut best: Option<(f64, &BodyRow)> = None;
    for v in views {
        for row in &v.rows {
            let in_label = subject
                .iter()
                .filter(|t| row.label_terms.contains(t))
                .count();
            let share = in_label as f64 / subject.len().max(1) as f64;
            if in_label == 0 || share < MIN_SHARE {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| share > *b) {
                best = Some((share, row));
            }
        }
    }
    best.map(|(_, r)| {
        (
            r.line.clone(),
            r.cells
                .iter()
                .skip(1)
                .filter(|c| numeric(c))
                .cloned()
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Table 2 Outcomes at 6 months\n\n\
        | | Drug group (n = 24) | | Placebo group (n = 28) | |\n\
        | --- | --- | --- | --- | --- |\n\
        | Outcome | Mean ± SD | Events, n (%) | Mean ± SD | Events, n (%) |\n\
        | Primary | | | | |\n\
        | Pain score | 4.3 ± 1.0 | 3 (12%) | 5.1 ± 1.2 | 7 (25%) |\n\
        | Secondary | | | | |\n\
        | Sleep hours | 6.1 ± 0.5 | 1 (4%) | 6.4 ± 0.7 | 2 (7%) |\n";

    #[test]
    fn a_change_from_baseline_column_is_not_a_baseline_column() {
        let text = "Table 3 Scores\n\n\
            | | Drug | | Placebo | |\n\
            | --- | --- | --- | --- | --- |\n\
            | | Mean baseline | Mean change from baseline | Mean baseline | Mean change from baseline |\n\
            | Irritability | 14.8 (1.4) | -4.7 (1.1) | 15.0 (1.4) | -5.2 (1.0) |\n";
        let v = views(text);
        let subject = terms("Irritability");
        let found = find(&v, &subject, &terms("drug mean"), false).expect("a cell");
        assert_eq!(found.text, "-4.7 (1.1)");
        let found = find(&v, &subject, &terms("placebo mean"), false).expect("a cell");
        assert_eq!(found.text, "-5.2 (1.0)");
    }

    #[test]
    fn a_cell_is_found_by_its_row_label_and_column_heading() {
        let v = views(TEXT);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].headings[1], "Drug group (n = 24) Mean ± SD");
        assert_eq!(v[0].headings[2], "Drug group (n = 24) Events, n (%)");
        let f = |subject: &str, own: &str| {
            find(&v, &terms(subject), &terms(own), false).map(|f| f.text)
        };
        assert_eq!(
            f("pain score", "placebo mean").as_deref(),
            Some("5.1 ± 1.2")
        );
        assert_eq!(f("pain score", "drug events").as_deref(), Some("3 (12%)"));
        // The group label counts as part of the row's label.
        assert_eq!(
            f("secondary sleep", "drug mean").as_deref(),
            Some("6.1 ± 0.5")
        );
        // Nothing about the subject, or no column for the arm: nothing.
        assert_eq!(f("mortality", "drug mean"), None);
        assert_eq!(f("pain score", "surgery"), None);
        let n = find(&v, &terms("pain score"), &terms("placebo"), true).unwrap();
        assert!(n.text.starts_with("Placebo group (n = 28)"), "{n:?}");
        assert!(n.quote.starts_with("| Outcome"), "{n:?}");
    }
}
