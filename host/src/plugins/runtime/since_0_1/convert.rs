//! Conversions between contract 0.1's types and the plugin faces' types,
//! each written once. The host's checks of plugin output live here too:
//! they are where untrusted values become host values.

use super::converter_world::evistream::plugin::converter_types as wconv;
use super::extractor_world::evistream::plugin::{
    extractor_types as wext, llm_types as wllm, types as wtypes,
};
use crate::plugins::PluginError;
use crate::plugins::converter::{ConvertedDocument, PageRange};
use crate::plugins::extractor::{
    EvidenceQuote, ExtractError, ExtractedValue, Extraction, ValueStatus,
};
use crate::plugins::llm::{Completion, CompletionRequest, FinishReason, LlmFailure, Message, Role};

impl From<(String, String)> for wtypes::ConfigEntry {
    fn from((key, value): (String, String)) -> Self {
        Self { key, value }
    }
}

impl From<&PageRange> for wtypes::PageRange {
    fn from(p: &PageRange) -> Self {
        Self {
            number: p.number,
            start: p.start,
            end: p.end,
        }
    }
}

impl From<&wtypes::PageRange> for PageRange {
    fn from(p: &wtypes::PageRange) -> Self {
        Self {
            number: p.number,
            start: p.start,
            end: p.end,
        }
    }
}

crate::plugins::runtime::convert_error_from!(wconv::ConvertError);

impl From<wconv::Document> for ConvertedDocument {
    fn from(doc: wconv::Document) -> Self {
        Self {
            pages: doc.pages.iter().map(PageRange::from).collect(),
            markdown: doc.markdown,
            title: doc.metadata.title,
            authors: doc.metadata.authors,
            page_count: doc.metadata.page_count,
            producer: doc.metadata.producer,
            warnings: doc.warnings,
            layout: None,
        }
    }
}

impl From<wext::ExtractError> for ExtractError {
    fn from(e: wext::ExtractError) -> Self {
        match e {
            wext::ExtractError::InvalidProgram(m) => Self::InvalidProgram(m),
            wext::ExtractError::LlmFailed(m) => Self::LlmFailed(m),
            wext::ExtractError::Internal(m) => Self::Failed(m),
        }
    }
}

impl From<wext::ValueStatus> for ValueStatus {
    fn from(s: wext::ValueStatus) -> Self {
        match s {
            wext::ValueStatus::Found => Self::Found,
            wext::ValueStatus::NotReported => Self::NotReported,
            wext::ValueStatus::NotApplicable => Self::NotApplicable,
            wext::ValueStatus::Unclear => Self::Unclear,
        }
    }
}

/// The host's checks of an extraction: size, JSON values, paths, confidences.
pub fn extraction(x: wext::Extraction, max_output_bytes: u64) -> Result<Extraction, PluginError> {
    let size: usize = x
        .values
        .iter()
        .map(|v| {
            v.path.len()
                + v.value_json.len()
                + v.evidence.iter().map(|e| e.quote.len()).sum::<usize>()
        })
        .sum();
    if size as u64 > max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "extraction of {size} bytes exceeds the limit of {max_output_bytes} bytes"
        )));
    }
    let mut values = Vec::with_capacity(x.values.len());
    for v in x.values {
        let value: serde_json::Value = serde_json::from_str(&v.value_json).map_err(|e| {
            PluginError::InvalidOutput(format!("value of `{}` is not JSON: {e}", v.path))
        })?;
        if v.path.is_empty() || v.path.len() > 500 {
            return Err(PluginError::InvalidOutput(
                "a value has an empty or overlong path".into(),
            ));
        }
        if !v.confidence.is_finite() {
            return Err(PluginError::InvalidOutput(format!(
                "confidence of `{}` is not a number",
                v.path
            )));
        }
        values.push(ExtractedValue {
            path: v.path,
            value,
            status: v.status.into(),
            evidence: v
                .evidence
                .into_iter()
                .map(|e| EvidenceQuote {
                    quote: e.quote,
                    page: e.page,
                })
                .collect(),
            confidence: v.confidence.clamp(0.0, 1.0),
        });
    }
    Ok(Extraction {
        values,
        warnings: x.warnings,
        models: x.models,
    })
}

