//! The OpenAI Chat Completions protocol, as plain functions: building the
//! request body and reading the response (and its errors) into the
//! provider-neutral types. `component.rs` sends it over `wasi:http`.

use serde_json::{Value, json};

/// A message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// Text.
    pub content: String,
}

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Model name.
    pub model: String,
    /// Conversation.
    pub messages: Vec<Message>,
    /// JSON Schema (text) for structured output.
    pub json_schema: Option<String>,
    /// Schema name.
    pub schema_name: Option<String>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
    /// `json_object` instead of `json_schema` (servers without schemas).
    pub json_mode: bool,
}

pub use llm_protocol::{Answer, Failure, Finish};

/// The request body.
pub fn body(r: &Request) -> Result<Value, Failure> {
    let mut b = json!({
        "model": r.model,
        "messages": r.messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect::<Vec<_>>(),
    });
    if let Some(t) = r.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(m) = r.max_tokens {
        b["max_tokens"] = json!(m);
    }
    if let Some(s) = &r.json_schema {
        let schema = llm_protocol::schema(s)?;
        b["response_format"] = if r.json_mode {
            json!({ "type": "json_object" })
        } else {
            json!({
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(r.schema_name.as_deref()),
                    "schema": schema,
                    "strict": true,
                },
            })
        };
    }
    Ok(b)
}

/// OpenAI wants `^[a-zA-Z0-9_-]{1,64}$`.
fn schema_name(n: Option<&str>) -> String {
    let s: String = n
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
    if s.is_empty() { "answer".into() } else { s }
}

/// Reads a response (status, body, retry hint in ms).
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    llm_protocol::check_status(status, body, retry_ms)?;
    let v = llm_protocol::json_body(body)?;
    let choice = &v["choices"][0];
    if let Some(refusal) = choice["message"]["refusal"].as_str() {
        return Err(Failure::InvalidOutput(format!(
            "the model refused: {refusal}"
        )));
    }
    let text = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| Failure::InvalidOutput("no choices[0].message.content".into()))?;
    Ok(Answer {
        text: text.to_owned(),
        input_tokens: llm_protocol::tokens(&v["usage"]["prompt_tokens"]),
        output_tokens: llm_protocol::tokens(&v["usage"]["completion_tokens"]),
        finish: match choice["finish_reason"].as_str() {
            Some("stop") => Finish::Stop,
            Some("length") => Finish::Length,
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::Other,
        },
        model: v["model"].as_str().unwrap_or_default().to_owned(),
    })
}

mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_output_request() {
        let b = body(&Request {
            model: "gpt-4o-mini".into(),
            messages: vec![Message {
                role: "user",
                content: "hi".into(),
            }],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            schema_name: Some("step general".into()),
            temperature: Some(0.0),
            max_tokens: Some(100),
            json_mode: false,
        })
        .unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "step_general");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(b["max_tokens"], 100);
    }

    #[test]
    fn responses_and_errors() {
        let ok = br#"{"model":"m","choices":[{"message":{"content":"{}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;
        let a = read(200, ok, None).unwrap();
        assert_eq!(
            (a.input_tokens, a.output_tokens, a.finish),
            (10, 2, Finish::Stop)
        );
        assert_eq!(
            read(429, b"", Some(1500)),
            Err(Failure::RateLimited(Some(1500)))
        );
        assert!(
            matches!(read(401, br#"{"error":{"message":"bad key"}}"#, None), Err(Failure::Auth(m)) if m == "bad key")
        );
        assert!(matches!(
            read(503, b"down", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            read(200, b"{not json", None),
            Err(Failure::InvalidOutput(_))
        ));
    }
}
