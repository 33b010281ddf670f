//! The Anthropic Messages protocol, as plain functions: the request body
//! (structured output as a forced tool call whose `input_schema` is the
//! JSON Schema) and the reading of responses and errors.

use serde_json::{Value, json};

/// Protocol version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// Output cap when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Name of the tool that carries structured output.
pub const TOOL: &str = "record_answer";

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Model.
    pub model: String,
    /// System prompt (all system messages joined).
    pub system: String,
    /// `(role, text)` of user/assistant messages.
    pub messages: Vec<(&'static str, String)>,
    /// JSON Schema text.
    pub json_schema: Option<String>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
}

pub use llm_protocol::{Answer, Failure, Finish};

/// The request body.
pub fn body(r: &Request) -> Result<Value, Failure> {
    let mut b = json!({
        "model": r.model,
        "max_tokens": r.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": r.messages.iter().map(|(role, text)| json!({ "role": role, "content": text })).collect::<Vec<_>>(),
    });
    if !r.system.is_empty() {
        b["system"] = json!(r.system);
    }
    if let Some(t) = r.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(s) = &r.json_schema {
        let schema = llm_protocol::schema(s)?;
        b["tools"] = json!([{
            "name": TOOL,
            "description": "Record the answer, exactly in this schema.",
            "input_schema": schema,
        }]);
        b["tool_choice"] = json!({ "type": "tool", "name": TOOL });
    }
    Ok(b)
}

/// Reads a response.
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    llm_protocol::check_status(status, body, retry_ms)?;
    let v = llm_protocol::json_body(body)?;
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| Failure::InvalidOutput("no content".into()))?;
    // The tool call carries structured output; else the text blocks.
    let text = match blocks.iter().find(|b| b["type"] == "tool_use") {
        Some(t) => t["input"].to_string(),
        None => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
    };
    Ok(Answer {
        text,
        input_tokens: llm_protocol::tokens(&v["usage"]["input_tokens"]),
        output_tokens: llm_protocol::tokens(&v["usage"]["output_tokens"]),
        finish: match v["stop_reason"].as_str() {
            Some("end_turn" | "tool_use" | "stop_sequence") => Finish::Stop,
            Some("max_tokens") => Finish::Length,
            Some("refusal") => Finish::ContentFilter,
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
    fn structured_output_is_a_forced_tool_call() {
        let b = body(&Request {
            model: "claude".into(),
            system: "sys".into(),
            messages: vec![("user", "hi".into())],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            temperature: None,
            max_tokens: None,
        })
        .unwrap();
        assert_eq!(b["tool_choice"]["name"], TOOL);
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["system"], "sys");
    }

    #[test]
    fn responses_and_errors() {
        let ok = br#"{"model":"claude-x","stop_reason":"tool_use","usage":{"input_tokens":7,"output_tokens":3},
            "content":[{"type":"tool_use","name":"record_answer","input":{"a":1}}]}"#;
        let a = read(200, ok, None).unwrap();
        assert_eq!(a.text, r#"{"a":1}"#);
        assert_eq!(
            (a.input_tokens, a.output_tokens, a.finish),
            (7, 3, Finish::Stop)
        );
        assert_eq!(
            read(429, b"", Some(1000)),
            Err(Failure::RateLimited(Some(1000)))
        );
        assert!(matches!(
            read(529, b"overloaded", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            read(401, br#"{"error":{"message":"invalid x-api-key"}}"#, None),
            Err(Failure::Auth(_))
        ));
    }
}
