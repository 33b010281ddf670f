//! eviStream's offline form extractor: no LLM at all.
//!
//! For every field of the program's top-level steps it ranks the passages
//! of the converted text (lines, split into sentences) with BM25 against
//! the field's name, description, hints, options and unit; quotes the best
//! passage verbatim as evidence; and reads a typed value from the best
//! passages heuristically (numbers near the field's terms and unit, enum
//! options mentioned, dates, yes/no). Confidence is deliberately low (at
//! most 0.6); where no value can be read the status is UNCLEAR, and where
//! no passage matches at all NOT_REPORTED. List fields (arms, outcomes per
//! arm) are not enumerated: it reports them UNCLEAR with the best passage.
//! Numbers are looked for in the tables first ([`tables`]: row label ×
//! column heading); an outcome-type ENUM (binary vs continuous) is read
//! from how the outcome is reported ([`kind`]).
//!
//! [`extract`] is plain Rust so it is tested natively; `component.rs` wraps
//! it as the `form-extractor` component.

pub use text_rank as rank;
pub mod kind;
pub mod tables;
pub mod values;

mod component;

use rank::{Index, Passage};

/// The program format, shared with the host ([`program_format`]).
pub use program_format::{Program, Step, StepField as Field, StepKind};

/// The status of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Read from the text.
    Found,
    /// No passage matches the field.
    NotReported,
    /// A passage matches but no value could be read.
    Unclear,
}

/// One value with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Field path.
    pub path: String,
    /// The typed value.
    pub value: serde_json::Value,
    /// Status.
    pub status: Status,
    /// Verbatim quote (a passage of the text) and its page.
    pub evidence: Option<(String, Option<u32>)>,
    /// 0..0.6.
    pub confidence: f32,
}

/// The result.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Values.
    pub values: Vec<Value>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// A page's code-point range in the text.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based.
    pub number: u32,
    /// Start.
    pub start: u32,
    /// End.
    pub end: u32,
}

/// Highest confidence this extractor ever claims.
pub const MAX_CONFIDENCE: f32 = 0.6;
/// BM25 score below which a passage does not count as a match.
pub const MIN_SCORE: f64 = 2.0;
/// Passages searched for a typical reading (`n = 24` for a count).
const TYPICAL_DEPTH: usize = 30;
/// Passages searched for any reading.
const LOOSE_DEPTH: usize = 5;

/// Runs the program's top-level steps over `text`.
pub fn extract(
    program: &str,
    text: &str,
    pages: &[Page],
    mut progress: impl FnMut(f32, &str),
) -> Result<Output, String> {
    let program = program_format::parse(program)?;
    let passages = without_references(rank::passages(text), text);
    let index = Index::new(&passages);
    let refs_from = references_start(text);
    let tables: Vec<tables::View> = tables::views(text)
        .into_iter()
        .filter(|t| t.start < refs_from)
        .collect();
    let mut out = Output {
        values: Vec::new(),
        warnings: Vec::new(),
    };
    let n = program.steps.len().max(1);
    for (i, step) in program.steps.iter().enumerate() {
        progress(i as f32 / n as f32, &step.id);
        if step.for_each.is_some() {
            // Items of a list it did not enumerate.
            continue;
        }
        if step.kind == StepKind::List {
            let list = step.path.trim_end_matches("[]").to_owned();
            let hits = index.search(&rank::terms(&step.query), 1);
            let evidence = hits
                .first()
                .filter(|(_, s)| *s >= MIN_SCORE)
                .map(|(p, _)| quote(&passages[*p], pages));
            out.values.push(Value {
                path: list.clone(),
                value: serde_json::Value::Null,
                status: if evidence.is_some() {
                    Status::Unclear
                } else {
                    Status::NotReported
                },
                evidence,
                confidence: 0.1,
            });
            out.warnings.push(format!(
                "`{list}`: lexical-extractor does not enumerate list items; bind an LLM adapter to extract them"
            ));
            continue;
        }
        // Terms every field of the step shares (the outcome, say) place
        // nothing; a field's own terms (its arm, "mean" vs "sd") do.
        let queries: Vec<Vec<String>> = step
            .fields
            .iter()
            .map(|f| rank::terms(&field_query(f, &step.instructions)))
            .collect();
        for (f, q) in step.fields.iter().zip(&queries) {
            let (own, subject): (Vec<String>, Vec<String>) = if queries.len() > 1 {
                q.iter()
                    .cloned()
                    .partition(|t| !queries.iter().all(|o| o.contains(t)))
            } else {
                (q.clone(), q.clone())
            };
            // A control arm goes by other names in papers.
            let mut own = own;
            if own
                .iter()
                .any(|t| tables::CONTROL_ARMS.contains(&t.as_str()))
            {
                for alias in tables::CONTROL_ARMS {
                    if !own.iter().any(|t| t == alias) {
                        own.push((*alias).to_owned());
                    }
                }
            }
            if f.field_type == "ENUM"
                && let Some((binary, continuous)) = kind::options(&f.options)
            {
                let outcome: Vec<String> = subject
                    .iter()
                    .filter(|t| !kind::is_kind_word(t))
                    .cloned()
                    .collect();
                out.values.push(outcome_type_value(
                    f,
                    (&binary, &continuous),
                    &outcome,
                    &tables,
                    &index,
                    &passages,
                    pages,
                ));
                continue;
            }
            let about = description_of(&step.instructions, &f.name);
            let value = table_value(f, about, &subject, &own, &tables, &passages, pages)
                .unwrap_or_else(|| {
                    field_value(f, &step.instructions, q, &own, &index, &passages, pages)
                });
            out.values.push(value);
        }
    }
    progress(1.0, "done");
    Ok(out)
}

