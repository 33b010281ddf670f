//! The `form-extractor` world: loading an extractor component and running
//! an extraction program over a document. The component's `llm` import is
//! routed to whatever [`LlmBackend`] the caller gives (the project's adapter
//! through the host's gateway, or none); `progress` and `log` reach the
//! caller and the host's log. Time spent in `llm` calls is not counted
//! against the extractor's deadline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::HasSelf;

use super::adapter::{
    Completion, CompletionRequest, FinishReason, LlmFailure, Message, Role as MsgRole,
};
use super::converter::PageRange;
use super::sandbox::{self, CallLimits, HostState};
use super::{PluginError, PluginRuntime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "form-extractor",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::evistream::plugin::extractor_types as wit;
use bindings::evistream::plugin::llm_types as wit_llm;

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

/// How sure the extractor is that a value is in the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueStatus {
    /// Reported.
    Found,
    /// The paper does not say.
    NotReported,
    /// Does not apply to this study.
    NotApplicable,
    /// Ambiguous.
    Unclear,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    /// The values.
    pub values: Vec<ExtractedValue>,
    /// Reviewer-facing warnings.
    pub warnings: Vec<String>,
    /// Models used.
    pub models: Vec<String>,
}

/// The extractor's own verdict on a failed run (not a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractFailure {
    /// The program is not one it understands.
    #[error("the extractor does not understand the program: {0}")]
    InvalidProgram(String),
    /// The LLM failed in a way retries did not fix.
    #[error("the LLM failed: {0}")]
    LlmFailed(String),
    /// Extractor bug.
    #[error("the extractor failed: {0}")]
    Internal(String),
}

/// A converted document as an extractor reads it.
#[derive(Debug, Clone, Copy)]
pub struct SourceText<'a> {
    /// The markdown.
    pub text: &'a str,
    /// Page ranges into it.
    pub pages: &'a [PageRange],
}

/// A loaded extractor, ready to instantiate per call.
pub struct Extractor {
    /// sha256 of the component.
    pub sha256: String,
    pre: bindings::FormExtractorPre<HostState>,
}

impl bindings::evistream::plugin::llm::Host for HostState {
    async fn complete(
        &mut self,
        request: wit_llm::CompletionRequest,
    ) -> Result<wit_llm::Completion, wit_llm::LlmError> {
        let Some(llm) = self.imports.llm.clone() else {
            return Err(wit_llm::LlmError::BadRequest(
                "no LLM adapter is bound to this project".into(),
            ));
        };
        let started = Instant::now();
        let result = llm.complete(from_wit_request(request)).await;
        // The host's time, not the plugin's.
        self.network_clock()
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(c) => Ok(to_wit_completion(c)),
            Err(f) => Err(match f {
                LlmFailure::RateLimited(ms) => wit_llm::LlmError::RateLimited(ms),
                LlmFailure::Auth(m) => wit_llm::LlmError::Auth(m),
                LlmFailure::BadRequest(m) => wit_llm::LlmError::BadRequest(m),
                LlmFailure::Transient(m) => wit_llm::LlmError::Transient(m),
                LlmFailure::InvalidOutput(m) => wit_llm::LlmError::InvalidOutput(m),
            }),
        }
    }
}

impl bindings::evistream::plugin::llm_types::Host for HostState {}
impl bindings::evistream::plugin::types::Host for HostState {}
impl bindings::evistream::plugin::extractor_types::Host for HostState {}

impl bindings::evistream::plugin::progress::Host for HostState {
    async fn report(&mut self, fraction: f32, message: String) {
        if let Some(p) = &self.imports.progress {
            let f = if fraction.is_finite() {
                fraction.clamp(0.0, 1.0)
            } else {
                0.0
            };
            p(f, message.chars().take(500).collect());
        }
    }
}

