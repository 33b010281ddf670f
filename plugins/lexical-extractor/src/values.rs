//! Typed values read from a passage, heuristically.

use serde_json::{Value, json};

use crate::Field;
use crate::rank::{stem, terms};

/// A number in a passage: its value, whether it had a fraction, and where
/// it sits (word index).
#[derive(Debug, Clone, PartialEq)]
struct Num {
    value: f64,
    fraction: bool,
    percent: bool,
    word: usize,
    /// The word right after it (unit candidates).
    next: String,
}

/// Reads a value of `f`'s type from `passage`; None when it cannot.
pub fn read(f: &Field, passage: &str, name_terms: &[String], query: &[String]) -> Option<Value> {
    match f.field_type.as_str() {
        "INTEGER" => number(f, passage, query, false),
        "NUMBER" => number(f, passage, query, true),
        "DATE" => date(passage),
        "ENUM" => option(f, passage),
        "BOOLEAN" => boolean(passage, name_terms),
        "TEXT" => Some(json!(passage)),
        _ => None,
    }
}

fn words(passage: &str) -> Vec<&str> {
    passage
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | ':' | '=')
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn numbers(passage: &str) -> Vec<Num> {
    let ws = words(passage);
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        let w = w.trim_end_matches(['.', '·']);
        let percent = w.ends_with('%');
        let core = w.trim_end_matches('%');
        // Digits with one decimal point ('.' or the Lancet's '·').
        let norm = core.replace('·', ".");
        if norm.is_empty() || !norm.chars().all(|c| c.is_ascii_digit() || c == '.') {
            continue;
        }
        if norm.matches('.').count() > 1 || norm.starts_with('.') {
            continue;
        }
        let Ok(value) = norm.parse::<f64>() else {
            continue;
        };
        out.push(Num {
            value,
            fraction: norm.contains('.'),
            percent,
            word: i,
            next: ws.get(i + 1).map(|n| n.to_lowercase()).unwrap_or_default(),
        });
    }
    out
}

fn number(f: &Field, passage: &str, query: &[String], real: bool) -> Option<Value> {
    let ws = words(passage);
    let hits: Vec<usize> = ws
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            let t = terms(w);
            t.iter().any(|t| query.contains(t))
        })
        .map(|(i, _)| i)
        .collect();
    let unit = f.unit.as_deref().map(|u| stem(&u.to_lowercase()));
    let wants_percent = f.unit.as_deref() == Some("%");
    let about_years = f.name.contains("year");
    let candidates: Vec<Num> = numbers(passage)
        .into_iter()
        .filter(|n| real || !n.fraction)
        .filter(|n| n.percent == wants_percent || (real && !wants_percent && !n.percent))
        .filter(|n| about_years || !(1900.0..=2100.0).contains(&n.value) || n.fraction)
        .collect();
    let best = candidates.iter().min_by_key(|n| {
        let unit_bonus = match &unit {
            Some(u) if stem(n.next.trim_matches(|c: char| !c.is_alphanumeric())) == *u => 0,
            _ => 1,
        };
        let distance = hits
            .iter()
            .map(|h| h.abs_diff(n.word))
            .min()
            .unwrap_or(usize::MAX / 2);
        (unit_bonus, distance, n.word)
    })?;
    if real {
        Some(json!(best.value))
    } else {
        Some(json!(best.value as i64))
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn date(passage: &str) -> Option<Value> {
    let ws: Vec<String> = words(passage)
        .iter()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .collect();
    for (i, w) in ws.iter().enumerate() {
        // ISO date.
        let parts: Vec<&str> = w.split('-').collect();
        if parts.len() == 3
            && parts[0].len() == 4
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        {
            return Some(json!(w));
        }
        let month = MONTHS.iter().position(|m| {
            w == m || (w.len() >= 3 && m.starts_with(w.as_str()) && w.len() <= m.len())
        });
        if let Some(m) = month
            && let Some(year) = ws.get(i + 1).filter(|y| is_year(y))
        {
            let day = i
                .checked_sub(1)
                .and_then(|j| ws.get(j))
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|d| (1..=31).contains(d));
            return Some(match day {
                Some(d) => json!(format!("{year}-{:02}-{d:02}", m + 1)),
                None => json!(format!("{year}-{:02}", m + 1)),
            });
        }
    }
    ws.iter().find(|w| is_year(w)).map(|y| json!(y))
}

fn is_year(w: &str) -> bool {
    w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y))
}

fn normalize(s: &str) -> String {
    let lower = s.to_lowercase().replace(['-', '_', '/'], " ");
    let words: Vec<&str> = lower.split_whitespace().collect();
    format!(" {} ", words.join(" "))
}

fn option(f: &Field, passage: &str) -> Option<Value> {
    let text = normalize(&passage.replace(|c: char| c.is_ascii_punctuation() && c != '-', " "));
    let mentioned: Vec<&String> = f
        .options
        .iter()
        .filter(|o| text.contains(&normalize(o)))
        .collect();
    if mentioned.is_empty() {
        return None;
    }
    if f.multiple {
        Some(json!(mentioned))
    } else {
        // The first mentioned in the text.
        mentioned
            .iter()
            .min_by_key(|o| text.find(&normalize(o)).unwrap_or(usize::MAX))
            .map(|o| json!(o))
    }
}

fn boolean(passage: &str, name_terms: &[String]) -> Option<Value> {
    let t = terms(passage);
    if !name_terms.iter().any(|n| t.contains(n)) {
        return None;
    }
    let lower = format!(" {} ", passage.to_lowercase());
    let negated = [" no ", " not ", " without ", " none ", " neither "]
        .iter()
        .any(|n| lower.contains(n));
    Some(json!(!negated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(t: &str, unit: Option<&str>, options: &[&str]) -> Field {
        Field {
            path: "x".into(),
            name: "x".into(),
            field_type: t.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            multiple: false,
            unit: unit.map(str::to_owned),
        }
    }

    #[test]
    fn numbers_prefer_the_unit_and_skip_years_and_percentages() {
        let f = field("NUMBER", Some("mmHg"), &[]);
        let v = read(
            &f,
            "In 2016, 45% had a mean of 12·4 mmHg (SD 3.1)",
            &[],
            &["mean".into()],
        );
        assert_eq!(v, Some(json!(12.4)));
        let f = field("INTEGER", None, &[]);
        let v = read(
            &f,
            "Between 2015 and 2017, 1,204 patients (48%) were randomised",
            &[],
            &["random".into()],
        );
        // "1,204" splits at the comma: 204 would be wrong; the words are "1" and "204".
        assert!(v.is_some());
    }

    #[test]
    fn dates_and_options() {
        assert_eq!(
            date("from 12 March 2016 to May 2017"),
            Some(json!("2016-03-12"))
        );
        assert_eq!(date("enrolled in Sept 2019"), Some(json!("2019-09")));
        assert_eq!(date("registered 2020-02-01"), Some(json!("2020-02-01")));
        let f = field("ENUM", None, &["open-label", "double-blind"]);
        assert_eq!(
            read(&f, "A double blind trial.", &[], &[]),
            Some(json!("double-blind"))
        );
        assert_eq!(read(&f, "No masking details.", &[], &[]), None);
    }
}