fn quote(p: &Passage, pages: &[Page]) -> (String, Option<u32>) {
    let page = pages
        .iter()
        .find(|pg| pg.start <= p.start && p.start < pg.end)
        .map(|pg| pg.number);
    (p.text.clone(), page)
}

/// The line of the instructions that describes field `name` (`- \`name\` …`).
fn description_of<'a>(instructions: &'a str, name: &str) -> &'a str {
    let tag = format!("- `{name}`");
    instructions
        .lines()
        .find(|l| l.starts_with(&tag))
        .unwrap_or("")
}

/// The ranking text of a field: name, description line, unit, options.
fn field_query(f: &Field, instructions: &str) -> String {
    let mut query = format!(
        "{} {}",
        f.name.replace('_', " "),
        description_of(instructions, &f.name)
    );
    if let Some(u) = &f.unit {
        query.push(' ');
        query.push_str(u);
    }
    for o in &f.options {
        query.push(' ');
        query.push_str(o);
    }
    query
}

/// Drops the bibliography (after a `References` heading) and passages
/// that read like citations: their numbers are volumes, pages and years.
fn without_references(passages: Vec<Passage>, text: &str) -> Vec<Passage> {
    let refs_from = references_start(text);
    passages
        .into_iter()
        .filter(|p| p.start < refs_from && !is_citation(&p.text))
        .collect()
}

/// Where the bibliography starts (its heading), or the end.
fn references_start(text: &str) -> u32 {
    let mut refs_from = u32::MAX;
    let mut cp = 0u32;
    for line in text.split('\n') {
        let t = line
            .trim()
            .trim_start_matches('#')
            .trim()
            .trim_end_matches(':')
            .to_lowercase();
        if matches!(
            t.as_str(),
            "references" | "bibliography" | "literature cited" | "reference list"
        ) {
            refs_from = cp;
        }
        cp += line.chars().count() as u32 + 1;
    }
    refs_from
}

/// `N Engl J Med. 2004;350(24):2441–51`, `doi:10.1248/…`.
fn is_citation(s: &str) -> bool {
    let lower = s.to_lowercase();
    if lower.contains("doi:") || lower.contains("doi.org") {
        return true;
    }
    // year;volume or volume(issue):pages
    let b = s.as_bytes();
    b.windows(6).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b';'
            && (w[5].is_ascii_digit() || w[5] == b' ')
    }) || b
        .windows(4)
        .any(|w| w[0] == b')' && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit())
}

