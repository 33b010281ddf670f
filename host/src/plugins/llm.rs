//! The face of an LLM adapter: what the llm code calls, with
//! provider-neutral types, and the adapter's two ways to fail (the
//! provider's verdict, or the sandbox's on the adapter).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PluginError;
use super::policy::OutboundPolicy;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The question.
    User,
    /// An earlier answer.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// A provider-neutral completion request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// JSON Schema (JSON text) the answer must validate against.
    pub json_schema: Option<String>,
    /// Name of the schema.
    pub schema_name: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
}

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinishReason {
    /// Natural end.
    Stop,
    /// Hit the token cap.
    Length,
    /// Filtered by the provider.
    ContentFilter,
    /// Anything else.
    Other,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The text (JSON text for structured output).
    pub text: String,
    /// Tokens sent.
    pub input_tokens: u32,
    /// Tokens received.
    pub output_tokens: u32,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Model that answered.
    pub model: String,
}

/// The adapter's own verdict on a failed completion (not a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum LlmFailure {
    /// Slow down; retry after this many milliseconds when known.
    #[error("the provider is rate limiting (retry after {0:?} ms)")]
    RateLimited(Option<u64>),
    /// Credentials missing or refused.
    #[error("the provider refused the credentials: {0}")]
    Auth(String),
    /// The provider rejected the request.
    #[error("the provider rejected the request: {0}")]
    BadRequest(String),
    /// Temporary failure.
    #[error("temporary provider failure: {0}")]
    Transient(String),
    /// Unreadable answer.
    #[error("the provider's answer could not be read: {0}")]
    InvalidOutput(String),
}

impl LlmFailure {
    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Transient(_))
    }

    /// Stable subkind for `extensions.reason`, logs and accounting.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "LLM_RATE_LIMITED",
            Self::Auth(_) => "LLM_AUTH",
            Self::BadRequest(_) => "LLM_BAD_REQUEST",
            Self::Transient(_) => "LLM_TRANSIENT",
            Self::InvalidOutput(_) => "LLM_INVALID_OUTPUT",
        }
    }
}

/// What the host measured of one adapter call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStats {
    /// Outbound requests made.
    pub requests: u32,
    /// Time spent waiting on the network.
    pub network: Duration,
}

/// Why a completion failed: the provider's verdict (as the adapter read
/// it), or the sandbox's on the adapter.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The provider refused or failed the request.
    #[error("LLM provider error: {0}")]
    Provider(LlmFailure),
    /// The plugin crashed, ran out of time or memory, was denied the
    /// network, or returned something unusable.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl LlmError {
    /// Stable subkind for `extensions.reason`, logs and accounting.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Provider(f) => f.kind(),
            Self::Plugin(p) => p.kind(),
        }
    }
}

/// An LLM adapter, bound to the limits its calls run under.
#[async_trait::async_trait]
pub trait LlmAdapter: Send + Sync {
    /// sha256 of the component.
    fn sha256(&self) -> &str;

    /// Sends `request` with the binding's `config`; `policy` decides its
    /// network. Returns what the host measured as well.
    async fn complete(
        &self,
        config: Vec<(String, String)>,
        request: &CompletionRequest,
        policy: OutboundPolicy,
    ) -> (Result<Completion, LlmError>, CallStats);
}
