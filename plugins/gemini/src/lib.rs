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

pub use llm_protocol::{Answer, Failure, Finish};

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
        let schema = llm_protocol::schema(s)?;
        generation.insert("responseMimeType".into(), json!("application/json"));
        generation.insert("responseJsonSchema".into(), schema);
    }
    if !generation.is_empty() {
        b["generationConfig"] = Value::Object(generation);
    }
    Ok(b)
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
    // Gemini says when to retry in the body rather than a header.
    llm_protocol::check_status(status, body, retry_ms.or_else(|| retry_delay(body)))?;
    let v = llm_protocol::json_body(body)?;
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
    Ok(Answer {
        text,
        input_tokens: llm_protocol::tokens(&v["usageMetadata"]["promptTokenCount"]),
        output_tokens: llm_protocol::tokens(&v["usageMetadata"]["candidatesTokenCount"]),
        finish: match cand["finishReason"].as_str() {
            Some("STOP") => Finish::Stop,
            Some("MAX_TOKENS") => Finish::Length,
            Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT") => {
                Finish::ContentFilter
            }
            _ => Finish::Other,
        },
        model: v["modelVersion"].as_str().unwrap_or_default().to_owned(),
    })
}

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
            ("{\"a\":1}", 5, Finish::Stop)
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
