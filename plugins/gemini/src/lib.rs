//! The Gemini `generateContent` protocol, as plain functions: the request
//! body (structured output through `responseMimeType: application/json`
//! and `responseJsonSchema`) and the reading of responses and errors.

use serde_json::{Value, json};

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// System instruction (all system messages joined).
    pub system: String,
    /// `(role, text)`: `user` or `model`.
    pub contents: Vec<(&'static str, String)>,
    /// JSON Schema text.
    pub json_schema: Option<String>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
}

/// A completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Text.
    pub text: String,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Candidate tokens.
    pub output_tokens: u32,
    /// `stop`, `length`, `content_filter` or `other`.
    pub finish: &'static str,
    /// Model version.
    pub model: String,
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429 RESOURCE_EXHAUSTED.
    RateLimited(Option<u64>),
    /// 401/403.
    Auth(String),
    /// 400/404.
    BadRequest(String),
    /// 5xx.
    Transient(String),
    /// Unreadable or blocked.
    InvalidOutput(String),
}

/// The request body.
pub fn body(r: &Request) -> Result<Value, Failure> {
    let mut b = json!({
        "contents": r.contents.iter().map(|(role, text)| json!({ "role": role, "parts": [{ "text": text }] })).collect::<Vec<_>>(),
    });
    if !r.system.is_empty() {
        b["systemInstruction"] = json!({ "parts": [{ "text": r.system }] });
    }
    let mut generation = serde_json::Map::new();
    if let Some(t) = r.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    if let Some(m) = r.max_tokens {
        generation.insert("maxOutputTokens".into(), json!(m));
    }
    if let Some(s) = &r.json_schema {
        let schema: Value = serde_json::from_str(s)
            .map_err(|e| Failure::BadRequest(format!("the JSON Schema is not JSON: {e}")))?;
        generation.insert("responseMimeType".into(), json!("application/json"));
        generation.insert("responseJsonSchema".into(), schema);
    }
    if !generation.is_empty() {
        b["generationConfig"] = Value::Object(generation);
    }
    Ok(b)
}

fn error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
}

/// `"30s"` / `"1.5s"` from a RetryInfo detail, in ms.
fn retry_delay(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["error"]["details"].as_array()?.iter().find_map(|d| {
        d["retryDelay"]
            .as_str()
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as u64)
    })
}

/// Reads a response.
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    match status {
        200..=299 => {}
        429 => return Err(Failure::RateLimited(retry_ms.or_else(|| retry_delay(body)))),
        401 | 403 => return Err(Failure::Auth(error_message(body))),
        400 | 404 | 413 => return Err(Failure::BadRequest(error_message(body))),
        _ => {
            return Err(Failure::Transient(format!(
                "HTTP {status}: {}",
                error_message(body)
            )));
        }
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::InvalidOutput(format!("the response is not JSON: {e}")))?;
    if let Some(reason) = v["promptFeedback"]["blockReason"].as_str() {
        return Err(Failure::InvalidOutput(format!(
            "the prompt was blocked: {reason}"
        )));
    }
    let cand = &v["candidates"][0];
    let text: String = cand["content"]["parts"]
        .as_array()
        .ok_or_else(|| Failure::InvalidOutput("no candidates[0].content.parts".into()))?
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    let tokens = |k: &str| {
        v["usageMetadata"][k]
            .as_u64()
            .unwrap_or(0)
            .min(u64::from(u32::MAX)) as u32
    };
    Ok(Answer {
        text,
        input_tokens: tokens("promptTokenCount"),
        output_tokens: tokens("candidatesTokenCount"),
        finish: match cand["finishReason"].as_str() {
            Some("STOP") => "stop",
            Some("MAX_TOKENS") => "length",
            Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT") => "content_filter",
            _ => "other",
        },
        model: v["modelVersion"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_output_uses_the_json_schema_field() {
        let b = body(&Request {
            system: "sys".into(),
            contents: vec![("user", "hi".into())],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            temperature: Some(0.0),
            max_tokens: Some(10),
        })
        .unwrap();
        assert_eq!(
            b["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(
            b["generationConfig"]["responseJsonSchema"]["type"],
            "object"
        );
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "sys");
    }

    #[test]
    fn responses_and_errors() {
        let ok = br#"{"modelVersion":"gemini-x","candidates":[{"content":{"parts":[{"text":"{\"a\":1}"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2}}"#;
        let a = read(200, ok, None).unwrap();
        assert_eq!(
            (a.text.as_str(), a.input_tokens, a.finish),
            ("{\"a\":1}", 5, "stop")
        );
        let limited = br#"{"error":{"code":429,"message":"quota","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}"#;
        assert_eq!(
            read(429, limited, None),
            Err(Failure::RateLimited(Some(2000)))
        );
        assert!(matches!(
            read(403, br#"{"error":{"message":"API key not valid"}}"#, None),
            Err(Failure::Auth(_))
        ));
    }
}
