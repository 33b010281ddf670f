//! The `form-extractor` component around [`crate::extract`], with the
//! host's `llm` import as the [`crate::Llm`], through the SDK's bindings.

use evistream_plugin_sdk::extractor::{
    CompletionRequest, Evidence, ExtractError, Extraction, FieldValue, Guest, LlmError, Message,
    Role, SourceDocument, ValueStatus, export, llm, log, progress,
};

struct HostLlm;

impl crate::Llm for HostLlm {
    fn complete(&mut self, ask: &crate::Ask) -> Result<(String, String), String> {
        let req = CompletionRequest {
            messages: vec![
                Message {
                    role: Role::System,
                    content: ask.system.clone(),
                },
                Message {
                    role: Role::User,
                    content: ask.user.clone(),
                },
            ],
            json_schema: Some(ask.schema.clone()),
            schema_name: Some(ask.schema_name.clone()),
            temperature: Some(0.0),
            max_tokens: Some(4096),
        };
        match llm::complete(&req) {
            Ok(c) => Ok((c.text, c.model)),
            Err(e) => Err(match e {
                LlmError::RateLimited(ms) => format!("rate limited (retry after {ms:?} ms)"),
                LlmError::Auth(m) => format!("authentication: {m}"),
                LlmError::BadRequest(m) => format!("bad request: {m}"),
                LlmError::Transient(m) => format!("transient: {m}"),
                LlmError::InvalidOutput(m) => format!("invalid output: {m}"),
            }),
        }
    }
}

struct LlmExtractor;

impl Guest for LlmExtractor {
    fn extract(program: String, document: SourceDocument) -> Result<Extraction, ExtractError> {
        let out = crate::extract(&program, &document.text, &mut HostLlm, |f, m| {
            progress::report(f, m)
        })
        .map_err(|e| match e {
            crate::Error::InvalidProgram(m) => ExtractError::InvalidProgram(m),
            crate::Error::Llm(m) => ExtractError::LlmFailed(m),
        })?;
        log::log(
            log::Level::Info,
            &format!(
                "{} values; {} characters of the paper sent",
                out.values.len(),
                out.chars_sent
            ),
        );
        Ok(Extraction {
            values: out
                .values
                .into_iter()
                .map(|v| FieldValue {
                    path: v.path,
                    value_json: crate::value_json(&v.value),
                    status: match v.status {
                        crate::Status::Found => ValueStatus::Found,
                        crate::Status::NotReported => ValueStatus::NotReported,
                        crate::Status::NotApplicable => ValueStatus::NotApplicable,
                        crate::Status::Unclear => ValueStatus::Unclear,
                    },
                    evidence: v
                        .quote
                        .into_iter()
                        .map(|quote| Evidence { quote, page: None })
                        .collect(),
                    confidence: v.confidence,
                })
                .collect(),
            warnings: out.warnings,
            models: out.models,
        })
    }
}

export!(LlmExtractor);
