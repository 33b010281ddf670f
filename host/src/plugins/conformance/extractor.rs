//! An extractor's behaviour: the bundled form compiled as the server
//! compiles forms, run over the bundled trial report converted by the
//! built-in converter, with the host's grounding; then over an empty
//! document. Its `llm` import answers every question with the emptiest
//! answer the request's schema allows (nulls, "not reported" where offered).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Report, Verdict, exhausted, plugin_reason, samples};
use crate::extraction::pipeline::{DocumentInput, DocumentRun, PipelineError, run_document};
use crate::forms::fields::{self, Field};
use crate::forms::program;
use crate::plugins::PluginHost;
use crate::plugins::builtin;
use crate::plugins::converter::PageRange;
use crate::plugins::extractor::{
    ExtractError, ExtractorImports, FormExtractor, LlmBackend, ValueStatus,
};
use crate::plugins::llm::{Completion, CompletionRequest, FinishReason, LlmFailure};
use crate::plugins::manifest::Manifest;

/// Shown of a failing list: this many items, then a count.
const SHOWN: usize = 3;

pub(super) async fn run(
    host: &PluginHost,
    m: &Manifest,
    sha: &str,
    wasm: Arc<Vec<u8>>,
    report: &mut Report,
) {
    let Some(x) = super::loaded(host.extractor(m, sha, async { Ok(wasm) }), m, report).await else {
        return;
    };
    let started = Instant::now();
    let form: Vec<Field> = match serde_json::from_str(samples::FORM)
        .map_err(|e| e.to_string())
        .and_then(|f: Vec<Field>| fields::validate(&f).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => {
            report.record(
                "program",
                Verdict::Fail,
                format!("bundled form: {e}"),
                started,
            );
            return;
        }
    };
    let (program_text, _) = program::canonical(&program::compile("plugin-check", None, &form, &[]));
    let document = match converted(host).await {
        Ok(d) => d,
        Err(e) => {
            report.record(
                "document",
                Verdict::Fail,
                format!("the built-in converter could not convert the bundled report: {e}"),
                started,
            );
            return;
        }
    };
    let label = format!("{}@{}", m.id, m.version);
    let started = Instant::now();
    let run = extract(x.as_ref(), &program_text, document, &label).await;
    let run = match run {
        Ok(r) => {
            report.record(
                "extract",
                Verdict::Pass,
                format!(
                    "{} values, {} warnings from the bundled trial report",
                    r.values.len(),
                    r.warnings.len()
                ),
                started,
            );
            r
        }
        Err(e) => {
            let out_of_limits =
                matches!(&e, PipelineError::Extract(ExtractError::Plugin(p)) if exhausted(p));
            report.record("extract", Verdict::Fail, reason(&e, m), started);
            if out_of_limits {
                report.skip("behaviour", "the extractor ran out of its limits");
                return;
            }
            for name in ["value-paths", "value-types", "quotes-grounded"] {
                report.skip(name, "the extraction failed");
            }
            empty(x.as_ref(), m, &program_text, &label, report).await;
            return;
        }
    };
    let by_path: HashMap<String, &Field> = fields::by_path(&form).into_iter().collect();
    let started = Instant::now();
    let mut stray = Vec::new();
    let mut mistyped = Vec::new();
    for v in &run.values {
        let field = fields::concrete_template(&v.value.path, usize::MAX)
            .ok()
            .and_then(|t| by_path.get(&t).copied());
        match field {
            None => stray.push(format!("`{}`", v.value.path.escape_default())),
            Some(f) if !f.field_type.is_composite() => {
                if let Err(e) = fields::check_value(f, &v.value.value) {
                    mistyped.push(format!("{}: {e}", v.value.path));
                }
            }
            Some(_) => {}
        }
    }
    verdict_of_list(
        report,
        "value-paths",
        &stray,
        "values have paths that are not fields of the program",
        &format!(
            "every value's path is a field of the program ({} values)",
            run.values.len()
        ),
        started,
    );
    verdict_of_list(
        report,
        "value-types",
        &mistyped,
        "values are not of their field's type",
        "every value has its field's type",
        started,
    );
    let started = Instant::now();
    let quoted: Vec<_> = run
        .values
        .iter()
        .filter(|v| v.value.evidence.iter().any(|e| !e.quote.trim().is_empty()))
        .collect();
    let lost: Vec<String> = quoted
        .iter()
        .filter(|v| !v.grounding.is_grounded())
        .map(|v| {
            let quote: String = v.value.evidence[0].quote.chars().take(60).collect();
            format!("{}: “{}”", v.value.path, quote.escape_default())
        })
        .collect();
    verdict_of_list(
        report,
        "quotes-grounded",
        &lost,
        "quoted values have no quote the host finds in the text",
        &format!(
            "the host found the quotes of all {} quoted values in the text",
            quoted.len()
        ),
        started,
    );
    empty(x.as_ref(), m, &program_text, &label, report).await;
}

/// An empty document: "not reported" values (or none), not a trap.
async fn empty(
    x: &dyn FormExtractor,
    m: &Manifest,
    program_text: &str,
    label: &str,
    report: &mut Report,
) {
    let started = Instant::now();
    let nothing = Document {
        markdown: Arc::from(""),
        pages: Arc::from(vec![PageRange {
            number: 1,
            start: 0,
            end: 0,
        }]),
        cells: Vec::new(),
    };
    match extract(x, program_text, nothing, label).await {
        Ok(r) => {
            let found: Vec<String> = r
                .values
                .iter()
                .filter(|v| v.value.status == ValueStatus::Found)
                .map(|v| v.value.path.clone())
                .collect();
            verdict_of_list(
                report,
                "empty-document",
                &found,
                "values are FOUND in a document with no text",
                &format!("{} values, none found", r.values.len()),
                started,
            );
        }
        Err(e) => report.record("empty-document", Verdict::Fail, reason(&e, m), started),
    }
}