/// An outcome-type ENUM: binary or continuous by how the outcome is
/// reported ([`kind::decide`]); the quote is the outcome's table row, else
/// the passage that names it best.
fn outcome_type_value(
    f: &Field,
    (binary, continuous): (&str, &str),
    outcome: &[String],
    views: &[tables::View],
    index: &Index,
    passages: &[Passage],
    pages: &[Page],
) -> Value {
    let row = tables::subject_row(views, outcome);
    let hits: Vec<(usize, f64)> = index
        .search(outcome, LOOSE_DEPTH)
        .into_iter()
        .filter(|(_, s)| *s >= MIN_SCORE)
        .collect();
    let texts: Vec<&str> = hits
        .iter()
        .map(|(p, _)| passages[*p].text.as_str())
        .collect();
    let is_binary = kind::decide(outcome, row.as_ref().map(|(_, c)| c.as_slice()), &texts);
    let evidence = match &row {
        Some((line, _)) => {
            let page = passages
                .iter()
                .find(|p| p.text == line.trim())
                .and_then(|p| quote(p, pages).1);
            Some((line.trim().to_owned(), page))
        }
        None => hits.first().map(|(p, _)| quote(&passages[*p], pages)),
    };
    Value {
        path: f.path.clone(),
        value: serde_json::Value::String(if is_binary { binary } else { continuous }.to_owned()),
        status: Status::Found,
        evidence,
        confidence: if row.is_some() { 0.4 } else { 0.25 },
    }
}

/// A number read from a table cell (or, for a group size, a column
/// heading), written the field's way; None to fall back on passages.
fn table_value(
    f: &Field,
    about: &str,
    subject: &[String],
    own: &[String],
    views: &[tables::View],
    passages: &[Passage],
    pages: &[Page],
) -> Option<Value> {
    if !matches!(f.field_type.as_str(), "INTEGER" | "NUMBER") || own.is_empty() {
        return None;
    }
    let in_heading = values::counts_people(f, about);
    let found = tables::find(views, subject, own, in_heading)?;
    let name_terms = rank::terms(&f.name.replace('_', " "));
    let reading = values::read(f, &found.text, about, &name_terms, own)?;
    if !reading.typical {
        return None;
    }
    // The quote is the row's line as the text has it; its page is the
    // passage's that holds it.
    let page = passages
        .iter()
        .find(|p| p.text == found.quote.trim())
        .and_then(|p| quote(p, pages).1);
    Some(Value {
        path: f.path.clone(),
        value: reading.value,
        status: Status::Found,
        evidence: Some((found.quote.trim().to_owned(), page)),
        confidence: (0.3 + 0.2 * (found.score / (found.score + 1.0)) as f32).min(MAX_CONFIDENCE),
    })
}

fn field_value(
    f: &Field,
    instructions: &str,
    terms: &[String],
    own: &[String],
    index: &Index,
    passages: &[Passage],
    pages: &[Page],
) -> Value {
    let about = description_of(instructions, &f.name);
    let mut search = terms.to_vec();
    search.extend(rank::terms(values::expansion(f, about)));
    let hits: Vec<(usize, f64)> = index
        .search(&search, TYPICAL_DEPTH)
        .into_iter()
        .filter(|(_, s)| *s >= MIN_SCORE)
        .collect();
    let Some(&(best, best_score)) = hits.first() else {
        return Value {
            path: f.path.clone(),
            value: serde_json::Value::Null,
            status: Status::NotReported,
            evidence: None,
            confidence: 0.2,
        };
    };
    let name_terms = rank::terms(&f.name.replace('_', " "));
    let place = if own.is_empty() { terms } else { own };
    // The first passage with a typical reading wins; failing one, the first
    // of the best few with any reading.
    let mut loose = None;
    let mut found = None;
    for (rank, &(p, score)) in hits.iter().enumerate() {
        let Some(r) = values::read(f, &passages[p].text, about, &name_terms, place) else {
            continue;
        };
        if r.typical {
            found = Some((p, score, r.value));
            break;
        }
        if loose.is_none() && rank < LOOSE_DEPTH {
            loose = Some((p, score, r.value));
        }
    }
    let found = found.or(loose);
    match found {
        Some((p, score, v)) => Value {
            path: f.path.clone(),
            value: v,
            status: Status::Found,
            evidence: Some(quote(&passages[p], pages)),
            confidence: confidence(score, best_score),
        },
        None => Value {
            path: f.path.clone(),
            value: serde_json::Value::Null,
            status: Status::Unclear,
            evidence: Some(quote(&passages[best], pages)),
            confidence: 0.15,
        },
    }
}

