//! REVMAN_CSV: RevMan Web's study data import (study-centric data
//! management, Cochrane KB "Populate study data" and "Data extraction
//! templates"), as the three files the import takes, in a zip: study
//! information (one row per study), study arms (one row per arm, with the
//! intervention it maps to), and study results (one row per arm per
//! result). Outcome and intervention names must match the review's
//! criteria in RevMan exactly. Numbers are the arms' data as eviStream
//! holds them; derived ones are named in `Notes`.

use std::io::Write;

use super::csv_writer::CsvWriter;
use crate::analysis::comparisons::{Arm, ArmRole, Comparison, Origin, OutcomeType};
use crate::error::{ServiceError, ServiceResult};

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_default()
}

fn arm_name(c: &Comparison, a: &Arm) -> String {
    match a.role {
        ArmRole::Intervention => c.intervention.clone(),
        ArmRole::Comparator => c.comparator.clone(),
    }
}

fn study_information(comparisons: &[Comparison]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row(["Study", "Char: Identification"])?;
    let mut seen: Vec<&str> = Vec::new();
    for c in comparisons {
        if seen.contains(&c.study.id.as_str()) {
            continue;
        }
        seen.push(&c.study.id);
        let reports: Vec<&str> = comparisons
            .iter()
            .filter(|x| x.study.id == c.study.id)
            .flat_map(|x| x.reports.iter().map(|r| r.filename.as_str()))
            .fold(Vec::new(), |mut v, r| {
                if !v.contains(&r) {
                    v.push(r);
                }
                v
            });
        w.row([
            c.study.name.clone(),
            format!(
                "eviStream study {}; reports: {}",
                c.study.id,
                reports.join("; ")
            ),
        ])?;
    }
    w.finish()
}

fn study_arms(comparisons: &[Comparison]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row(["Study", "Arm", "Intervention"])?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for c in comparisons {
        for a in &c.arms {
            let name = arm_name(c, a);
            let key = (c.study.id.clone(), name.clone());
            if name.is_empty() || seen.contains(&key) {
                continue;
            }
            seen.push(key);
            w.row([c.study.name.as_str(), name.as_str(), name.as_str()])?;
        }
    }
    w.finish()
}

fn notes(a: &Arm) -> String {
    let mut n: Vec<String> = a
        .derived
        .iter()
        .map(|d| format!("{} DERIVED: {}", d.quantity, d.method))
        .collect();
    if a.origins.iter().any(|o| o.origin == Origin::Reviewed) {
        n.push("reviewed values".into());
    }
    n.join("; ")
}

fn study_results(comparisons: &[Comparison]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row([
        "Study",
        "Outcome",
        "Data type",
        "Intervention",
        "Comparator",
        "Arm",
        "Events",
        "Mean",
        "SD",
        "Total",
        "Notes",
    ])?;
    for c in comparisons {
        let kind = match c.outcome_type {
            Some(OutcomeType::Binary) => "Dichotomous",
            Some(OutcomeType::Continuous) => "Continuous",
            None => continue,
        };
        for a in &c.arms {
            let binary = c.outcome_type == Some(OutcomeType::Binary);
            w.row([
                c.study.name.clone(),
                c.outcome.clone(),
                kind.to_owned(),
                c.intervention.clone(),
                c.comparator.clone(),
                arm_name(c, a),
                if binary { num(a.events) } else { String::new() },
                if binary { String::new() } else { num(a.mean) },
                if binary {
                    String::new()
                } else {
                    num(a.standard_deviation)
                },
                num(a.group_size),
                notes(a),
            ])?;
        }
    }
    w.finish()
}

const README: &str = "RevMan Web study data import, written by eviStream.\n\
In RevMan Web (study-centric data management), set up the review criteria\n\
(interventions and outcomes, named as in these files), import any RIS\n\
references first, then import study data from CSV: study_information.csv,\n\
study_arms.csv, study_results.csv. Derived numbers say so in Notes.\n";

/// The zip of the three files (and a README).
pub fn zip(comparisons: &[Comparison]) -> ServiceResult<Vec<u8>> {
    let files = [
        ("README.txt", README.as_bytes().to_vec()),
        ("study_information.csv", study_information(comparisons)?),
        ("study_arms.csv", study_arms(comparisons)?),
        ("study_results.csv", study_results(comparisons)?),
    ];
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let fail =
        |e: &dyn std::fmt::Display| ServiceError::Internal(anyhow::anyhow!("revman zip: {e}"));
    for (name, bytes) in files {
        out.start_file(name, options).map_err(|e| fail(&e))?;
        out.write_all(&bytes).map_err(|e| fail(&e))?;
    }
    Ok(out.finish().map_err(|e| fail(&e))?.into_inner())
}
