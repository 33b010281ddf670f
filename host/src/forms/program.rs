//! Extraction programs: a form version compiled, deterministically and
//! offline, into ordered steps. Each step says which fields go together,
//! the JSON Schema its answer must validate against, the instructions built
//! from the fields' descriptions, hints, options and units, and what it
//! depends on (a list of arms before the outcomes of each arm). The program
//! is canonical JSON (keys sorted), addressed by its sha256.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::fields::{Field, FieldType};

pub use program_format::{FORMAT, Program, STATUSES, Step, StepField, StepKind};

/// Most scalar fields asked in one step (long forms are split).
pub const FIELDS_PER_STEP: usize = 10;

/// A field type as programs spell it (`INTEGER`).
fn program_type(t: FieldType) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => format!("{t:?}").to_uppercase(),
    }
}

/// Compiles fields into a program. Same input, same program, byte for byte.
pub fn compile(
    form: &str,
    description: Option<&str>,
    fields: &[Field],
    feedback: &[String],
) -> Program {
    let mut steps = Vec::new();
    emit(fields, "", None, None, &mut steps);
    let mut instructions = String::from(
        "You extract data from a scientific paper (usually a clinical trial) for a systematic review. \
         Answer only from the paper's text. For every field give: `value` (typed as the schema says, \
         null when not found), `status` (FOUND; NOT_REPORTED when the paper does not say; \
         NOT_APPLICABLE when the field does not apply to this study; UNCLEAR when the paper is \
         ambiguous), `quote` (a short verbatim quote from the text that supports the value, copied \
         exactly; empty when not found) and `confidence` (0 to 1). Never guess numbers: a value \
         must be stated or directly computable from the quote.",
    );
    if !feedback.is_empty() {
        instructions.push_str("\nReviewer feedback to follow:");
        for f in feedback {
            instructions.push_str("\n- ");
            instructions.push_str(f.trim());
        }
    }
    Program {
        format: FORMAT,
        form: form.to_owned(),
        description: description.map(str::to_owned),
        instructions,
        feedback: feedback.to_vec(),
        steps,
    }
}

/// Emits the steps of `fields`, the sub-fields of the container at `path`.
fn emit(
    fields: &[Field],
    path: &str,
    for_each: Option<&str>,
    parent: Option<&str>,
    steps: &mut Vec<Step>,
) {
    let scalars: Vec<&Field> = fields
        .iter()
        .filter(|f| !f.field_type.is_composite())
        .collect();
    let base_id = if path.is_empty() {
        "general".to_owned()
    } else {
        path.replace("[]", "")
    };
    // A container's own scalars; the root's are split into chunks.
    let mut container_step = parent.map(str::to_owned);
    if !scalars.is_empty() {
        let chunks: Vec<&[&Field]> = scalars.chunks(FIELDS_PER_STEP).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let id = if i == 0 {
                base_id.clone()
            } else {
                format!("{base_id}-{}", i + 1)
            };
            steps.push(scalar_step(&id, chunk, path, for_each, parent));
            if i == 0 {
                container_step = Some(id);
            }
        }
    }
    for f in fields.iter().filter(|f| f.field_type.is_composite()) {
        let child = format!("{}{}", prefix(path), f.name);
        match f.field_type {
            FieldType::Object => emit(
                &f.fields,
                &child,
                for_each,
                container_step.as_deref(),
                steps,
            ),
            _ => {
                let list_path = format!("{child}[]");
                let id = child.replace("[]", "");
                steps.push(list_step(
                    &id,
                    f,
                    &list_path,
                    for_each,
                    container_step.as_deref(),
                ));
                // Nested containers of each item run per item, after the list.
                let nested: Vec<Field> = f
                    .fields
                    .iter()
                    .filter(|s| s.field_type.is_composite())
                    .cloned()
                    .collect();
                if !nested.is_empty() {
                    emit(&nested, &list_path, Some(&list_path), Some(&id), steps);
                }
            }
        }
    }
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

fn step_fields(fields: &[&Field], path: &str) -> Vec<StepField> {
    fields
        .iter()
        .map(|f| StepField {
            path: format!("{}{}", prefix(path), f.name),
            name: f.name.clone(),
            field_type: program_type(f.field_type),
            options: f.options.clone(),
            multiple: f.multiple,
            unit: f.unit.clone(),
            required: f.required,
        })
        .collect()
}

