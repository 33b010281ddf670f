//! The `llm-adapter` component: [`crate::body`] sent with
//! `wasi-http-client`, [`crate::read`] on the answer.

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
});

use evistream::plugin::llm_types::{
    Completion, CompletionRequest, FinishReason, LlmError, Role, Usage,
};
use evistream::plugin::types::ConfigEntry;
use exports::evistream::plugin::adapter::Guest;

struct OpenAi;

fn failure(f: crate::Failure) -> LlmError {
    match f {
        crate::Failure::RateLimited(ms) => LlmError::RateLimited(ms),
        crate::Failure::Auth(m) => LlmError::Auth(m),
        crate::Failure::BadRequest(m) => LlmError::BadRequest(m),
        crate::Failure::Transient(m) => LlmError::Transient(m),
        crate::Failure::InvalidOutput(m) => LlmError::InvalidOutput(m),
    }
}

impl Guest for OpenAi {
    fn complete(
        config: Vec<ConfigEntry>,
        request: CompletionRequest,
    ) -> Result<Completion, LlmError> {
        let get = |k: &str| config.iter().find(|c| c.key == k).map(|c| c.value.clone());
        let base = get("baseUrl").unwrap_or_else(|| "https://api.openai.com/v1".into());
        let model =
            get("model").ok_or(LlmError::BadRequest("config `model` is required".into()))?;
        let req = crate::Request {
            model,
            messages: request
                .messages
                .into_iter()
                .map(|m| crate::Message {
                    role: match m.role {
                        Role::System => "system",
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                    content: m.content,
                })
                .collect(),
            json_schema: request.json_schema,
            schema_name: request.schema_name,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            json_mode: get("jsonMode").is_some_and(|v| v == "true"),
        };
        let body = crate::body(&req).map_err(failure)?.to_string();
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let r = wasi_http_client::send(
            "POST",
            &url,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            body.as_bytes(),
            32 << 20,
        )
        .map_err(|e| match e {
            wasi_http_client::Error::BadUrl(m) => LlmError::BadRequest(m),
            other => LlmError::Transient(other.to_string()),
        })?;
        let retry = llm_protocol::retry_after(r.header("retry-after-ms"), r.header("retry-after"));
        let a = crate::read(r.status, &r.body, retry).map_err(failure)?;
        Ok(Completion {
            text: a.text,
            usage: Usage {
                input_tokens: a.input_tokens,
                output_tokens: a.output_tokens,
            },
            finish_reason: match a.finish {
                crate::Finish::Stop => FinishReason::Stop,
                crate::Finish::Length => FinishReason::Length,
                crate::Finish::ContentFilter => FinishReason::ContentFilter,
                crate::Finish::Other => FinishReason::Other,
            },
            model: a.model,
        })
    }
}

export!(OpenAi);
