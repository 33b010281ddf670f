//! The `llm-adapter` world of `evistream:plugin@0.1.0` (`wit/plugin.wit`):
//! a provider-neutral [`CompletionRequest`] sent in a provider's wire
//! protocol, over `wasi:http` only ([`http`]), to the hosts the manifest
//! requests and the project binding grants. Credentials are the host's:
//! it adds the binding's secrets to outgoing requests as the manifest's
//! `capabilities.secrets` declare; the adapter never sees them and may not
//! set credential headers itself.
//!
//! Implement [`Guest`] and call [`export!`](crate::llm_adapter::export)
//! once: `evistream_plugin_sdk::llm_adapter::export!(MyAdapter);`. A
//! manifest of `kind = "llm-adapter"` and `wit = "0.1.0"` goes beside the
//! component. An adapter is usually only its provider's request body and
//! answer reader, sent with [`post`]; [`protocol`] has the status mapping,
//! error messages and Retry-After parsing they share.
//!
//! [`http::send`] (and so [`post`]) compiles on the native target but
//! panics when called there: test the body and the reader natively.

pub mod http;

/// The world's bindings. Their component-type section (imports only) is
/// never linked: the `export!` macro writes the whole world into the
/// component, and [`http`] links the `wasi:http` part when it sends.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "llm-adapter",
        with: {
            "wasi:http/outgoing-handler@0.2.12": crate::llm_adapter::http::bindings::wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": crate::llm_adapter::http::bindings::wasi::http::types,
            "wasi:io/error@0.2.12": crate::llm_adapter::http::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::llm_adapter::http::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::llm_adapter::http::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::llm_adapter::http::bindings::wasi::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        default_bindings_module: "evistream_plugin_sdk::llm_adapter::bindings",
        // The `export!` below wraps it.
        export_macro_name: "__export",
        // Off, so that nothing links this section into a component of
        // another world (see `http::bindings::anchor`).
        disable_custom_section_link_helpers: true,
    });
}

pub use bindings::evistream::plugin::llm_types::{
    Completion, CompletionRequest, FinishReason, LlmError, Message, Role, Usage,
};
pub use bindings::evistream::plugin::types::ConfigEntry;
pub use bindings::exports::evistream::plugin::adapter::Guest;

/// What the first-party adapters share as plain Rust (`llm-protocol`): the
/// provider-neutral `Answer` and `Failure`, `check_status`,
/// `error_message`, `retry_after`, `json_body`, `tokens`, `schema`.
pub use llm_protocol as protocol;
/// JSON values (`serde_json`), as providers' bodies are written and read.
pub use serde_json as json;

use protocol::{Answer, Failure, Finish};

/// Largest provider answer [`post`] reads, in bytes.
pub const MAX_ANSWER: usize = 32 << 20;

/// A configuration value of the project binding (`None` when unset).
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

/// A provider-neutral answer as the world's completion.
pub fn completion(a: Answer) -> Completion {
    Completion {
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
    }
}

/// POSTs `body` to `url` with `headers` (credentials are added by the
/// host) and reads the answer with the provider's `read(status, body,
/// retry-after ms)`. A URL that is not `http(s)://host/…` is a bad
/// request; any other transport failure (refused by the host, network) is
/// transient.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    read: impl FnOnce(u16, &[u8], Option<u64>) -> Result<Answer, Failure>,
) -> Result<Completion, LlmError> {
    let r = http::send("POST", url, headers, body.as_bytes(), MAX_ANSWER).map_err(|e| match e {
        http::Error::BadUrl(m) => LlmError::BadRequest(m),
        other => LlmError::Transient(other.to_string()),
    })?;
    let retry = protocol::retry_after(r.header("retry-after-ms"), r.header("retry-after"));
    read(r.status, &r.body, retry)
        .map(completion)
        .map_err(failure)
}

/// Exports `$ty`, a type implementing [`Guest`], as the component's
/// `adapter` interface, once per component:
/// `evistream_plugin_sdk::llm_adapter::export!(MyType);`.
/// It expands to nothing on other targets than wasm32, so a `cdylib` of the
/// plugin still links natively and its tests call the `Guest`
/// implementation directly.
#[doc(inline)]
pub use crate::__evistream_export_llm_adapter as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __evistream_export_llm_adapter {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::llm_adapter::bindings::__export!($ty);
        // Natively nothing is exported; this keeps `$ty` and what its
        // impl calls from counting as dead code there.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::llm_adapter::Guest>::complete;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_answers_map_onto_the_world() {
        assert!(matches!(
            failure(Failure::RateLimited(Some(7))),
            LlmError::RateLimited(Some(7))
        ));
        assert!(matches!(failure(Failure::Auth("k".into())), LlmError::Auth(m) if m == "k"));
        let c = completion(Answer {
            text: "{}".into(),
            input_tokens: 3,
            output_tokens: 4,
            finish: Finish::Length,
            model: "m".into(),
        });
        assert_eq!(
            (c.text.as_str(), c.usage.input_tokens, c.usage.output_tokens),
            ("{}", 3, 4)
        );
        assert!(matches!(c.finish_reason, FinishReason::Length));
        let config = vec![ConfigEntry {
            key: "model".into(),
            value: "m".into(),
        }];
        assert_eq!(config_value(&config, "model"), Some("m"));
        assert_eq!(config_value(&config, "baseUrl"), None);
    }
}
