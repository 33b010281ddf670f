//! METAFOR_CSV: one row per comparison with the column names metafor's
//! `escalc()` takes (`ai bi ci di n1i n2i` for binary data, `m1i sd1i n1i
//! m2i sd2i n2i` for continuous), the computed `yi vi`, and a `derived`
//! column saying what was derived and how; plus the R script that reads
//! it and runs `rma()` per outcome and measure. Also the analysis parts of
//! the JSON export.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::csv_writer::CsvWriter;
use crate::analysis::PooledOutcome;
use crate::analysis::comparisons::{Arm, ArmRole, Comparison, Origin, OutcomeType};
use crate::error::ServiceResult;

/// The columns, in order.
pub const COLUMNS: [&str; 24] = [
    "study",
    "study_id",
    "reports",
    "outcome",
    "intervention",
    "comparator",
    "outcome_type",
    "measure",
    "ai",
    "bi",
    "ci",
    "di",
    "n1i",
    "n2i",
    "m1i",
    "sd1i",
    "m2i",
    "sd2i",
    "yi",
    "vi",
    "ci_lb",
    "ci_ub",
    "derived",
    "warnings",
];

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_default()
}

/// escalc's name of an arm's derived quantity.
fn column(arm: ArmRole, quantity: &str) -> &'static str {
    match (arm, quantity) {
        (ArmRole::Intervention, "mean") => "m1i",
        (ArmRole::Intervention, _) => "sd1i",
        (ArmRole::Comparator, "mean") => "m2i",
        (ArmRole::Comparator, _) => "sd2i",
    }
}

/// "sd1i: SD from 95% CI (t, n < 60) [outcomes[0].intervention_ci_lower, …]; …"
pub fn derived_note(arms: &[Arm]) -> String {
    arms.iter()
        .flat_map(|a| {
            a.derived.iter().map(move |d| {
                let paths: Vec<String> = d
                    .inputs
                    .as_array()
                    .map(|i| {
                        i.iter()
                            .filter_map(|x| x["path"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "{}: {} [{}]",
                    column(a.role, d.quantity),
                    d.method,
                    paths.join(", ")
                )
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The CSV of `comparisons`.
pub fn file(comparisons: &[Comparison]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row(COLUMNS)?;
    for c in comparisons {
        let (x, y) = (&c.arms[0], &c.arms[1]);
        let binary = c.outcome_type == Some(OutcomeType::Binary);
        let non_events = |a: &Arm| a.events.zip(a.group_size).map(|(e, n)| n - e);
        let e = c.effect.as_ref();
        let mut row = vec![
            c.study.name.clone(),
            c.study.id.clone(),
            c.reports
                .iter()
                .map(|r| r.filename.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            c.outcome.clone(),
            c.intervention.clone(),
            c.comparator.clone(),
            c.outcome_type
                .map(|t| format!("{t:?}").to_lowercase())
                .unwrap_or_default(),
            c.measure.map(|m| m.as_str().to_owned()).unwrap_or_default(),
        ];
        if binary {
            row.extend([
                num(x.events),
                num(non_events(x)),
                num(y.events),
                num(non_events(y)),
            ]);
        } else {
            row.extend(std::iter::repeat_n(String::new(), 4));
        }
        row.extend([num(x.group_size), num(y.group_size)]);
        if binary {
            row.extend(std::iter::repeat_n(String::new(), 4));
        } else {
            row.extend([
                num(x.mean),
                num(x.standard_deviation),
                num(y.mean),
                num(y.standard_deviation),
            ]);
        }
        row.extend([
            num(e.map(|e| e.yi)),
            num(e.map(|e| e.vi)),
            num(e.map(|e| e.ci_lower)),
            num(e.map(|e| e.ci_upper)),
            derived_note(&c.arms),
            c.warnings.join("; "),
        ]);
        w.row(&row)?;
    }
    w.finish()
}

/// The R script beside the CSV `file_name`: reads it, recomputes each
/// measure with `escalc()` (a check on our numbers), and runs `rma()`
/// (DerSimonian–Laird) per outcome and measure.
pub fn script(file_name: &str) -> String {
    include_str!("analysis.R").replace("{{file}}", file_name)
}

/// The JSON of one comparison (for the JSON export).
pub fn comparison_json(c: &Comparison) -> Value {
    let origin = |o: Origin| match o {
        Origin::Extracted => "EXTRACTED",
        Origin::Reviewed => "REVIEWED",
        Origin::Derived => "DERIVED",
    };
    json!({
        "study": { "id": c.study.id, "name": c.study.name },
        "reports": c.reports.iter().map(|r| json!({"id": r.id, "filename": r.filename})).collect::<Vec<_>>(),
        "outcome": c.outcome, "intervention": c.intervention, "comparator": c.comparator,
        "outcomeType": c.outcome_type.map(|t| format!("{t:?}").to_uppercase()),
        "measure": c.measure.map(|m| m.as_str()),
        "effect": c.effect.as_ref().map(|e| json!({
            "yi": e.yi, "vi": e.vi, "ciLower": e.ci_lower, "ciUpper": e.ci_upper,
        })),
        "arms": c.arms.iter().map(|a| json!({
            "role": format!("{:?}", a.role).to_uppercase(),
            "events": a.events, "groupSize": a.group_size, "mean": a.mean,
            "standardDeviation": a.standard_deviation,
            "sources": a.origins.iter().map(|o| json!({
                "quantity": o.quantity, "source": origin(o.origin), "path": o.path,
            })).collect::<Vec<_>>(),
            "derived": a.derived.iter().map(|d| json!({
                "quantity": d.quantity, "value": d.value, "method": d.method,
                "formula": d.formula, "inputs": d.inputs, "warnings": d.warnings,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": c.warnings,
    })
}

/// The studies: id → name and reports.
pub fn studies_json(studies: &HashMap<String, (String, String)>) -> Value {
    let mut by_study: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut docs: Vec<(&String, &(String, String))> = studies.iter().collect();
    docs.sort();
    for (doc, (id, name)) in docs {
        match by_study.iter_mut().find(|(i, _, _)| i == id) {
            Some((_, _, d)) => d.push(doc.clone()),
            None => by_study.push((id.clone(), name.clone(), vec![doc.clone()])),
        }
    }
    by_study.sort();
    by_study
        .into_iter()
        .map(|(id, name, documents)| json!({"id": id, "name": name, "documents": documents}))
        .collect()
}

/// The JSON of a pooled preview.
pub fn pooled_json(p: &PooledOutcome) -> Value {
    let e = &p.pooled;
    json!({
        "outcome": p.outcome, "measure": p.measure.as_str(), "k": e.k,
        "fixed": { "estimate": e.fixed.estimate, "se": e.fixed.se, "ciLower": e.fixed.ci_lower, "ciUpper": e.fixed.ci_upper },
        "random": { "estimate": e.random.estimate, "se": e.random.se, "ciLower": e.random.ci_lower, "ciUpper": e.random.ci_upper, "tau2": e.tau2, "i2": e.i2 },
        "q": e.q,
    })
}
