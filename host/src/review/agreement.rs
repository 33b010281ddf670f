//! Agreement between the independent extractions of DUAL review, per
//! field: the share of paired values that agree by the field's comparator,
//! and, for ENUM and BOOLEAN fields, Cohen's kappa. The raters are "the
//! first to submit" and "the second to submit" in each document; with more
//! than two reviewers per document, kappa is the mean over rater pairs
//! (Light's kappa). A value one extraction left out is "not reported",
//! itself a category.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::state::Extraction;
use crate::forms::fields;

/// A field's agreement figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Agreement {
    /// Share of paired values that agree (None: nothing was paired).
    pub proportion: Option<f64>,
    /// Cohen's kappa (None: not a categorical field, nothing paired, or
    /// undefined because every rating fell in one category).
    pub kappa: Option<f64>,
}

/// The agreement of the field at `template` over `documents` (each the
/// submitted extractions of one document, in submission order).
pub fn of_field(
    documents: &[&[Extraction]],
    template: &str,
    categorical: bool,
    agree: &dyn Fn(&str, &Value, &Value) -> bool,
) -> Agreement {
    let categorical: HashSet<String> = categorical
        .then(|| template.to_owned())
        .into_iter()
        .collect();
    of_fields(documents, &categorical, agree)
        .remove(template)
        .unwrap_or_default()
}

/// The agreement of every field people gave values of, by template path,
/// in one pass over the values; kappa for the templates in `categorical`.
pub fn of_fields(
    documents: &[&[Extraction]],
    categorical: &HashSet<String>,
    agree: &dyn Fn(&str, &Value, &Value) -> bool,
) -> HashMap<String, Agreement> {
    #[derive(Default)]
    struct Tally {
        paired: u32,
        agreed: u32,
        ratings: BTreeMap<(usize, usize), Vec<(String, String)>>,
    }
    let none = Value::Null;
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for extractions in documents.iter().filter(|e| e.len() >= 2) {
        let paths: BTreeSet<&String> = extractions.iter().flat_map(|e| e.values.keys()).collect();
        for path in paths {
            let template = fields::template(path);
            let rated = categorical.contains(&template);
            let t = tallies.entry(template).or_default();
            let values: Vec<&Value> = extractions
                .iter()
                .map(|e| e.values.get(path).unwrap_or(&none))
                .collect();
            for i in 0..values.len() {
                for j in i + 1..values.len() {
                    t.paired += 1;
                    if agree(path, values[i], values[j]) {
                        t.agreed += 1;
                    }
                    if rated {
                        t.ratings
                            .entry((i, j))
                            .or_default()
                            .push((category(values[i]), category(values[j])));
                    }
                }
            }
        }
    }
    tallies
        .into_iter()
        .map(|(template, t)| {
            let kappas: Vec<f64> = t.ratings.values().filter_map(|r| cohen(r)).collect();
            let a = Agreement {
                proportion: (t.paired > 0).then(|| f64::from(t.agreed) / f64::from(t.paired)),
                kappa: (!kappas.is_empty())
                    .then(|| kappas.iter().sum::<f64>() / kappas.len() as f64),
            };
            (template, a)
        })
        .collect()
}

/// Cohen's kappa of two raters' categories: (pₒ − pₑ) / (1 − pₑ), None
/// when undefined (pₑ = 1: both always gave the same one category).
pub fn cohen(ratings: &[(String, String)]) -> Option<f64> {
    if ratings.is_empty() {
        return None;
    }
    let n = ratings.len() as f64;
    let observed = ratings.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let mut first: HashMap<&str, f64> = HashMap::new();
    let mut second: HashMap<&str, f64> = HashMap::new();
    for (a, b) in ratings {
        *first.entry(a).or_default() += 1.0;
        *second.entry(b).or_default() += 1.0;
    }
    let expected: f64 = first
        .iter()
        .map(|(k, a)| a / n * second.get(k).copied().unwrap_or(0.0) / n)
        .sum();
    if (1.0 - expected).abs() < 1e-12 {
        return None;
    }
    Some((observed - expected) / (1.0 - expected))
}

