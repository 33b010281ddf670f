//! The markdown tables of a converted text: rows of cells with their
//! offsets, the `---` rule, and the caption above.
//!
//! The converter writes each table as lines `| a | b | c |`, a rule
//! `| --- | --- | --- |` under the first row, `\|` for a bar inside a cell,
//! and its caption ("Table 2 ...") as the paragraph just above.

/// A cell: its text (trimmed, `\|` left as written) and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The cell's text; empty for an empty cell.
    pub text: String,
    /// Code point offset of the text in the document.
    pub start: u32,
}

/// A row: its cells from the left, and where its line starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Cells from the left.
    pub cells: Vec<Cell>,
    /// Code point offset of the row's line.
    pub start: u32,
    /// The line as written.
    pub line: String,
}

/// A markdown table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The caption paragraph above the table, when it is one ("Table 1 …").
    pub caption: Option<String>,
    /// Rows from the top (the rule is not a row).
    pub rows: Vec<Row>,
    /// The rule line as written (`| --- | --- |`), if any.
    pub rule: Option<String>,
    /// How many rows stand above the rule (the markdown header).
    pub rule_after: usize,
    /// Code point offset of the table's first line.
    pub start: u32,
    /// One past its last code point.
    pub end: u32,
}

/// Whether a line is a markdown table line.
fn is_table_line(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 2 && t.starts_with('|') && t.ends_with('|')
}

/// Whether a table line is the `---` rule.
fn is_rule(line: &str) -> bool {
    let t = line.trim().trim_matches('|');
    !t.is_empty()
        && t.split('|')
            .all(|c| !c.trim().is_empty() && c.trim().chars().all(|ch| matches!(ch, '-' | ':')))
}

/// Splits a row line (starting at `start`) into cells at unescaped bars.
fn cells(line: &str, start: u32) -> Vec<Cell> {
    let chars: Vec<char> = line.chars().collect();
    let bars: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i] == '|' && (i == 0 || chars[i - 1] != '\\'))
        .collect();
    bars.windows(2)
        .map(|w| {
            let (a, b) = (w[0] + 1, w[1]);
            let lead = chars[a..b].iter().take_while(|c| c.is_whitespace()).count();
            let text: String = chars[a..b].iter().collect::<String>().trim().to_owned();
            Cell {
                start: start + (a + lead) as u32,
                text,
            }
        })
        .collect()
}

/// The markdown tables of `text`, in order.
pub fn tables(text: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut cp = 0u32;
    // The last paragraph line before the current table, and whether a
    // blank line followed it.
    let mut previous: Option<String> = None;
    let mut current: Option<Table> = None;
    for line in text.split('\n') {
        let len = line.chars().count() as u32;
        if is_table_line(line) {
            let table = current.get_or_insert_with(|| Table {
                caption: previous.take().filter(|p| is_caption(p)),
                rows: Vec::new(),
                rule: None,
                rule_after: 0,
                start: cp,
                end: cp,
            });
            if is_rule(line) && table.rule.is_none() {
                table.rule = Some(line.to_owned());
                table.rule_after = table.rows.len();
            } else {
                table.rows.push(Row {
                    cells: cells(line, cp),
                    start: cp,
                    line: line.to_owned(),
                });
            }
            table.end = cp + len;
        } else {
            out.extend(current.take());
            if !line.trim().is_empty() {
                previous = Some(line.to_owned());
            }
        }
        cp += len + 1;
    }
    out.extend(current);
    out
}

/// "Table 2 …", "TABLE 2.", "Table S1": a table caption.
pub fn is_caption(text: &str) -> bool {
    let t = text.trim_start();
    let rest = t
        .strip_prefix("Table")
        .or_else(|| t.strip_prefix("TABLE"))
        .map(|r| r.trim_start());
    rest.is_some_and(|r| {
        let r = r.strip_prefix('S').unwrap_or(r);
        r.starts_with(|c: char| c.is_ascii_digit() || matches!(c, 'I' | 'V' | 'X'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_with_rows_cells_offsets_rule_and_caption() {
        let text = "Intro text.\n\nTable 2 Outcomes\n\n| | Drug | Placebo |\n| --- | --- | --- |\n\
                    | Pain | 4.3 | 3\\|6 |\n\nAfter.\n| a | b |\n";
        let t = tables(text);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].caption.as_deref(), Some("Table 2 Outcomes"));
        assert_eq!(t[0].rule_after, 1);
        assert_eq!(t[0].rule.as_deref(), Some("| --- | --- | --- |"));
        let texts: Vec<Vec<&str>> = t[0]
            .rows
            .iter()
            .map(|r| r.cells.iter().map(|c| c.text.as_str()).collect())
            .collect();
        assert_eq!(
            texts,
            [vec!["", "Drug", "Placebo"], vec!["Pain", "4.3", "3\\|6"]]
        );
        let chars: Vec<char> = text.chars().collect();
        for c in t[0].rows.iter().flat_map(|r| &r.cells) {
            let n = c.text.chars().count();
            let at: String = chars[c.start as usize..c.start as usize + n]
                .iter()
                .collect();
            assert_eq!(at, c.text);
        }
        let slice: String = chars[t[0].start as usize..t[0].end as usize]
            .iter()
            .collect();
        assert!(slice.starts_with("| | Drug") && slice.ends_with("3\\|6 |"));
        // A caption must be one; no rule is fine.
        assert_eq!(t[1].caption, None);
        assert_eq!(t[1].rule, None);
    }
}