impl bindings::evistream::plugin::log::Host for HostState {
    async fn log(&mut self, level: bindings::evistream::plugin::log::Level, message: String) {
        use bindings::evistream::plugin::log::Level;
        let message: String = message.chars().take(2000).collect();
        let plugin = self.imports.label.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl Extractor {
    /// Compiles (or loads from cache) and links an extractor component.
    pub async fn load(rt: &PluginRuntime, bytes: Arc<Vec<u8>>) -> Result<Self, PluginError> {
        let (instance_pre, sha256) = rt
            .link(
                bytes,
                |l| {
                    bindings::FormExtractor::add_to_linker::<HostState, HasSelf<HostState>>(
                        l,
                        |s| s,
                    )
                },
                super::link_error,
            )
            .await?;
        let pre = bindings::FormExtractorPre::new(instance_pre).map_err(|e| {
            PluginError::Incompatible(format!(
                "does not implement evistream:plugin/form-extractor@0.1.0: {e:#}"
            ))
        })?;
        Ok(Self { sha256, pre })
    }

    /// Runs `program` (canonical JSON) over a document's text in a fresh
    /// sandbox. `limits.timeout` bounds the extractor's own time; time in
    /// `llm` calls is added to it, up to `llm_budget` in total.
    pub async fn extract(
        &self,
        rt: &PluginRuntime,
        program: &str,
        source: SourceText<'_>,
        limits: CallLimits,
        llm_budget: Duration,
        imports: ExtractorImports,
    ) -> Result<Result<Extraction, ExtractFailure>, PluginError> {
        let pre = self.pre.clone();
        let engine = rt.engine;
        let backstop = limits.timeout + llm_budget + Duration::from_secs(2);
        let program = program.to_owned();
        let document = wit::SourceDocument {
            text: source.text.to_owned(),
            pages: source
                .pages
                .iter()
                .map(|p| bindings::evistream::plugin::types::PageRange {
                    number: p.number,
                    start: p.start,
                    end: p.end,
                })
                .collect(),
        };
        let call = async move {
            let mut store = sandbox::new_store(engine, &limits);
            store.data_mut().imports = imports;
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .evistream_plugin_extractor()
                    .call_extract(&mut store, &program, &document)
                    .await
            }
            .await;
            match result {
                Ok(Ok(x)) => Ok(Ok(check(x, &limits)?)),
                Ok(Err(e)) => Ok(Err(match e {
                    wit::ExtractError::InvalidProgram(m) => ExtractFailure::InvalidProgram(m),
                    wit::ExtractError::LlmFailed(m) => ExtractFailure::LlmFailed(m),
                    wit::ExtractError::Internal(m) => ExtractFailure::Internal(m),
                })),
                Err(e) => Err(sandbox::classify(e, store.data(), &limits)),
            }
        };
        rt.run_bounded(super::engine::Slot::TopLevel, call, backstop, &limits)
            .await
    }
}

/// The host's checks of an extraction: size, JSON values, confidences.
fn check(x: wit::Extraction, limits: &CallLimits) -> Result<Extraction, PluginError> {
    let size: usize = x
        .values
        .iter()
        .map(|v| {
            v.path.len()
                + v.value_json.len()
                + v.evidence.iter().map(|e| e.quote.len()).sum::<usize>()
        })
        .sum();
    if size as u64 > limits.max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "extraction of {size} bytes exceeds the limit of {} bytes",
            limits.max_output_bytes
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
        let confidence = if v.confidence.is_finite() {
            v.confidence.clamp(0.0, 1.0)
        } else {
            return Err(PluginError::InvalidOutput(format!(
                "confidence of `{}` is not a number",
                v.path
            )));
        };
        values.push(ExtractedValue {
            path: v.path,
            value,
            status: match v.status {
                wit::ValueStatus::Found => ValueStatus::Found,
                wit::ValueStatus::NotReported => ValueStatus::NotReported,
                wit::ValueStatus::NotApplicable => ValueStatus::NotApplicable,
                wit::ValueStatus::Unclear => ValueStatus::Unclear,
            },
            evidence: v
                .evidence
                .into_iter()
                .map(|e| EvidenceQuote {
                    quote: e.quote,
                    page: e.page,
                })
                .collect(),
            confidence,
        });
    }
    Ok(Extraction {
        values,
        warnings: x.warnings,
        models: x.models,
    })
}

fn from_wit_request(r: wit_llm::CompletionRequest) -> CompletionRequest {
    CompletionRequest {
        messages: r
            .messages
            .into_iter()
            .map(|m| Message {
                role: match m.role {
                    wit_llm::Role::System => MsgRole::System,
                    wit_llm::Role::User => MsgRole::User,
                    wit_llm::Role::Assistant => MsgRole::Assistant,
                },
                content: m.content,
            })
            .collect(),
        json_schema: r.json_schema,
        schema_name: r.schema_name,
        temperature: r.temperature,
        max_tokens: r.max_tokens,
    }
}

fn to_wit_completion(c: Completion) -> wit_llm::Completion {
    wit_llm::Completion {
        text: c.text,
        usage: wit_llm::Usage {
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
        },
        finish_reason: match c.finish_reason {
            FinishReason::Stop => wit_llm::FinishReason::Stop,
            FinishReason::Length => wit_llm::FinishReason::Length,
            FinishReason::ContentFilter => wit_llm::FinishReason::ContentFilter,
            FinishReason::Other => wit_llm::FinishReason::Other,
        },
        model: c.model,
    }
}
