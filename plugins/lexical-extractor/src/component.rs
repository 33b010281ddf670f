//! The `form-extractor` component around [`crate::extract`], through the
//! SDK's bindings.

use evistream_plugin_sdk::extractor::{
    Evidence, ExtractError, Extraction, FieldValue, Guest, SourceDocument, ValueStatus, export,
    progress,
};

struct Lexical;

impl Guest for Lexical {
    fn extract(program: String, document: SourceDocument) -> Result<Extraction, ExtractError> {
        let pages: Vec<crate::Page> = document
            .pages
            .iter()
            .map(|p| crate::Page {
                number: p.number,
                start: p.start,
                end: p.end,
            })
            .collect();
        let out = crate::extract(&program, &document.text, &pages, |f, m| {
            progress::report(f, m)
        })
        .map_err(ExtractError::InvalidProgram)?;
        Ok(Extraction {
            values: out
                .values
                .into_iter()
                .map(|v| FieldValue {
                    path: v.path,
                    value_json: v.value.to_string(),
                    status: match v.status {
                        crate::Status::Found => ValueStatus::Found,
                        crate::Status::NotReported => ValueStatus::NotReported,
                        crate::Status::Unclear => ValueStatus::Unclear,
                    },
                    evidence: v
                        .evidence
                        .into_iter()
                        .map(|(quote, page)| Evidence { quote, page })
                        .collect(),
                    confidence: v.confidence,
                })
                .collect(),
            warnings: out.warnings,
            models: Vec::new(),
        })
    }
}

export!(Lexical);