/// Low by design: BM25 says where the words are, not that the value is right.
fn confidence(score: f64, best: f64) -> f32 {
    let strength = (score / (score + 8.0)) as f32;
    let rank_penalty = if score < best { 0.8 } else { 1.0 };
    (0.2 + 0.4 * strength * rank_penalty).min(MAX_CONFIDENCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# A trial of drug X\n\nMethods\n\nThis was a randomised, double-blind, placebo-controlled, parallel-group trial conducted in 12 centres.\n\nA total of 240 patients were recruited and randomly assigned to drug X (n = 121) or placebo (n = 119) between March 2015 and June 2017.\n\nThe primary outcome was systolic blood pressure at 12 weeks; mean reduction was 12·4 mmHg in the drug X group.";

    fn program() -> String {
        serde_json::json!({
            "format": 1,
            "steps": [{
                "id": "general", "kind": "fields", "path": "", "for_each": null,
                "query": "", "instructions": "Extract these fields of the study:\n- `sample_size` (integer, unit: participants): Number of patients randomised\n- `design` (option): Trial design One of: parallel | crossover | cluster.\n- `blinding` (option): Masking One of: open-label | single-blind | double-blind.\n- `start_date` (date YYYY-MM-DD (or YYYY-MM, YYYY)): When recruitment started\n- `sbp_reduction` (number, unit: mmHg): Mean reduction in systolic blood pressure\n- `funding` (text): Who funded the trial",
                "fields": [
                    { "path": "sample_size", "name": "sample_size", "type": "INTEGER", "unit": "participants" },
                    { "path": "design", "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"] },
                    { "path": "blinding", "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"] },
                    { "path": "start_date", "name": "start_date", "type": "DATE" },
                    { "path": "sbp_reduction", "name": "sbp_reduction", "type": "NUMBER", "unit": "mmHg" },
                    { "path": "funding", "name": "funding", "type": "TEXT" }
                ]
            }, {
                "id": "arms", "kind": "list", "path": "arms[]", "for_each": null,
                "query": "arms drug placebo group", "instructions": "", "fields": []
            }]
        })
        .to_string()
    }

    #[test]
    fn reads_typed_values_with_verbatim_evidence() {
        // Like a paper: the relevant lines among many others.
        let filler: String = (0..40)
            .map(|i| format!("\n\nLine {i} discusses background on hypertension, prior cohorts and their limitations."))
            .collect();
        let text = format!("{TEXT}{filler}");
        let out = extract(
            &program(),
            &text,
            &[Page {
                number: 1,
                start: 0,
                end: 100_000,
            }],
            |_, _| {},
        )
        .unwrap();
        let get = |p: &str| out.values.iter().find(|v| v.path == p).unwrap();
        assert_eq!(get("sample_size").value, serde_json::json!(240));
        assert_eq!(get("design").value, serde_json::json!("parallel"));
        assert_eq!(get("blinding").value, serde_json::json!("double-blind"));
        assert_eq!(get("start_date").value, serde_json::json!("2015-03"));
        assert_eq!(get("sbp_reduction").value, serde_json::json!(12.4));
        assert_eq!(get("funding").status, Status::NotReported);
        for v in &out.values {
            assert!(v.confidence <= MAX_CONFIDENCE);
            if let Some((q, page)) = &v.evidence {
                assert!(text.contains(q.as_str()), "verbatim: {q}");
                assert_eq!(*page, Some(1));
            }
        }
        assert_eq!(get("arms").status, Status::Unclear);
        assert!(out.warnings[0].contains("does not enumerate"));
    }

    #[test]
    fn a_bad_program_is_an_error() {
        assert!(extract("{}", TEXT, &[], |_, _| {}).is_err());
        assert!(extract(r#"{"format": 9, "steps": []}"#, TEXT, &[], |_, _| {}).is_err());
    }

    #[test]
    fn the_bibliography_and_citations_are_not_read() {
        let text = "Results\n\nIn the trial 24 patients were randomised.\n\nA citation: N Engl J Med. 2004;350(24):2441–51.\n\n# References\n\n1. Smith J. 350 patients were randomised. Lancet.";
        let kept = without_references(rank::passages(text), text);
        let texts: Vec<&str> = kept.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["Results", "In the trial 24 patients were randomised."]
        );
    }
}
