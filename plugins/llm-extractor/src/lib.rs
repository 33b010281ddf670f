//! eviStream's LLM form extractor, as plain Rust over an [`Llm`] trait (the
//! component routes it to the host's `llm` import; tests use a stub).
//!
//! For each program step, in order: the passages of the document most
//! relevant to the step (BM25 over the step's query and instructions; the
//! whole text when it fits the budget) are sent with the program's and the
//! step's instructions and the step's JSON Schema. The answer is checked
//! against the shape the schema asks (every field: value, status, quote,
//! confidence); an answer that is not JSON or not of that shape gets one
//! repair round, then the step's fields are UNCLEAR with a warning. List
//! steps yield items (`arms[0]`, `arms[1]`, …); steps `for_each` item run
//! once per item found.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use text_rank::{Index, passages, terms};

/// Characters of document text sent per step at most.
pub const PASSAGE_BUDGET: usize = 12_000;

/// A completion request (the contract's shape).
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// System instructions.
    pub system: String,
    /// The question.
    pub user: String,
    /// JSON Schema text.
    pub schema: String,
    /// Schema name.
    pub schema_name: String,
}

/// The LLM, as the extractor sees it.
pub trait Llm {
    /// One completion: the answer's text and the model name, or an error message.
    fn complete(&mut self, ask: &Ask) -> Result<(String, String), String>;
}

use program_format::{Step, StepField as Field, StepKind};

/// Status of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Found.
    Found,
    /// Not reported.
    NotReported,
    /// Not applicable.
    NotApplicable,
    /// Unclear.
    Unclear,
}

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Concrete path.
    pub path: String,
    /// Value.
    pub value: Value,
    /// Status.
    pub status: Status,
    /// The model's quote, if any.
    pub quote: Option<String>,
    /// 0..1.
    pub confidence: f32,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// Values.
    pub values: Vec<Extracted>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Models that answered.
    pub models: Vec<String>,
    /// Characters of document text sent, over all steps.
    pub chars_sent: usize,
}

/// Why extraction stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Not a program this extractor reads.
    InvalidProgram(String),
    /// The LLM failed (after the host's retries).
    Llm(String),
}

/// The passages for a step: the whole text when it fits, else the best
/// ranked passages up to the budget, in document order. A step that asks
/// for numbers gives half of the budget to the passages densest in numbers
/// (result tables and their rows), which share few words with the field
/// descriptions and rank low on words alone.
pub fn context(text: &str, query: &str, numeric: bool) -> String {
    if text.chars().count() <= PASSAGE_BUDGET {
        return text.to_owned();
    }
    let ps = passages(text);
    let index = Index::new(&ps);
    let by_words: Vec<usize> = index
        .search(&terms(query), ps.len())
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let mut by_numbers: Vec<(usize, usize)> = if numeric {
        ps.iter()
            .enumerate()
            .map(|(i, p)| (numbers_in(&p.text), i))
            .filter(|(n, _)| *n >= 3)
            .collect()
    } else {
        Vec::new()
    };
    by_numbers.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0;
    let mut take = |order: &mut dyn Iterator<Item = usize>, cap: usize| {
        for i in order {
            let n = ps[i].text.chars().count();
            if chosen.contains(&i) || used + n > cap {
                continue;
            }
            used += n;
            chosen.push(i);
        }
    };
    let budget = PASSAGE_BUDGET - HEADING_RESERVE;
    if numeric {
        take(&mut by_words.iter().copied(), budget / 2);
        take(&mut by_numbers.iter().map(|&(_, i)| i), budget);
    }
    take(&mut by_words.iter().copied(), budget);
    chosen.sort_unstable();
    with_table_headings(text, &ps, &chosen, PASSAGE_BUDGET.saturating_sub(used))
}

/// Room kept in the budget for the headings and captions of the tables
/// whose rows are chosen.
const HEADING_RESERVE: usize = PASSAGE_BUDGET / 10;