fn describe(f: &Field) -> String {
    let mut s = format!("- `{}` ({}", f.name, type_name(f));
    if let Some(u) = &f.unit {
        s.push_str(&format!(", unit: {u}"));
    }
    if f.required {
        s.push_str(", required");
    }
    s.push(')');
    if let Some(d) = &f.description {
        s.push_str(": ");
        s.push_str(d);
    }
    if !f.options.is_empty() {
        s.push_str(&format!(
            " {} of: {}.",
            if f.multiple { "Any" } else { "One" },
            f.options.join(" | ")
        ));
    }
    if let Some(h) = &f.hints {
        s.push_str(" Hint: ");
        s.push_str(h);
    }
    s
}

fn type_name(f: &Field) -> &'static str {
    match f.field_type {
        FieldType::Text => "text",
        FieldType::Number => "number",
        FieldType::Integer => "integer",
        FieldType::Boolean => "true/false",
        FieldType::Date => "date YYYY-MM-DD (or YYYY-MM, YYYY)",
        FieldType::Enum if f.multiple => "list of options",
        FieldType::Enum => "option",
        FieldType::Object => "group",
        FieldType::Array => "list",
    }
}

fn query_terms(name: &str, fields: &[&Field]) -> String {
    let mut terms = vec![name.replace(['_', '.'], " ")];
    for f in fields {
        terms.push(f.name.replace('_', " "));
        terms.extend(f.description.clone());
        terms.extend(f.hints.clone());
        terms.extend(f.unit.clone());
        terms.extend(f.options.iter().cloned());
    }
    terms.join(" ")
}

fn scalar_step(
    id: &str,
    fields: &[&Field],
    path: &str,
    for_each: Option<&str>,
    parent: Option<&str>,
) -> Step {
    let mut instructions = if let Some(each) = for_each {
        format!("For the item of `{each}` named in the request, extract:\n")
    } else if path.is_empty() {
        "Extract these fields of the study:\n".to_owned()
    } else {
        format!("Extract these fields of `{path}`:\n")
    };
    instructions.push_str(
        &fields
            .iter()
            .map(|f| describe(f))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    Step {
        id: id.to_owned(),
        kind: StepKind::Fields,
        path: path.to_owned(),
        for_each: for_each.map(str::to_owned),
        depends_on: parent.map(|p| vec![p.to_owned()]).unwrap_or_default(),
        fields: step_fields(fields, path),
        instructions,
        query: query_terms(path, fields),
        json_schema: object_schema(fields),
    }
}

fn list_step(
    id: &str,
    list: &Field,
    list_path: &str,
    for_each: Option<&str>,
    parent: Option<&str>,
) -> Step {
    let scalars: Vec<&Field> = list
        .fields
        .iter()
        .filter(|f| !f.field_type.is_composite())
        .collect();
    let what = list.description.as_deref().unwrap_or(&list.name);
    let mut instructions = match for_each {
        Some(each) => format!(
            "For the item of `{each}` named in the request, list every `{}` ({what}) the paper reports, one entry each, in the paper's order. For each give:\n",
            list.name
        ),
        None => format!(
            "List every `{}` ({what}) the paper reports, one entry each, in the paper's order. For each give:\n",
            list.name
        ),
    };
    if let Some(h) = &list.hints {
        instructions = format!("{instructions}(Hint: {h})\n");
    }
    instructions.push_str(
        &scalars
            .iter()
            .map(|f| describe(f))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    Step {
        id: id.to_owned(),
        kind: StepKind::List,
        path: list_path.to_owned(),
        for_each: for_each.map(str::to_owned),
        depends_on: parent.map(|p| vec![p.to_owned()]).unwrap_or_default(),
        fields: step_fields(&scalars, list_path),
        instructions,
        query: query_terms(&list.name, &scalars),
        json_schema: json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": object_schema(&scalars) } },
        }),
    }
}

fn object_schema(fields: &[&Field]) -> Value {
    let mut props = serde_json::Map::new();
    for f in fields {
        props.insert(f.name.clone(), answer_schema(f));
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        "properties": props,
    })
}