/// A converted document.
struct Document {
    markdown: Arc<str>,
    pages: Arc<[PageRange]>,
    cells: Vec<(u32, u32)>,
}

/// The bundled trial report, converted by the built-in converter.
async fn converted(host: &PluginHost) -> Result<Document, String> {
    let (_, c) = host
        .builtin_converter(builtin::DEFAULT_CONVERTER)
        .await
        .map_err(|e| e.to_string())?;
    let doc = c
        .convert(samples::text_pdf(&samples::TRIAL), Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Document {
        cells: doc
            .layout
            .as_ref()
            .map(|l| l.cell_spans())
            .unwrap_or_default(),
        markdown: Arc::from(doc.markdown.as_str()),
        pages: Arc::from(doc.pages.as_slice()),
    })
}

async fn extract(
    x: &dyn FormExtractor,
    program_text: &str,
    d: Document,
    label: &str,
) -> Result<DocumentRun, PipelineError> {
    let imports = ExtractorImports {
        llm: Some(Arc::new(EmptiestLlm)),
        progress: None,
        label: label.to_owned(),
    };
    let input = DocumentInput::Text {
        markdown: d.markdown,
        pages: d.pages,
        cells: d.cells,
    };
    run_document(input, program_text, x, imports).await
}

fn reason(e: &PipelineError, m: &Manifest) -> String {
    match e {
        PipelineError::Extract(ExtractError::Plugin(p)) => plugin_reason(p, m),
        PipelineError::Extract(other) => format!("{}: {other}", other.kind()),
        other => other.to_string(),
    }
}

fn verdict_of_list(
    report: &mut Report,
    name: &str,
    bad: &[String],
    failing: &str,
    passing: &str,
    started: Instant,
) {
    if bad.is_empty() {
        report.record(name, Verdict::Pass, passing, started);
        return;
    }
    let mut shown = bad[..bad.len().min(SHOWN)].join("; ");
    if bad.len() > SHOWN {
        shown.push_str(&format!("; and {} more", bad.len() - SHOWN));
    }
    report.record(
        name,
        Verdict::Fail,
        format!("{} {failing}: {shown}", bad.len()),
        started,
    );
}

/// The check's LLM: the emptiest answer of the request's schema.
struct EmptiestLlm;

#[async_trait::async_trait]
impl LlmBackend for EmptiestLlm {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, LlmFailure> {
        let answer = match request.json_schema.as_deref() {
            Some(s) => {
                let schema: Value = serde_json::from_str(s).map_err(|e| {
                    LlmFailure::BadRequest(format!("the request's schema is not JSON: {e}"))
                })?;
                emptiest(&schema, 0)
            }
            None => json!({}),
        };
        Ok(Completion {
            text: answer.to_string(),
            input_tokens: 0,
            output_tokens: 0,
            finish_reason: FinishReason::Stop,
            model: "plugin-check".into(),
        })
    }
}

/// The emptiest instance of `schema`: null where allowed, a "not reported"
/// option of an enum where there is one, required properties only, empty
/// lists.
fn emptiest(schema: &Value, depth: usize) -> Value {
    if depth > 32 {
        return Value::Null;
    }
    if let Some(options) = schema["enum"].as_array() {
        let not = options.iter().find(|o| {
            o.as_str()
                .is_some_and(|s| s.to_ascii_lowercase().replace(['_', ' '], "") == "notreported")
        });
        return not
            .or_else(|| options.iter().find(|o| o.is_null()))
            .or_else(|| options.first())
            .cloned()
            .unwrap_or(Value::Null);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema[key].as_array() {
            let pick = alts
                .iter()
                .find(|a| a["type"] == "null")
                .or_else(|| alts.first());
            return pick.map_or(Value::Null, |a| emptiest(a, depth + 1));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema["properties"].is_object() => vec!["object"],
        _ => vec![],
    };
    if types.contains(&"null") {
        return Value::Null;
    }
    match types.first().copied() {
        Some("object") => {
            let props = schema["properties"].as_object();
            let required: Vec<&str> = match schema["required"].as_array() {
                Some(r) => r.iter().filter_map(Value::as_str).collect(),
                None => props.map_or(vec![], |p| p.keys().map(String::as_str).collect()),
            };
            let mut out = serde_json::Map::new();
            for name in required {
                let sub = props.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
                out.insert(name.to_owned(), emptiest(sub, depth + 1));
            }
            Value::Object(out)
        }
        Some("array") => {
            let min = schema["minItems"].as_u64().unwrap_or(0).min(1);
            let items = &schema["items"];
            Value::Array((0..min).map(|_| emptiest(items, depth + 1)).collect())
        }
        Some("string") => json!(""),
        Some("number") | Some("integer") => json!(0),
        Some("boolean") => json!(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emptiest_answer_prefers_null_and_not_reported() {
        let schema = json!({
            "type": "object",
            "properties": {
                "value": {"type": ["integer", "null"]},
                "status": {"enum": ["FOUND", "NOT_REPORTED", "UNCLEAR"]},
                "quote": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object"}},
                "skipped": {"type": "string"}
            },
            "required": ["value", "status", "quote", "items"]
        });
        assert_eq!(
            emptiest(&schema, 0),
            json!({"value": null, "status": "NOT_REPORTED", "quote": "", "items": []})
        );
        assert_eq!(emptiest(&json!({"enum": ["a", "b"]}), 0), json!("a"));
        assert_eq!(
            emptiest(&json!({"anyOf": [{"type": "string"}, {"type": "null"}]}), 0),
            Value::Null
        );
    }
}