/// The chosen passages in document order; rows of one table go out as one
/// markdown table under its caption, heading rows and rule (as far as
/// `room` allows), so a row's numbers keep their column names.
fn with_table_headings(
    text: &str,
    ps: &[text_rank::Passage],
    chosen: &[usize],
    mut room: usize,
) -> String {
    let tables = text_rank::tables::tables(text);
    // (table, row) of a passage inside a table.
    let place = |p: &text_rank::Passage| -> Option<(usize, usize)> {
        let t = tables
            .iter()
            .position(|t| t.start <= p.start && p.start < t.end)?;
        let r = tables[t].rows.iter().rposition(|r| r.start <= p.start)?;
        Some((t, r))
    };
    let captions: Vec<usize> = chosen
        .iter()
        .filter_map(|&i| place(&ps[i]).map(|(t, _)| t))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<usize> = None;
    for &i in chosen {
        let p = &ps[i];
        match place(p) {
            Some((t, r)) => {
                let table = &tables[t];
                if open != Some(t) {
                    let mut head = String::new();
                    if let Some(c) = &table.caption {
                        head.push_str(c);
                        head.push_str("\n\n");
                    }
                    for row in &table.rows[..table.rule_after] {
                        head.push_str(&row.line);
                        head.push('\n');
                    }
                    if let Some(rule) = &table.rule {
                        head.push_str(rule);
                        head.push('\n');
                    }
                    let n = head.chars().count();
                    if n <= room {
                        room -= n;
                    } else {
                        head.clear();
                    }
                    open = Some(t);
                    out.push(head);
                } else if let Some(last) = out.last_mut() {
                    last.push('\n');
                }
                // A heading row already written above is not repeated.
                let written = r < table.rule_after
                    && out.last().is_some_and(|l| l.contains(&table.rows[r].line));
                if !written && let Some(last) = out.last_mut() {
                    last.push_str(&p.text);
                }
            }
            None => {
                // A caption goes out with its table's rows.
                let is_caption_of_chosen = captions
                    .iter()
                    .any(|&t| tables[t].caption.as_deref().map(str::trim) == Some(p.text.as_str()));
                if is_caption_of_chosen {
                    continue;
                }
                open = None;
                out.push(p.text.clone());
            }
        }
    }
    out.iter()
        .map(|s| s.trim_end_matches('\n'))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Numbers written in a passage (`12`, `4.6`, `−1.3`).
fn numbers_in(s: &str) -> usize {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '·'))
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .count()
}

/// Whether a step's answer has numeric values.
fn asks_numbers(schema: &Value) -> bool {
    let s = schema.to_string();
    s.contains("\"number\"") || s.contains("\"integer\"")
}

/// Checks that `v` has the shape of a step's answer object with `fields`.
fn check_fields(v: &Value, fields: &[Field]) -> Result<(), String> {
    let obj = v.as_object().ok_or("the answer is not a JSON object")?;
    for f in fields {
        let a = obj
            .get(&f.name)
            .ok_or_else(|| format!("field `{}` is missing", f.name))?;
        if !a.is_object() || a.get("status").and_then(Value::as_str).is_none() {
            return Err(format!(
                "field `{}` needs an object with value, status, quote, confidence",
                f.name
            ));
        }
    }
    Ok(())
}

fn check(step: &Step, v: &Value) -> Result<(), String> {
    if step.kind == StepKind::List {
        let items = v["items"].as_array().ok_or("`items` must be an array")?;
        for it in items {
            check_fields(it, &step.fields)?;
        }
        Ok(())
    } else {
        check_fields(v, &step.fields)
    }
}

fn status(s: &str) -> Status {
    match s {
        "FOUND" => Status::Found,
        "NOT_REPORTED" => Status::NotReported,
        "NOT_APPLICABLE" => Status::NotApplicable,
        _ => Status::Unclear,
    }
}

fn values_of(obj: &Value, fields: &[Field], prefix: &str, out: &mut Vec<Extracted>) {
    for f in fields {
        let a = &obj[&f.name];
        let quote = a["quote"]
            .as_str()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        out.push(Extracted {
            path: format!("{prefix}{}", f.name),
            value: a.get("value").cloned().unwrap_or(Value::Null),
            status: status(a["status"].as_str().unwrap_or("UNCLEAR")),
            quote,
            confidence: a["confidence"].as_f64().unwrap_or(0.5).clamp(0.0, 1.0) as f32,
        });
    }
}

/// `arms[].outcomes[]` with the concrete prefix of `for_each` substituted.
fn concrete(template: &str, for_each: &str, instance: &str) -> String {
    match template.strip_prefix(for_each) {
        Some(rest) => format!("{instance}{rest}"),
        None => template.to_owned(),
    }
}

