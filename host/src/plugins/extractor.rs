//! The face of a form extractor: what the extraction code calls, with
//! plugin-neutral types, and what the host lends an extractor for one call
//! (its `llm`, `progress` and `log` imports).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::PluginError;
use super::converter::PageRange;
use super::llm::{Completion, CompletionRequest, LlmFailure};

/// Where an extractor's `llm` calls go.
#[async_trait::async_trait]
pub trait LlmBackend: Send + Sync {
    /// One completion.
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, LlmFailure>;
}

/// Receives an extractor's progress reports (fraction 0..1, message).
pub type ProgressSink = Arc<dyn Fn(f32, String) + Send + Sync>;

/// What the host lends an extractor for one call.
#[derive(Clone, Default)]
pub struct ExtractorImports {
    /// The project's LLM, if any.
    pub llm: Option<Arc<dyn LlmBackend>>,
    /// Progress reports.
    pub progress: Option<ProgressSink>,
    /// `id@version` of the plugin, for its log lines.
    pub label: String,
}

/// How sure the extractor is that a value is in the paper (stored in
/// `extraction_values.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ValueStatus {
    /// Reported.
    #[sea_orm(string_value = "found")]
    Found,
    /// The paper does not say.
    #[sea_orm(string_value = "not_reported")]
    NotReported,
    /// Does not apply to this study.
    #[sea_orm(string_value = "not_applicable")]
    NotApplicable,
    /// Ambiguous.
    #[sea_orm(string_value = "unclear")]
    Unclear,
}

impl ValueStatus {
    /// The API's and exports' spelling (`FOUND`, `NOT_REPORTED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "FOUND",
            Self::NotReported => "NOT_REPORTED",
            Self::NotApplicable => "NOT_APPLICABLE",
            Self::Unclear => "UNCLEAR",
        }
    }
}

/// A quote the extractor offers as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceQuote {
    /// Verbatim (as the extractor claims).
    pub quote: String,
    /// The page it believes the quote is on.
    pub page: Option<u32>,
}

/// One extracted value, as the extractor returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedValue {
    /// `arms[0].name`.
    pub path: String,
    /// The typed value.
    pub value: serde_json::Value,
    /// Status.
    pub status: ValueStatus,
    /// Evidence quotes.
    pub evidence: Vec<EvidenceQuote>,
    /// 0..1.
    pub confidence: f32,
}

/// An extractor's result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Extraction {
    /// The values.
    pub values: Vec<ExtractedValue>,
    /// Reviewer-facing warnings.
    pub warnings: Vec<String>,
    /// Models used.
    pub models: Vec<String>,
}

/// Why an extraction failed: the extractor's own verdict, or the sandbox's
/// on the extractor.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The program is not one it understands.
    #[error("the extractor does not understand the program: {0}")]
    InvalidProgram(String),
    /// The LLM failed in a way retries did not fix.
    #[error("the LLM failed: {0}")]
    LlmFailed(String),
    /// The extractor reported a bug of its own.
    #[error("the extractor failed: {0}")]
    Failed(String),
    /// The plugin crashed, ran out of time or memory, or returned something unusable.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl ExtractError {
    /// Stable subkind for logs and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidProgram(_) => "INVALID_PROGRAM",
            Self::LlmFailed(_) => "LLM_FAILED",
            Self::Failed(_) => "FAILED",
            Self::Plugin(p) => p.kind(),
        }
    }
}

/// A converted document as an extractor reads it.
#[derive(Debug, Clone, Copy)]
pub struct SourceText<'a> {
    /// The markdown.
    pub text: &'a str,
    /// Page ranges into it.
    pub pages: &'a [PageRange],
}

/// A form extractor, bound to the limits its calls run under.
#[async_trait::async_trait]
pub trait FormExtractor: Send + Sync {
    /// sha256 of the component.
    fn sha256(&self) -> &str;

    /// Runs `program` (canonical JSON) over `source`, with `imports` lent
    /// for the call. Time in `llm` calls is not counted against the
    /// extractor's own deadline.
    async fn extract(
        &self,
        program: &str,
        source: SourceText<'_>,
        imports: ExtractorImports,
    ) -> Result<Extraction, ExtractError>;
}
