//! An eviStream `llm-adapter` (contract 0.1) for OpenAI-compatible chat
//! completions: `POST {baseUrl}/chat/completions` with the conversation,
//! structured output as `response_format` `json_schema` when the request
//! carries a schema. The host adds the `apiKey` secret as the manifest
//! declares; this code never sees it.
//!
//! [`body`] and [`read`] are plain Rust, tested natively (`cargo test`);
//! the component is the [`Guest`] implementation and `export!` at the end,
//! which sends the body with the SDK's `post` (over `wasi:http`, so only in
//! the component: natively it panics).

use evistream_plugin_sdk::llm_adapter::json::{Value, json};
use evistream_plugin_sdk::llm_adapter::protocol::{self, Answer, Failure, Finish};
use evistream_plugin_sdk::llm_adapter::{
    Completion, CompletionRequest, ConfigEntry, Guest, LlmError, Role, config_value, export,
    failure, post,
};

/// The request body for `model` (left out when unset: some servers serve
/// one model and need no name).
pub fn body(model: Option<&str>, request: &CompletionRequest) -> Result<Value, Failure> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": m.content })
        })
        .collect();
    let mut b = json!({ "messages": messages });
    if let Some(m) = model {
        b["model"] = json!(m);
    }
    if let Some(t) = request.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(n) = request.max_tokens {
        b["max_tokens"] = json!(n);
    }
    if let Some(s) = &request.json_schema {
        // OpenAI wants a name of [a-zA-Z0-9_-], at most 64 characters.
        let name: String = request
            .schema_name
            .as_deref()
            .unwrap_or("answer")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        b["response_format"] = json!({
            "type": "json_schema",
            "json_schema": { "name": name, "schema": protocol::schema(s)?, "strict": true },
        });
    }
    Ok(b)
}

/// Reads the provider's answer: its status (429 → rate-limited with the
/// Retry-After delay, 401/403 → auth, 5xx → transient; see
/// `protocol::check_status`), then the first choice of a JSON body.
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    protocol::check_status(status, body, retry_ms)?;
    let v = protocol::json_body(body)?;
    let choice = &v["choices"][0];
    let text = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| Failure::InvalidOutput("no choices[0].message.content".into()))?;
    Ok(Answer {
        text: text.to_owned(),
        input_tokens: protocol::tokens(&v["usage"]["prompt_tokens"]),
        output_tokens: protocol::tokens(&v["usage"]["completion_tokens"]),
        finish: match choice["finish_reason"].as_str() {
            Some("stop") => Finish::Stop,
            Some("length") => Finish::Length,
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::Other,
        },
        model: v["model"].as_str().unwrap_or_default().to_owned(),
    })
}

struct Adapter;

impl Guest for Adapter {
    fn complete(
        config: Vec<ConfigEntry>,
        request: CompletionRequest,
    ) -> Result<Completion, LlmError> {
        let base = config_value(&config, "baseUrl")
            .ok_or_else(|| LlmError::BadRequest("config `baseUrl` is required".into()))?;
        let body = body(config_value(&config, "model"), &request)
            .map_err(failure)?
            .to_string();
        post(
            &format!("{}/chat/completions", base.trim_end_matches('/')),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            &body,
            read,
        )
    }
}

export!(Adapter);

#[cfg(test)]
mod tests {
    use super::*;
    use evistream_plugin_sdk::llm_adapter::Message;

    #[test]
    fn the_body_carries_the_conversation_and_the_schema() {
        let request = CompletionRequest {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Be brief.".into(),
                },
                Message {
                    role: Role::User,
                    content: "hi".into(),
                },
            ],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            schema_name: Some("step general".into()),
            temperature: Some(0.0),
            max_tokens: Some(100),
        };
        let b = body(Some("m-1"), &request).expect("a valid schema");
        assert_eq!(b["model"], "m-1");
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(b["response_format"]["json_schema"]["name"], "step_general");
        assert_eq!(
            b["response_format"]["json_schema"]["schema"],
            json!({"type": "object"})
        );
        assert_eq!(b["max_tokens"], 100);
        assert!(body(None, &request).expect("valid").get("model").is_none());
        let bad = CompletionRequest {
            json_schema: Some("{not json".into()),
            ..request
        };
        assert!(matches!(body(None, &bad), Err(Failure::BadRequest(_))));
    }

    #[test]
    fn statuses_and_bodies_map_to_the_contract_errors() {
        let ok = br#"{"model":"m-1","choices":[{"message":{"content":"{}"},"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;
        let a = read(200, ok, None).expect("an answer");
        assert_eq!(
            (a.text.as_str(), a.input_tokens, a.output_tokens, a.finish),
            ("{}", 10, 2, Finish::Length)
        );
        assert!(matches!(
            failure(read(429, b"", Some(1500)).unwrap_err()),
            LlmError::RateLimited(Some(1500))
        ));
        assert!(matches!(
            failure(read(401, br#"{"error":{"message":"bad key"}}"#, None).unwrap_err()),
            LlmError::Auth(m) if m == "bad key"
        ));
        assert!(matches!(read(403, b"", None), Err(Failure::Auth(_))));
        assert!(matches!(
            read(503, b"down", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            read(200, b"{not json", None),
            Err(Failure::InvalidOutput(_))
        ));
        assert!(matches!(
            read(200, b"{}", None),
            Err(Failure::InvalidOutput(_))
        ));
    }

    #[test]
    fn a_binding_without_base_url_is_a_bad_request() {
        let request = CompletionRequest {
            messages: Vec::new(),
            json_schema: None,
            schema_name: None,
            temperature: None,
            max_tokens: None,
        };
        let r = <Adapter as Guest>::complete(Vec::new(), request);
        assert!(matches!(r, Err(LlmError::BadRequest(_))));
    }
}
