//! Type-aware comparison of an extracted value with a reference value.
//! Each comparison scores 0..1 (1 = correct; set-F1 gives partial credit).

use serde_json::Value;

use crate::forms::{Field, FieldType};

/// Relative tolerance of NUMBER comparisons.
pub const NUMBER_TOLERANCE: f64 = 0.01;
/// Token-F1 from which TEXT values count as equal.
pub const TEXT_F1_THRESHOLD: f64 = 0.8;

/// How a field's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// |a − b| ≤ 1% of the larger magnitude.
    NumberRelative,
    /// Equal integers.
    IntegerExact,
    /// Equal booleans.
    BooleanExact,
    /// Equal dates at the reference's precision (year, month or day).
    DateNormalized,
    /// The same option (case-insensitive).
    EnumExact,
    /// F1 of the option sets (partial credit).
    EnumSetF1,
    /// Token F1 of normalized text ≥ 0.8.
    TextTokenF1,
}

impl Comparator {
    /// The comparator of a field's type.
    pub fn for_field(f: &Field) -> Self {
        match f.field_type {
            FieldType::Number => Self::NumberRelative,
            FieldType::Integer => Self::IntegerExact,
            FieldType::Boolean => Self::BooleanExact,
            FieldType::Date => Self::DateNormalized,
            FieldType::Enum if f.multiple => Self::EnumSetF1,
            FieldType::Enum => Self::EnumExact,
            _ => Self::TextTokenF1,
        }
    }

    /// Stable name for the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::NumberRelative => "number_relative_1pct",
            Self::IntegerExact => "integer_exact",
            Self::BooleanExact => "boolean_exact",
            Self::DateNormalized => "date_normalized",
            Self::EnumExact => "enum_exact",
            Self::EnumSetF1 => "enum_set_f1",
            Self::TextTokenF1 => "text_token_f1_0.8",
        }
    }

    /// Scores `got` against `truth`. A null truth ("not reported") is
    /// matched by a null or absent value.
    pub fn score(self, truth: &Value, got: Option<&Value>) -> f64 {
        let got = got.filter(|g| !g.is_null());
        let Some(got) = got else {
            return f64::from(truth.is_null());
        };
        if truth.is_null() {
            return 0.0;
        }
        let hit = |b: bool| f64::from(b);
        match self {
            Self::NumberRelative => match (number(truth), number(got)) {
                (Some(a), Some(b)) => {
                    hit((a - b).abs() <= NUMBER_TOLERANCE * a.abs().max(b.abs()) + 1e-12)
                }
                _ => 0.0,
            },
            Self::IntegerExact => match (number(truth), number(got)) {
                (Some(a), Some(b)) => hit(a.fract() == 0.0 && a == b),
                _ => 0.0,
            },
            Self::BooleanExact => match (boolean(truth), boolean(got)) {
                (Some(a), Some(b)) => hit(a == b),
                _ => 0.0,
            },
            Self::DateNormalized => match (date(truth), date(got)) {
                (Some(a), Some(b)) => hit(b.starts_with(&a)),
                _ => 0.0,
            },
            Self::EnumExact => match (text(truth), text(got)) {
                (Some(a), Some(b)) => hit(a.trim().eq_ignore_ascii_case(b.trim())),
                _ => 0.0,
            },
            Self::EnumSetF1 => set_f1(&options(truth), &options(got)),
            Self::TextTokenF1 => match (text(truth), text(got)) {
                (Some(a), Some(b)) => hit(token_f1(&a, &b) >= TEXT_F1_THRESHOLD),
                _ => 0.0,
            },
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace('·', ".").parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (zero-padded), from the formats a
/// reference table uses.
fn date(v: &Value) -> Option<String> {
    let s = text(v)?;
    let parts: Vec<&str> = s.trim().split(['-', '/', '.']).collect();
    let ok =
        |p: &str, n: usize| p.len() <= n && !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    match parts.as_slice() {
        [y] if y.len() == 4 && ok(y, 4) => Some((*y).to_owned()),
        [y, m] if y.len() == 4 && ok(m, 2) => Some(format!("{y}-{:0>2}", m)),
        [y, m, d] if y.len() == 4 && ok(m, 2) && ok(d, 2) => {
            Some(format!("{y}-{:0>2}-{:0>2}", m, d))
        }
        _ => None,
    }
}

fn options(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        Value::String(s) => s.split(';').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    for o in &mut out {
        *o = o.trim().to_lowercase();
    }
    out.retain(|o| !o.is_empty());
    out.sort();
    out.dedup();
    out
}

fn set_f1(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let common = a.iter().filter(|x| b.contains(x)).count() as f64;
    if common == 0.0 {
        return 0.0;
    }
    let p = common / b.len() as f64;
    let r = common / a.len() as f64;
    2.0 * p * r / (p + r)
}

fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Token F1 (bag of words) of two texts.
pub fn token_f1(a: &str, b: &str) -> f64 {
    let (ta, mut tb) = (tokens(a), tokens(b));
    if ta.is_empty() && tb.is_empty() {
        return 1.0;
    }
    let mut common = 0usize;
    for t in &ta {
        if let Some(i) = tb.iter().position(|x| x == t) {
            tb.swap_remove(i);
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / tokens(b).len() as f64;
    let r = common as f64 / ta.len() as f64;
    2.0 * p * r / (p + r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparators_by_type() {
        use Comparator::*;
        assert_eq!(NumberRelative.score(&json!(12.4), Some(&json!(12.45))), 1.0);
        assert_eq!(NumberRelative.score(&json!(12.4), Some(&json!(12.6))), 0.0);
        assert_eq!(
            NumberRelative.score(&json!("12·4"), Some(&json!(12.4))),
            1.0
        );
        assert_eq!(IntegerExact.score(&json!(240), Some(&json!(240))), 1.0);
        assert_eq!(IntegerExact.score(&json!(240), Some(&json!(241))), 0.0);
        assert_eq!(
            DateNormalized.score(&json!("2015-3"), Some(&json!("2015-03-12"))),
            1.0
        );
        assert_eq!(
            DateNormalized.score(&json!("2015-04"), Some(&json!("2015-03-12"))),
            0.0
        );
        assert_eq!(
            EnumExact.score(&json!("Parallel"), Some(&json!("parallel"))),
            1.0
        );
        let f1 = EnumSetF1.score(&json!(["a", "b"]), Some(&json!(["a", "c"])));
        assert!((f1 - 0.5).abs() < 1e-9);
        assert_eq!(
            TextTokenF1.score(
                &json!("oral amoxicillin"),
                Some(&json!("Oral amoxicillin."))
            ),
            1.0
        );
        assert_eq!(
            TextTokenF1.score(&json!("oral amoxicillin 500 mg"), Some(&json!("placebo"))),
            0.0
        );
        assert_eq!(BooleanExact.score(&json!(true), Some(&json!("yes"))), 1.0);
        // Not reported: matched by nothing.
        assert_eq!(IntegerExact.score(&json!(null), None), 1.0);
        assert_eq!(IntegerExact.score(&json!(null), Some(&json!(3))), 0.0);
        assert_eq!(IntegerExact.score(&json!(3), None), 0.0);
    }
}
