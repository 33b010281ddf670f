//! Effect sizes of a generated 1,000-study project: eviStream's
//! comparisons (roles → arms → RR, OR, RD, MD, SMD) against the same
//! `escalc()` calls in R with metafor, timed in the same run (R's time
//! is measured inside R, without its start-up).
//!
//! `cargo bench -p evistream --bench analysis`

use std::time::Instant;

use evistream::analysis::comparisons::{
    self, InputCell, Measures, Origin, Report, ReportValues, StudyRef,
};
use evistream::analysis::{EffectMeasure, roles};
use serde_json::{Value, json};

const STUDIES: usize = 1000;
const ROUNDS: usize = 20;

fn fields() -> Vec<evistream::forms::Field> {
    let names = [
        ("outcome", "TEXT"),
        ("intervention", "TEXT"),
        ("comparator", "TEXT"),
        ("outcome_type", "TEXT"),
        ("intervention_events", "INTEGER"),
        ("intervention_group_size", "INTEGER"),
        ("comparator_events", "INTEGER"),
        ("comparator_group_size", "INTEGER"),
        ("intervention_mean", "NUMBER"),
        ("intervention_standard_deviation", "NUMBER"),
        ("comparator_mean", "NUMBER"),
        ("comparator_standard_deviation", "NUMBER"),
    ];
    let items: Vec<Value> = names
        .iter()
        .map(|(n, t)| json!({ "name": n, "type": t }))
        .collect();
    serde_json::from_value(json!([{ "name": "outcomes", "type": "ARRAY", "fields": items }]))
        .expect("fields")
}

/// A binary and a continuous comparison per study, from a fixed LCG.
fn project() -> (Vec<ReportValues>, String) {
    let mut seed: u64 = 42;
    let mut next = |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let mut reports = Vec::new();
    let mut csv = String::from("ai,n1i,ci,n2i,m1i,sd1i,m2i,sd2i,cn1,cn2\n");
    for s in 0..STUDIES {
        let (n1, n2) = (20 + next(200), 20 + next(200));
        let (a, c) = (next(n1 + 1), next(n2 + 1));
        let (cn1, cn2) = (10 + next(100), 10 + next(100));
        let (m1, m2) = (
            50.0 + next(200) as f64 / 10.0,
            50.0 + next(200) as f64 / 10.0,
        );
        let (sd1, sd2) = (5.0 + next(100) as f64 / 10.0, 5.0 + next(100) as f64 / 10.0);
        csv += &format!("{a},{n1},{c},{n2},{m1},{sd1},{m2},{sd2},{cn1},{cn2}\n");
        let mut cells = Vec::new();
        let mut put = |i: usize, k: &str, v: Value| {
            cells.push(InputCell {
                path: format!("outcomes[{i}].{k}"),
                value: v,
                origin: Origin::Extracted,
                evidence: Vec::new(),
            });
        };
        for (i, (outcome, kind)) in [("mortality", "binary"), ("pain", "continuous")]
            .into_iter()
            .enumerate()
        {
            put(i, "outcome", json!(outcome));
            put(i, "intervention", json!("drug"));
            put(i, "comparator", json!("placebo"));
            put(i, "outcome_type", json!(kind));
        }
        put(0, "intervention_events", json!(a));
        put(0, "intervention_group_size", json!(n1));
        put(0, "comparator_events", json!(c));
        put(0, "comparator_group_size", json!(n2));
        put(1, "intervention_mean", json!(m1));
        put(1, "intervention_standard_deviation", json!(sd1));
        put(1, "intervention_group_size", json!(cn1));
        put(1, "comparator_mean", json!(m2));
        put(1, "comparator_standard_deviation", json!(sd2));
        put(1, "comparator_group_size", json!(cn2));
        let id = format!("study-{s}");
        reports.push(ReportValues {
            report: Report {
                id: id.clone(),
                filename: format!("{id}.pdf"),
            },
            study: StudyRef {
                id: id.clone(),
                name: id,
            },
            cells,
        });
    }
    (reports, csv)
}

fn main() {
    let roles = roles::auto(&fields());
    let (reports, csv) = project();
    let sets = [
        Measures {
            binary: EffectMeasure::Rr,
            continuous: EffectMeasure::Md,
        },
        Measures {
            binary: EffectMeasure::Or,
            continuous: EffectMeasure::Smd,
        },
        Measures {
            binary: EffectMeasure::Rd,
            continuous: EffectMeasure::Md,
        },
    ];
    let mut best = f64::MAX;
    let mut computed = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for m in sets {
            computed = comparisons::build(&roles, &reports, m)
                .iter()
                .filter(|c| c.effect.is_some())
                .count();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "eviStream: {STUDIES} studies, 2 comparisons each, RR+OR+RD+MD+SMD (with roles, arms, provenance): best of {ROUNDS} {best:.2} ms ({computed} effects per set)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("studies.csv");
    std::fs::write(&data, csv).expect("write");
    let script = format!(
        r#"suppressMessages(library(metafor)); d <- read.csv("{}")
r <- replicate({ROUNDS}, system.time({{
  for (m in c("RR","OR","RD")) escalc(m, ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=d)
  escalc("MD", m1i=m1i, sd1i=sd1i, n1i=cn1, m2i=m2i, sd2i=sd2i, n2i=cn2, data=d)
  escalc("SMD", m1i=m1i, sd1i=sd1i, n1i=cn1, m2i=m2i, sd2i=sd2i, n2i=cn2, data=d)
  escalc("MD", m1i=m1i, sd1i=sd1i, n1i=cn1, m2i=m2i, sd2i=sd2i, n2i=cn2, data=d)
}})[["elapsed"]])
cat(min(r) * 1000, "\n")"#,
        data.display()
    );
    match std::process::Command::new("Rscript")
        .args(["-e", &script])
        .output()
    {
        Ok(out) if out.status.success() => {
            let r_ms: f64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(f64::NAN);
            println!("R escalc (baseline, same calls): best of {ROUNDS} {r_ms:.2} ms");
            println!("ratio eviStream / R: {:.2}", best / r_ms);
        }
        Ok(out) => println!("R failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => println!(
            "Rscript not found ({e}): tests/scripts/ensure-tools.sh installs R and metafor"
        ),
    }
}