/// The schema of one field's answer: value, status, quote, confidence.
fn answer_schema(f: &Field) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["value", "status", "quote", "confidence"],
        "properties": {
            "value": value_schema(f),
            "status": { "type": "string", "enum": STATUSES },
            "quote": { "type": "string" },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
        },
    })
}

fn value_schema(f: &Field) -> Value {
    match f.field_type {
        FieldType::Text => json!({ "type": ["string", "null"] }),
        FieldType::Number => json!({ "type": ["number", "null"] }),
        FieldType::Integer => json!({ "type": ["integer", "null"] }),
        FieldType::Boolean => json!({ "type": ["boolean", "null"] }),
        FieldType::Date => json!({
            "type": ["string", "null"],
            "pattern": "^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$",
        }),
        FieldType::Enum if f.multiple => json!({
            "type": ["array", "null"],
            "items": { "type": "string", "enum": f.options },
        }),
        FieldType::Enum => {
            let mut opts: Vec<Value> = f.options.iter().map(|o| json!(o)).collect();
            opts.push(Value::Null);
            json!({ "enum": opts })
        }
        // Composite fields are asked in steps of their own.
        FieldType::Object | FieldType::Array => json!({ "type": "null" }),
    }
}

/// Canonical JSON: object keys sorted at every level, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    // A Map built in sorted order serializes in that order with or without
    // serde_json's `preserve_order`.
    serde_json::to_string(&sort(v)).unwrap_or_default()
}

/// A program's canonical JSON text and its sha256.
pub fn canonical(program: &Program) -> (String, String) {
    let text = canonical_json(&serde_json::to_value(program).unwrap_or_default());
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    (text, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, t: FieldType, sub: Vec<Field>) -> Field {
        Field {
            name: name.into(),
            description: Some(format!("the {name}")),
            field_type: t,
            options: if t == FieldType::Enum {
                vec!["a".into(), "b".into()]
            } else {
                vec![]
            },
            multiple: false,
            hints: None,
            unit: (t == FieldType::Integer).then(|| "participants".into()),
            required: false,
            fields: sub,
        }
    }

    fn trial() -> Vec<Field> {
        vec![
            field("design", FieldType::Enum, vec![]),
            field("sample_size", FieldType::Integer, vec![]),
            field(
                "arms",
                FieldType::Array,
                vec![
                    field("name", FieldType::Text, vec![]),
                    field("n", FieldType::Integer, vec![]),
                    field(
                        "outcomes",
                        FieldType::Array,
                        vec![field("events", FieldType::Integer, vec![])],
                    ),
                ],
            ),
        ]
    }

    #[test]
    fn steps_respect_dependencies_and_paths() {
        let p = compile("Trial", None, &trial(), &[]);
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["general", "arms", "arms.outcomes"]);
        assert_eq!(p.steps[1].kind, StepKind::List);
        assert_eq!(p.steps[1].depends_on, ["general"]);
        assert_eq!(p.steps[2].for_each.as_deref(), Some("arms[]"));
        assert_eq!(p.steps[2].depends_on, ["arms"]);
        assert_eq!(p.steps[2].fields[0].path, "arms[].outcomes[].events");
        assert!(
            p.steps[0]
                .instructions
                .contains("`sample_size` (integer, unit: participants)")
        );
        assert_eq!(
            p.steps[0].json_schema["properties"]["design"]["properties"]["value"]["enum"],
            json!(["a", "b", null])
        );
    }

    #[test]
    fn the_program_is_deterministic_and_content_addressed() {
        let (a, ha) = canonical(&compile("Trial", None, &trial(), &[]));
        let (b, hb) = canonical(&compile("Trial", None, &trial(), &[]));
        assert_eq!((a.clone(), ha.clone()), (b, hb));
        assert_eq!(ha.len(), 64);
        let (_, hc) = canonical(&compile(
            "Trial",
            None,
            &trial(),
            &["Count randomized, not analysed".into()],
        ));
        assert_ne!(ha, hc, "feedback changes the program");
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(canonical_json(&v), a, "canonical form is a fixed point");
    }

    #[test]
    fn long_forms_are_split() {
        let many: Vec<Field> = (0..23)
            .map(|i| field(&format!("f{i}"), FieldType::Text, vec![]))
            .collect();
        let p = compile("Long", None, &many, &[]);
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["general", "general-2", "general-3"]);
        assert_eq!(p.steps[2].fields.len(), 3);
    }
}