/// The category of an ENUM or BOOLEAN value: options compared as the
/// ENUM comparator does (trimmed, case-insensitive), a multiple choice as
/// its set.
fn category(v: &Value) -> String {
    match v {
        Value::Null => "\u{2205}".to_owned(),
        Value::String(s) => s.trim().to_lowercase(),
        Value::Array(items) => {
            let set: BTreeSet<String> = items.iter().map(category).collect();
            set.into_iter().collect::<Vec<_>>().join("|")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn extraction(user: &str, values: &[(&str, Value)]) -> Extraction {
        Extraction {
            user_id: user.into(),
            values: values
                .iter()
                .map(|(p, v)| ((*p).to_owned(), v.clone()))
                .collect(),
        }
    }

    fn exact(_: &str, a: &Value, b: &Value) -> bool {
        a == b
    }

    #[test]
    fn kappa_of_a_case_worked_by_hand() {
        // Four documents; A says true, true, false, false; B says true,
        // false, false, false. pₒ = 3/4; pₑ = ½·¼ + ½·¾ = ½; κ = ½.
        let docs: Vec<Vec<Extraction>> =
            [(true, true), (true, false), (false, false), (false, false)]
                .iter()
                .map(|(a, b)| {
                    vec![
                        extraction("a", &[("blinded", json!(a))]),
                        extraction("b", &[("blinded", json!(b))]),
                    ]
                })
                .collect();
        let refs: Vec<&[Extraction]> = docs.iter().map(Vec::as_slice).collect();
        let got = of_field(&refs, "blinded", true, &exact);
        assert_eq!(got.proportion, Some(0.75));
        assert!((got.kappa.unwrap() - 0.5).abs() < 1e-12, "{got:?}");
    }

    #[test]
    fn list_items_pair_by_path_and_a_missing_value_is_not_reported() {
        let docs = [vec![
            extraction(
                "a",
                &[
                    ("arms[0].kind", json!("Drug")),
                    ("arms[1].kind", json!("placebo")),
                ],
            ),
            extraction("b", &[("arms[0].kind", json!("drug "))]),
        ]];
        let refs: Vec<&[Extraction]> = docs.iter().map(Vec::as_slice).collect();
        let ci = |_: &str, a: &Value, b: &Value| category(a) == category(b);
        let got = of_field(&refs, "arms[].kind", true, &ci);
        assert_eq!(got.proportion, Some(0.5));
        // pₒ = ½; A: drug ½, placebo ½; B: drug ½, ∅ ½; pₑ = ¼; κ = ⅓.
        assert!((got.kappa.unwrap() - 1.0 / 3.0).abs() < 1e-12, "{got:?}");
    }

    #[test]
    fn kappa_is_undefined_when_everyone_always_says_the_same() {
        let r = vec![("yes".to_owned(), "yes".to_owned()); 3];
        assert_eq!(cohen(&r), None);
        let r = vec![
            ("yes".to_owned(), "yes".to_owned()),
            ("no".to_owned(), "no".to_owned()),
        ];
        assert_eq!(cohen(&r), Some(1.0));
    }

    #[test]
    fn three_reviewers_average_their_pairs() {
        let docs: Vec<Vec<Extraction>> = [("x", "x", "y"), ("y", "y", "y")]
            .iter()
            .map(|(a, b, c)| {
                vec![
                    extraction("a", &[("e", json!(a))]),
                    extraction("b", &[("e", json!(b))]),
                    extraction("c", &[("e", json!(c))]),
                ]
            })
            .collect();
        let refs: Vec<&[Extraction]> = docs.iter().map(Vec::as_slice).collect();
        let got = of_field(&refs, "e", true, &exact);
        // Pairs: (a,b) agree twice; (a,c) and (b,c) once each: 4 of 6.
        assert!((got.proportion.unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // κ(a,b) = 1; κ(a,c) = κ(b,c) = 0 (pₒ = ½, pₑ = ½·0 + ½·1 = ½).
        assert!((got.kappa.unwrap() - 1.0 / 3.0).abs() < 1e-12, "{got:?}");
        // Not categorical: no kappa.
        assert_eq!(of_field(&refs, "e", false, &exact).kappa, None);
    }
}
