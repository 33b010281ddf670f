//! An eviStream `form-extractor` (contract 0.1) without an LLM: for each
//! field of the program, the first sentence of the document that holds
//! every word of the field's name (`double_blind` → "double", "blind") is
//! quoted as evidence; a text field takes that sentence as its value. Any
//! other field is not reported.
//!
//! [`extract`] is plain Rust, tested natively (`cargo test`); the component
//! is the [`Guest`] implementation and `export!` at the end. The host's
//! imports (`llm::complete`, `progress::report`, `log::log` in
//! `evistream_plugin_sdk::extractor`) are there for a real extractor; on
//! the native target they panic when called, so keep them out of what the
//! tests run.

use evistream_plugin_sdk::extractor::{
    Evidence, ExtractError, Extraction, FieldValue, Guest, PageRange, SourceDocument, ValueStatus,
    export, json, program,
};

/// Confidence of a quoted value: a name in a sentence is weak evidence.
const QUOTED: f32 = 0.3;
/// Confidence that an unquoted field is really absent.
const ABSENT: f32 = 0.2;

/// Runs `program` (the host's canonical JSON) over a converted document.
pub fn extract(program: &str, document: &SourceDocument) -> Result<Extraction, ExtractError> {
    let program = program::parse(program).map_err(ExtractError::InvalidProgram)?;
    let sentences = sentences(&document.text);
    let mut values = Vec::new();
    let mut warnings = Vec::new();
    for step in &program.steps {
        if step.for_each.is_some() {
            // Runs once per list item: items are not enumerated here.
            continue;
        }
        if step.kind == program::StepKind::List {
            let list = step.path.trim_end_matches("[]");
            values.push(FieldValue::not_reported(list, ABSENT));
            warnings.push(format!("`{list}`: list items are not extracted"));
            continue;
        }
        for f in &step.fields {
            let path = if f.path.is_empty() { &f.name } else { &f.path };
            let name = words(&f.name);
            let hit = sentences.iter().find(|s| {
                let have = words(s.text);
                !name.is_empty() && name.iter().all(|w| have.contains(w))
            });
            values.push(match hit {
                None => FieldValue::not_reported(path.as_str(), ABSENT),
                Some(s) => {
                    let quote = match page_of(&document.pages, s.start) {
                        Some(p) => Evidence::on_page(s.text, p),
                        None => Evidence::quote(s.text),
                    };
                    if f.field_type == "TEXT" {
                        FieldValue::found(path.as_str(), &json::json!(s.text), [quote], QUOTED)
                    } else {
                        // A number, date or option is not read from the
                        // sentence: say where it may be, with no value
                        // (`null` keeps the field's JSON type honest).
                        FieldValue {
                            status: ValueStatus::Unclear,
                            evidence: vec![quote],
                            ..FieldValue::not_reported(path.as_str(), QUOTED)
                        }
                    }
                }
            });
        }
    }
    Ok(Extraction {
        values,
        warnings,
        models: Vec::new(),
    })
}

/// A sentence of the text and where it starts, in code points (the unit
/// of the document's page ranges).
struct Sentence<'a> {
    start: u32,
    text: &'a str,
}

/// The text's sentences, trimmed and verbatim: split at line breaks and
/// after `.`, `!` or `?` followed by a space.
fn sentences(text: &str) -> Vec<Sentence<'_>> {
    let mut out = Vec::new();
    let mut push = |from: usize, to: usize| {
        let s = &text[from..to];
        let lead = s.len() - s.trim_start().len();
        let t = s.trim();
        if !t.is_empty() {
            let start = text[..from + lead].chars().count() as u32;
            out.push(Sentence { start, text: t });
        }
    };
    let mut from = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' if next.is_none_or(char::is_whitespace) => Some(i + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            push(from, end);
            from = end;
        }
    }
    push(from, text.len());
    out
}

/// Lower-case words of `s` (letters and digits).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The page a code point offset lies on.
fn page_of(pages: &[PageRange], at: u32) -> Option<u32> {
    pages
        .iter()
        .find(|p| p.start <= at && at < p.end)
        .map(|p| p.number)
}

struct Extractor;

impl Guest for Extractor {
    fn extract(program: String, document: SourceDocument) -> Result<Extraction, ExtractError> {
        extract(&program, &document)
    }
}

export!(Extractor);

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: &str = r#"{"format": 1, "steps": [
        {"id": "general", "kind": "fields", "path": "", "fields": [
            {"path": "trial_design", "name": "trial_design", "type": "TEXT"},
            {"path": "participants", "name": "participants", "type": "INTEGER"},
            {"path": "funding", "name": "funding", "type": "TEXT"}
        ]},
        {"id": "arms", "kind": "list", "path": "arms[]", "fields": [
            {"path": "arms[].name", "name": "name", "type": "TEXT"}
        ]},
        {"id": "arms.outcomes", "kind": "list", "path": "arms[].outcomes[]",
         "for_each": "arms[]", "fields": [
            {"path": "arms[].outcomes[].name", "name": "name", "type": "TEXT"}
        ]}
    ]}"#;

    /// Page 1 is the first line, page 2 the rest.
    fn document(text: &str) -> SourceDocument {
        let n = text.chars().count() as u32;
        let half = text
            .find('\n')
            .map_or(n, |i| text[..=i].chars().count() as u32);
        SourceDocument {
            text: text.into(),
            pages: vec![
                PageRange {
                    number: 1,
                    start: 0,
                    end: half,
                },
                PageRange {
                    number: 2,
                    start: half,
                    end: n,
                },
            ],
        }
    }

    #[test]
    fn fields_named_in_a_sentence_are_quoted() {
        let text = "Méthodes. We enrolled 240 participants in two arms.\n\
                    The trial design was a parallel-group, double-blind trial.";
        let out = extract(PROGRAM, &document(text)).expect("a valid program");
        let paths: Vec<&str> = out.values.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["trial_design", "participants", "funding", "arms"]);
        let design = &out.values[0];
        let sentence = "The trial design was a parallel-group, double-blind trial.";
        assert!(matches!(design.status, ValueStatus::Found));
        assert_eq!(design.value_json, json::json!(sentence).to_string());
        assert_eq!(design.evidence[0].quote, sentence);
        assert_eq!(design.evidence[0].page, Some(2));
        let n = &out.values[1];
        assert!(matches!(n.status, ValueStatus::Unclear));
        assert_eq!(n.value_json, "null", "no integer was read");
        assert_eq!(
            n.evidence[0].quote,
            "We enrolled 240 participants in two arms."
        );
        assert_eq!(n.evidence[0].page, Some(1));
        for v in &out.values[2..] {
            assert!(matches!(v.status, ValueStatus::NotReported));
            assert_eq!(v.value_json, "null");
        }
        assert_eq!(out.warnings.len(), 1, "the list is not enumerated");
    }

    #[test]
    fn an_empty_document_reports_nothing_and_bad_programs_are_refused() {
        let out = <Extractor as Guest>::extract(PROGRAM.into(), document("")).expect("runs");
        assert!(
            out.values
                .iter()
                .all(|v| matches!(v.status, ValueStatus::NotReported))
        );
        let bad = extract(r#"{"format": 99, "steps": []}"#, &document(""));
        assert!(matches!(bad, Err(ExtractError::InvalidProgram(_))));
    }
}
