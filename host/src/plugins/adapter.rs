//! The `llm-adapter` world: loading an adapter component and calling it
//! with outbound HTTP under an [`OutboundPolicy`].

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outbound::{OutboundHooks, OutboundPolicy};
use super::sandbox::{self, CallLimits, HostState};
use super::{PluginError, PluginRuntime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "llm-adapter",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

use bindings::evistream::plugin::llm_types as wit;
use bindings::evistream::plugin::types::ConfigEntry;

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
}

/// What the host measured of one adapter call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStats {
    /// Outbound requests made.
    pub requests: u32,
    /// Time spent waiting on the network.
    pub network: Duration,
}

/// A loaded adapter, ready to instantiate per call.
pub struct Adapter {
    /// sha256 of the component.
    pub sha256: String,
    pre: bindings::LlmAdapterPre<HostState>,
}

impl Adapter {
    /// Compiles (or loads from cache) and links an adapter component.
    pub async fn load(rt: &PluginRuntime, bytes: Arc<Vec<u8>>) -> Result<Self, PluginError> {
        // wasi:http is this world's own import: a link failure that names it
        // is an incompatibility, not a capability the adapter may not have.
        let (instance_pre, sha256) = rt
            .link(
                bytes,
                wasmtime_wasi_http::p2::add_only_http_to_linker_async,
                |e| PluginError::Incompatible(format!("{e:#}")),
            )
            .await?;
        let pre = bindings::LlmAdapterPre::new(instance_pre).map_err(|e| {
            PluginError::Incompatible(format!(
                "does not implement evistream:plugin/llm-adapter@0.1.0: {e:#}"
            ))
        })?;
        Ok(Self { sha256, pre })
    }

    /// Sends `request` through the adapter in a fresh sandbox. `limits`
    /// bound the adapter's own time and memory; `policy` its network.
    pub async fn complete(
        &self,
        rt: &PluginRuntime,
        config: Vec<(String, String)>,
        request: &CompletionRequest,
        limits: CallLimits,
        policy: OutboundPolicy,
    ) -> (
        Result<Result<Completion, LlmFailure>, PluginError>,
        CallStats,
    ) {
        let pre = self.pre.clone();
        let engine = rt.engine;
        let backstop = limits.timeout
            + policy.request_timeout * policy.max_requests.max(1)
            + Duration::from_secs(2);
        let hooks = OutboundHooks::new(policy);
        let watch = hooks.clone();
        let request = to_wit(request);
        let call = async move {
            let mut store = sandbox::new_store_with(engine, &limits, hooks);
            let config: Vec<ConfigEntry> = config
                .into_iter()
                .map(|(key, value)| ConfigEntry { key, value })
                .collect();
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .evistream_plugin_adapter()
                    .call_complete(&mut store, &config, &request)
                    .await
            }
            .await;
            if let Some(why) = store.data().outbound.denied() {
                return Err(PluginError::CapabilityDenied(why));
            }
            match result {
                Ok(Ok(c)) => Ok(Ok(from_wit(c, &limits)?)),
                Ok(Err(e)) => Ok(Err(match e {
                    wit::LlmError::RateLimited(ms) => LlmFailure::RateLimited(ms),
                    wit::LlmError::Auth(m) => LlmFailure::Auth(m),
                    wit::LlmError::BadRequest(m) => LlmFailure::BadRequest(m),
                    wit::LlmError::Transient(m) => LlmFailure::Transient(m),
                    wit::LlmError::InvalidOutput(m) => LlmFailure::InvalidOutput(m),
                })),
                Err(e) => Err(sandbox::classify(e, store.data(), &limits)),
            }
        };
        let result = rt
            .run_bounded(super::engine::Slot::Adapter, call, backstop, &limits)
            .await;
        let stats = CallStats {
            requests: watch.requests(),
            network: watch.waited(),
        };
        (result, stats)
    }
}

fn to_wit(r: &CompletionRequest) -> wit::CompletionRequest {
    wit::CompletionRequest {
        messages: r
            .messages
            .iter()
            .map(|m| wit::Message {
                role: match m.role {
                    Role::System => wit::Role::System,
                    Role::User => wit::Role::User,
                    Role::Assistant => wit::Role::Assistant,
                },
                content: m.content.clone(),
            })
            .collect(),
        json_schema: r.json_schema.clone(),
        schema_name: r.schema_name.clone(),
        temperature: r.temperature,
        max_tokens: r.max_tokens,
    }
}

fn from_wit(c: wit::Completion, limits: &CallLimits) -> Result<Completion, PluginError> {
    if (c.text.len() + c.model.len()) as u64 > limits.max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "completion of {} bytes exceeds the limit of {} bytes",
            c.text.len(),
            limits.max_output_bytes
        )));
    }
    Ok(Completion {
        text: c.text,
        input_tokens: c.usage.input_tokens,
        output_tokens: c.usage.output_tokens,
        finish_reason: match c.finish_reason {
            wit::FinishReason::Stop => FinishReason::Stop,
            wit::FinishReason::Length => FinishReason::Length,
            wit::FinishReason::ContentFilter => FinishReason::ContentFilter,
            wit::FinishReason::Other => FinishReason::Other,
        },
        model: c.model,
    })
}