fn prefix_of(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

/// Runs `program` over `text` through `llm`.
pub fn extract(
    program: &str,
    text: &str,
    llm: &mut dyn Llm,
    mut progress: impl FnMut(f32, &str),
) -> Result<Output, Error> {
    let program = program_format::parse(program).map_err(Error::InvalidProgram)?;
    let mut out = Output::default();
    // List template path → concrete item prefixes found (`arms[]` → `arms[0]`, …).
    let mut items: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let n = program.steps.len().max(1);
    for (si, step) in program.steps.iter().enumerate() {
        progress(si as f32 / n as f32, &step.id);
        let instances: Vec<(String, String)> = match &step.for_each {
            None => vec![(String::new(), String::new())],
            Some(each) => items
                .get(each)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|inst| (each.clone(), inst))
                .collect(),
        };
        for (each, inst) in instances {
            let path = if each.is_empty() {
                step.path.clone()
            } else {
                concrete(&step.path, &each, &inst)
            };
            let mut user = String::new();
            let ctx = context(
                text,
                &format!("{} {}", step.query, step.instructions),
                asks_numbers(&step.json_schema),
            );
            out.chars_sent += ctx.chars().count();
            user.push_str("Passages of the paper:\n\n");
            user.push_str(&ctx);
            user.push_str("\n\n---\n");
            if !inst.is_empty() {
                let label = out
                    .values
                    .iter()
                    .filter(|v| v.path.starts_with(&format!("{inst}.")))
                    .filter_map(|v| v.value.as_str().map(|s| format!("{}: {s}", v.path)))
                    .next()
                    .unwrap_or_else(|| inst.clone());
                user.push_str(&format!("The item: `{inst}` ({label}).\n"));
            }
            user.push_str(&step.instructions);
            user.push_str("\nAnswer with JSON that matches the schema exactly.");
            let ask = Ask {
                system: program.instructions.clone(),
                user,
                schema: step.json_schema.to_string(),
                schema_name: step.id.replace('.', "_"),
            };
            let answer = ask_checked(llm, &ask, step, &mut out)?;
            match answer {
                None => {
                    out.warnings.push(format!(
                        "step `{}`{}: the model's answer did not match the schema twice; its fields are UNCLEAR",
                        step.id,
                        if inst.is_empty() { String::new() } else { format!(" for {inst}") }
                    ));
                    if step.kind != StepKind::List {
                        for f in &step.fields {
                            out.values.push(Extracted {
                                path: format!("{}{}", prefix_of(&path), f.name),
                                value: Value::Null,
                                status: Status::Unclear,
                                quote: None,
                                confidence: 0.0,
                            });
                        }
                    }
                }
                Some(v) if step.kind == StepKind::List => {
                    let list = path.trim_end_matches("[]").to_owned();
                    let found = v["items"].as_array().cloned().unwrap_or_default();
                    let entry = items.entry(step.path.clone()).or_default();
                    for (j, it) in found.iter().enumerate() {
                        let item = format!("{list}[{j}]");
                        values_of(it, &step.fields, &format!("{item}."), &mut out.values);
                        entry.push(item);
                    }
                }
                Some(v) => values_of(&v, &step.fields, &prefix_of(&path), &mut out.values),
            }
        }
    }
    progress(1.0, "done");
    Ok(out)
}

