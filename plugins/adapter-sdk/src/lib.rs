//! What the first-party LLM adapter components share, so each adapter
//! holds only its provider's request and answer formats:
//! - the `llm-adapter` world's bindings, with `wasi:http` mapped onto
//!   `wasi-http-client`, and their `export!` macro
//!   (`adapter_sdk::export!(MyAdapter)`);
//! - [`post`]: the body sent over `wasi:http`, transport errors typed, the
//!   provider's answer read into a [`Completion`].
//!
//! Only built for `wasm32` (natively the adapters' pure parts are tested
//! without it).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../wit",
    world: "llm-adapter",
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasi_http_client::bindings::wasi::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasi_http_client::bindings::wasi::http::types,
        "wasi:io/error@0.2.12": wasi_http_client::bindings::wasi::io::error,
        "wasi:io/poll@0.2.12": wasi_http_client::bindings::wasi::io::poll,
        "wasi:io/streams@0.2.12": wasi_http_client::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasi_http_client::bindings::wasi::clocks::monotonic_clock,
    },
    pub_export_macro: true,
    default_bindings_module: "adapter_sdk",
});

pub use evistream::plugin::llm_types::{
    Completion, CompletionRequest, FinishReason, LlmError, Role, Usage,
};
pub use evistream::plugin::types::ConfigEntry;
pub use exports::evistream::plugin::adapter::Guest;

use llm_protocol::{Answer, Failure, Finish};

/// Largest provider answer read, in bytes.
const MAX_ANSWER: usize = 32 << 20;

/// A configuration value of the binding.
pub fn config_value<'a>(config: &'a [ConfigEntry], key: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|c| c.key == key)
        .map(|c| c.value.as_str())
}

/// A provider failure as the world's error.
pub fn failure(f: Failure) -> LlmError {
    match f {
        Failure::RateLimited(ms) => LlmError::RateLimited(ms),
        Failure::Auth(m) => LlmError::Auth(m),
        Failure::BadRequest(m) => LlmError::BadRequest(m),
        Failure::Transient(m) => LlmError::Transient(m),
        Failure::InvalidOutput(m) => LlmError::InvalidOutput(m),
    }
}

/// POSTs `body` to `url` with `headers` (credentials are added by the
/// host) and reads the answer with the provider's `read(status, body,
/// retry-after ms)`.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    read: impl FnOnce(u16, &[u8], Option<u64>) -> Result<Answer, Failure>,
) -> Result<Completion, LlmError> {
    let r =
        wasi_http_client::send("POST", url, headers, body.as_bytes(), MAX_ANSWER).map_err(|e| {
            match e {
                wasi_http_client::Error::BadUrl(m) => LlmError::BadRequest(m),
                other => LlmError::Transient(other.to_string()),
            }
        })?;
    let retry = llm_protocol::retry_after(r.header("retry-after-ms"), r.header("retry-after"));
    let a = read(r.status, &r.body, retry).map_err(failure)?;
    Ok(Completion {
        text: a.text,
        usage: Usage {
            input_tokens: a.input_tokens,
            output_tokens: a.output_tokens,
        },
        finish_reason: match a.finish {
            Finish::Stop => FinishReason::Stop,
            Finish::Length => FinishReason::Length,
            Finish::ContentFilter => FinishReason::ContentFilter,
            Finish::Other => FinishReason::Other,
        },
        model: a.model,
    })
}