impl From<wllm::Role> for Role {
    fn from(r: wllm::Role) -> Self {
        match r {
            wllm::Role::System => Self::System,
            wllm::Role::User => Self::User,
            wllm::Role::Assistant => Self::Assistant,
        }
    }
}

impl From<Role> for wllm::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::System => Self::System,
            Role::User => Self::User,
            Role::Assistant => Self::Assistant,
        }
    }
}

impl From<wllm::CompletionRequest> for CompletionRequest {
    fn from(r: wllm::CompletionRequest) -> Self {
        Self {
            messages: r
                .messages
                .into_iter()
                .map(|m| Message {
                    role: m.role.into(),
                    content: m.content,
                })
                .collect(),
            json_schema: r.json_schema,
            schema_name: r.schema_name,
            temperature: r.temperature,
            max_tokens: r.max_tokens,
        }
    }
}

impl From<&CompletionRequest> for wllm::CompletionRequest {
    fn from(r: &CompletionRequest) -> Self {
        Self {
            messages: r
                .messages
                .iter()
                .map(|m| wllm::Message {
                    role: m.role.into(),
                    content: m.content.clone(),
                })
                .collect(),
            json_schema: r.json_schema.clone(),
            schema_name: r.schema_name.clone(),
            temperature: r.temperature,
            max_tokens: r.max_tokens,
        }
    }
}

impl From<wllm::FinishReason> for FinishReason {
    fn from(f: wllm::FinishReason) -> Self {
        match f {
            wllm::FinishReason::Stop => Self::Stop,
            wllm::FinishReason::Length => Self::Length,
            wllm::FinishReason::ContentFilter => Self::ContentFilter,
            wllm::FinishReason::Other => Self::Other,
        }
    }
}

impl From<FinishReason> for wllm::FinishReason {
    fn from(f: FinishReason) -> Self {
        match f {
            FinishReason::Stop => Self::Stop,
            FinishReason::Length => Self::Length,
            FinishReason::ContentFilter => Self::ContentFilter,
            FinishReason::Other => Self::Other,
        }
    }
}

impl From<Completion> for wllm::Completion {
    fn from(c: Completion) -> Self {
        Self {
            text: c.text,
            usage: wllm::Usage {
                input_tokens: c.input_tokens,
                output_tokens: c.output_tokens,
            },
            finish_reason: c.finish_reason.into(),
            model: c.model,
        }
    }
}

/// The host's check of a completion: its size.
pub fn completion(c: wllm::Completion, max_output_bytes: u64) -> Result<Completion, PluginError> {
    if (c.text.len() + c.model.len()) as u64 > max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "completion of {} bytes exceeds the limit of {max_output_bytes} bytes",
            c.text.len(),
        )));
    }
    Ok(Completion {
        text: c.text,
        input_tokens: c.usage.input_tokens,
        output_tokens: c.usage.output_tokens,
        finish_reason: c.finish_reason.into(),
        model: c.model,
    })
}

impl From<wllm::LlmError> for LlmFailure {
    fn from(e: wllm::LlmError) -> Self {
        match e {
            wllm::LlmError::RateLimited(ms) => Self::RateLimited(ms),
            wllm::LlmError::Auth(m) => Self::Auth(m),
            wllm::LlmError::BadRequest(m) => Self::BadRequest(m),
            wllm::LlmError::Transient(m) => Self::Transient(m),
            wllm::LlmError::InvalidOutput(m) => Self::InvalidOutput(m),
        }
    }
}

impl From<LlmFailure> for wllm::LlmError {
    fn from(f: LlmFailure) -> Self {
        match f {
            LlmFailure::RateLimited(ms) => Self::RateLimited(ms),
            LlmFailure::Auth(m) => Self::Auth(m),
            LlmFailure::BadRequest(m) => Self::BadRequest(m),
            LlmFailure::Transient(m) => Self::Transient(m),
            LlmFailure::InvalidOutput(m) => Self::InvalidOutput(m),
        }
    }
}