/// Asks, checks, asks once more with the error when the answer is unusable.
fn ask_checked(
    llm: &mut dyn Llm,
    ask: &Ask,
    step: &Step,
    out: &mut Output,
) -> Result<Option<Value>, Error> {
    let mut ask = ask.clone();
    for round in 0..2 {
        let (text, model) = llm.complete(&ask).map_err(Error::Llm)?;
        if !out.models.contains(&model) {
            out.models.push(model);
        }
        let parsed: Result<Value, String> = serde_json::from_str(strip_fences(&text))
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| check(step, &v).map(|()| v));
        match parsed {
            Ok(v) => return Ok(Some(v)),
            Err(e) if round == 0 => {
                ask.user = format!(
                    "{}\n\nYour previous answer was unusable ({e}). Answer again with JSON that matches the schema exactly.",
                    ask.user
                );
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// Models sometimes wrap JSON in a Markdown fence.
fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|x| x.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(t)
}

/// A value's JSON text for the contract.
pub fn value_json(v: &Value) -> String {
    json!(v).to_string()
}

mod component;

#[cfg(test)]
mod tests {
    use super::*;

    struct Script(Vec<String>, Vec<Ask>);

    impl Llm for Script {
        fn complete(&mut self, ask: &Ask) -> Result<(String, String), String> {
            self.1.push(ask.clone());
            if self.0.is_empty() {
                return Err("no more answers".into());
            }
            Ok((self.0.remove(0), "stub-model".into()))
        }
    }

    fn program() -> String {
        json!({
            "format": 1, "instructions": "Be careful.",
            "steps": [
                { "id": "general", "kind": "fields", "path": "", "for_each": null, "depends_on": [],
                  "fields": [{ "name": "sample_size" }], "instructions": "- `sample_size`", "query": "sample size",
                  "json_schema": { "type": "object" } },
                { "id": "arms", "kind": "list", "path": "arms[]", "for_each": null, "depends_on": ["general"],
                  "fields": [{ "name": "name" }], "instructions": "List arms", "query": "arms",
                  "json_schema": { "type": "object" } },
                { "id": "arms.outcomes", "kind": "list", "path": "arms[].outcomes[]", "for_each": "arms[]",
                  "depends_on": ["arms"], "fields": [{ "name": "events" }], "instructions": "Outcomes",
                  "query": "events", "json_schema": { "type": "object" } }
            ]
        })
        .to_string()
    }

    fn a(v: Value) -> Value {
        json!({ "value": v, "status": "FOUND", "quote": "q", "confidence": 0.9 })
    }

    #[test]
    fn steps_lists_and_per_item_steps_become_paths() {
        let answers = vec![
            json!({ "sample_size": a(json!(240)) }).to_string(),
            json!({ "items": [ { "name": a(json!("drug")) }, { "name": a(json!("placebo")) } ] })
                .to_string(),
            json!({ "items": [ { "events": a(json!(12)) } ] }).to_string(),
            "```json\n{\"items\": []}\n```".to_owned(),
        ];
        let mut llm = Script(answers, vec![]);
        let out = extract(&program(), "short paper text", &mut llm, |_, _| {}).unwrap();
        let paths: Vec<&str> = out.values.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sample_size",
                "arms[0].name",
                "arms[1].name",
                "arms[0].outcomes[0].events"
            ]
        );
        assert_eq!(out.values[3].value, json!(12));
        assert_eq!(out.models, ["stub-model"]);
        assert!(llm.1[2].user.contains("`arms[0]` (arms[0].name: drug)"));
        assert_eq!(llm.1.len(), 4);
    }

    #[test]
    fn unusable_answers_get_one_repair_then_unclear() {
        let answers = vec![
            "{\"sample_size\": 5".to_owned(),
            json!({ "wrong": 1 }).to_string(),
            json!({ "items": [] }).to_string(),
        ];
        let mut llm = Script(answers, vec![]);
        let out = extract(&program(), "text", &mut llm, |_, _| {}).unwrap();
        assert_eq!(out.values[0].status, Status::Unclear);
        assert!(out.warnings[0].contains("did not match the schema"));
        assert!(llm.1[1].user.contains("Your previous answer was unusable"));
    }

    #[test]
    fn long_papers_send_the_relevant_passages_only() {
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!(
                "Background paragraph {i} about unrelated matters of history.\n\n"
            ));
        }
        text.push_str("A total of 240 participants were randomised.\n\n");
        text.push_str("Table 2 Outcomes at 12 weeks\n\n");
        text.push_str(
            "| Outcome | Drug | Placebo |\n| --- | --- | --- |\n| Pain | 4.3 (1.0) | 3.6 (1.2) |\n\n",
        );
        let ctx = context(&text, "participants randomised sample size", false);
        assert!(ctx.chars().count() <= PASSAGE_BUDGET);
        assert!(ctx.contains("A total of 240 participants were randomised."));
        // On words alone the table row ranks nowhere …
        assert!(!ctx.contains("4.3 (1.0)"));
        // … a step asking for numbers keeps it, and the words' best passage.
        let ctx = context(&text, "participants randomised sample size", true);
        assert!(ctx.chars().count() <= PASSAGE_BUDGET);
        // … as a markdown table under its caption and heading row.
        assert!(
            ctx.contains(
                "Table 2 Outcomes at 12 weeks\n\n| Outcome | Drug | Placebo |\n\
                 | --- | --- | --- |\n| Pain | 4.3 (1.0) | 3.6 (1.2) |"
            ),
            "{ctx}"
        );
        assert_eq!(ctx.matches("Table 2 Outcomes").count(), 1);
        assert!(ctx.contains("A total of 240 participants were randomised."));
        assert_eq!(context("short", "x", true), "short");
    }

    #[test]
    fn llm_failures_stop_the_extraction() {
        let mut llm = Script(vec![], vec![]);
        assert!(matches!(
            extract(&program(), "t", &mut llm, |_, _| {}),
            Err(Error::Llm(_))
        ));
    }
}
