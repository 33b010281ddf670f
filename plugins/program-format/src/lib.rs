//! The extraction program's format, declared once: the host compiles a form
//! version into a [`Program`] (canonical JSON, addressed by its sha256) and
//! every form extractor reads it with [`parse`]. A change a reader cannot
//! ignore raises [`FORMAT`]; readers refuse a format they do not know.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the program format.
pub const FORMAT: u32 = 1;

/// The statuses a value can have, as programs and extractors spell them.
pub const STATUSES: [&str; 4] = ["FOUND", "NOT_REPORTED", "NOT_APPLICABLE", "UNCLEAR"];

/// A compiled form version. The host writes every field; a reader
/// needs only `format`, the steps' `id`, `kind` and `fields`, and the
/// fields' `name` (the rest defaults, as a reader that ignores them would).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Format version ([`FORMAT`]).
    pub format: u32,
    /// Form name.
    #[serde(default)]
    pub form: String,
    /// Form description.
    #[serde(default)]
    pub description: Option<String>,
    /// Instructions common to every step.
    #[serde(default)]
    pub instructions: String,
    /// Reviewer feedback this version was generated with.
    #[serde(default)]
    pub feedback: Vec<String>,
    /// Steps, in an order that respects `depends_on`.
    pub steps: Vec<Step>,
}

/// One step: fields asked together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable id (`general`, `arms`, `arms.outcomes`).
    pub id: String,
    /// `fields` (one answer) or `list` (a list of items).
    pub kind: StepKind,
    /// Path of the container the step fills (`""`, `arms[]`, `arms[].outcomes[]`).
    #[serde(default)]
    pub path: String,
    /// Run once per item of this list path (`arms[]`), when set.
    #[serde(default)]
    pub for_each: Option<String>,
    /// Steps that must run first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The fields asked, with their full paths.
    pub fields: Vec<StepField>,
    /// What to ask.
    #[serde(default)]
    pub instructions: String,
    /// Terms for finding the relevant passages of a long document.
    #[serde(default)]
    pub query: String,
    /// JSON Schema of the step's answer.
    #[serde(default)]
    pub json_schema: Value,
}

/// A step's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// One answer per field.
    Fields,
    /// A list of items, each with the fields.
    List,
}

/// A field as a step asks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepField {
    /// Full path with `[]` for list items (`arms[].name`).
    #[serde(default)]
    pub path: String,
    /// Name (the key in the answer).
    pub name: String,
    /// Type name: `TEXT`, `NUMBER`, `INTEGER`, `BOOLEAN`, `DATE`, `ENUM`.
    #[serde(rename = "type", default)]
    pub field_type: String,
    /// ENUM options.
    #[serde(default)]
    pub options: Vec<String>,
    /// ENUM with several values.
    #[serde(default)]
    pub multiple: bool,
    /// Unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Must be reported.
    #[serde(default)]
    pub required: bool,
}

/// Reads a program, refusing text that is not one and formats this reader
/// does not know.
pub fn parse(text: &str) -> Result<Program, String> {
    let program: Program =
        serde_json::from_str(text).map_err(|e| format!("not an extraction program: {e}"))?;
    if program.format != FORMAT {
        return Err(format!(
            "program format {} is not supported (this extractor reads format {FORMAT})",
            program.format
        ));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_round_trips_and_other_formats_are_refused() {
        let text = r#"{"format":1,"form":"f","instructions":"i","steps":[{"id":"general","kind":"fields","path":"","fields":[{"path":"n","name":"n","type":"INTEGER"}],"instructions":"ask","json_schema":{}}]}"#;
        let p = parse(text).expect("a format-1 program");
        assert_eq!(p.steps[0].kind, StepKind::Fields);
        assert_eq!(p.steps[0].fields[0].field_type, "INTEGER");
        assert_eq!(parse(&serde_json::to_string(&p).unwrap()).unwrap(), p);
        let future = text.replace("\"format\":1", "\"format\":2");
        assert!(
            parse(&future)
                .unwrap_err()
                .contains("format 2 is not supported")
        );
        assert!(
            parse("[]")
                .unwrap_err()
                .starts_with("not an extraction program")
        );
    }
}
