//! A local LLM provider for tests that speaks three wire protocols: OpenAI
//! Chat Completions (`POST /v1/chat/completions`, structured output in
//! `response_format`), Anthropic Messages (`POST /v1/messages`, a forced
//! tool call) and Gemini (`POST /v1beta/models/{model}:generateContent`,
//! `responseJsonSchema`), each with its own auth header. It answers from the
//! request's JSON Schema and the text it was sent: for every field the
//! schema asks (an object of `value`/`status`/`quote`/`confidence`), it
//! quotes the first line of the prompt that mentions the field's name and
//! reads a value of the schema's type from that line. Faults can be queued
//! (429 with Retry-After, 500, a slow answer, malformed JSON, JSON of the
//! wrong shape), and every request is recorded, with how many were being
//! answered at once. A test can also make every field quote a string of its
//! own ([`FakeLlm::set_quote_override`]), e.g. a model's overlong near-miss
//! quote.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// A fault to inject into the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>`.
    RateLimited(u64),
    /// 500.
    ServerError,
    /// Answers after this delay.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with content that is JSON but not of the schema's shape.
    WrongSchema,
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<Fault>,
    requests: Vec<(HeaderMap, Value)>,
    latency: Duration,
    in_flight: usize,
    max_in_flight: usize,
    quote: Option<String>,
}

/// A request being answered: counted in flight from arrival until its
/// response is ready (or the client goes away).
struct Flight(Arc<Mutex<Inner>>);

impl Flight {
    fn enter(inner: &Arc<Mutex<Inner>>) -> Self {
        let mut i = inner.lock().unwrap();
        i.in_flight += 1;
        i.max_in_flight = i.max_in_flight.max(i.in_flight);
        drop(i);
        Self(inner.clone())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let Ok(mut i) = self.0.lock() {
            i.in_flight -= 1;
        }
    }
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeLlm {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:<port>/v1` (OpenAI and Anthropic).
    pub base_url: String,
    /// `http://127.0.0.1:<port>/v1beta` (Gemini).
    pub gemini_url: String,
}

impl FakeLlm {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(anthropic))
            .route("/v1beta/models/{call}", post(gemini))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            inner,
            base_url: format!("http://127.0.0.1:{port}/v1"),
            gemini_url: format!("http://127.0.0.1:{port}/v1beta"),
        }
    }

    /// Queues a fault for the next request.
    pub fn fail_next(&self, f: Fault) {
        self.inner.lock().unwrap().faults.push_back(f);
    }

    /// A fixed latency for every answer.
    pub fn set_latency(&self, d: Duration) {
        self.inner.lock().unwrap().latency = d;
    }

    /// From now on, every field of every structured answer quotes `quote`
    /// (its value and status are still read from the prompt); `None` goes
    /// back to quoting lines of the prompt.
    pub fn set_quote_override(&self, quote: Option<String>) {
        self.inner.lock().unwrap().quote = quote;
    }

    /// Requests received so far.
    pub fn request_count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// The bodies and headers received.
    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().unwrap().in_flight
    }

    /// The most requests ever answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }
}

async fn chat(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let _flight = Flight::enter(&inner);
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": { "message": format!("invalid JSON: {e}") } })),
            )
                .into_response();
        }
    };
    let (fault, latency, quote) = {
        let mut i = inner.lock().unwrap();
        i.requests.push((headers.clone(), req.clone()));
        (i.faults.pop_front(), i.latency, i.quote.clone())
    };
    if headers.get("authorization").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": { "message": "missing API key" } })),
        )
            .into_response();
    }
    tokio::time::sleep(latency).await;
    match fault {
        Some(Fault::RateLimited(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                axum::Json(json!({ "error": { "message": "rate limited" } })),
            )
                .into_response();
        }
        Some(Fault::ServerError) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({ "error": { "message": "boom" } })),
            )
                .into_response();
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::MalformedJson) => return completion(&req, "{\"oops\": ".into()),
        Some(Fault::WrongSchema) => {
            return completion(&req, json!({ "unexpected": [1, 2, 3] }).to_string());
        }
        None => {}
    }
    let prompt: String = req["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let schema = &req["response_format"]["json_schema"]["schema"];
    let content = if schema.is_object() {
        quoting(answer(schema, &prompt), quote.as_deref()).to_string()
    } else {
        "OK".to_owned()
    };
    completion(&req, content)
}

fn completion(req: &Value, content: String) -> Response {
    let prompt_len: usize = req["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str())
                .map(str::len)
                .sum()
        })
        .unwrap_or(0);
    axum::Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": format!("{}-fake", req["model"].as_str().unwrap_or("model")),
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt_len / 4, "completion_tokens": content_len(&content) / 4 },
    }))
    .into_response()
}

fn content_len(s: &str) -> usize {
    s.len()
}

/// `answer` with the quote of every field (an object with `status` and
/// `quote`, at any depth) replaced by `quote`, when given.
fn quoting(mut answer: Value, quote: Option<&str>) -> Value {
    fn walk(v: &mut Value, quote: &str) {
        match v {
            Value::Object(o) if o.contains_key("status") && o.contains_key("quote") => {
                o.insert("quote".into(), quote.into());
            }
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, quote)),
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, quote)),
            _ => {}
        }
    }
    if let Some(q) = quote {
        walk(&mut answer, q);
    }
    answer
}

/// An answer of `schema`'s shape, from `prompt`.
fn answer(schema: &Value, prompt: &str) -> Value {
    let props = &schema["properties"];
    if let Some(items) = props
        .get("items")
        .filter(|_| props.as_object().is_some_and(|o| o.len() == 1))
    {
        // A list step: two items.
        let item = &items["items"];
        return json!({ "items": [answer(item, prompt), answer(item, prompt)] });
    }
    let mut out = serde_json::Map::new();
    if let Some(obj) = props.as_object() {
        for (name, field) in obj {
            out.insert(
                name.clone(),
                field_answer(name, &field["properties"]["value"], prompt),
            );
        }
    }
    Value::Object(out)
}

fn field_answer(name: &str, value_schema: &Value, prompt: &str) -> Value {
    let words: Vec<String> = name.split('_').map(str::to_lowercase).collect();
    let line = prompt
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 20 && !l.starts_with("- `") && !l.contains('`'))
        .find(|l| {
            let low = l.to_lowercase();
            words.iter().all(|w| low.contains(w.as_str()))
        });
    let Some(line) = line else {
        return json!({ "value": null, "status": "NOT_REPORTED", "quote": "", "confidence": 0.9 });
    };
    let types: Vec<&str> = match &value_schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let number = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|t| !t.is_empty() && t.chars().any(|c| c.is_ascii_digit()));
    let value = if let Some(opts) = value_schema["enum"].as_array() {
        opts.iter()
            .find(|o| {
                o.as_str()
                    .is_some_and(|s| line.to_lowercase().contains(&s.to_lowercase()))
            })
            .cloned()
            .unwrap_or(Value::Null)
    } else if types.contains(&"integer") {
        number
            .and_then(|n| n.split('.').next().and_then(|i| i.parse::<i64>().ok()))
            .map(Value::from)
            .unwrap_or(Value::Null)
    } else if types.contains(&"number") {
        number
            .and_then(|n| n.parse::<f64>().ok())
            .map(Value::from)
            .unwrap_or(Value::Null)
    } else if types.contains(&"boolean") {
        Value::Bool(true)
    } else if types.contains(&"array") {
        json!([])
    } else {
        Value::String(line.chars().take(120).collect())
    };
    let status = if value.is_null() { "UNCLEAR" } else { "FOUND" };
    json!({ "value": value, "status": status, "quote": line, "confidence": 0.9 })
}

/// Takes the next fault, records the request, checks `auth_header`, waits
/// the latency; `Err` is the response to send instead of an answer. `Ok`
/// holds the fault still to apply and the quote override.
async fn admit(
    inner: &Arc<Mutex<Inner>>,
    headers: &HeaderMap,
    req: &Value,
    auth_header: &str,
) -> Result<(Option<Fault>, Option<String>), Response> {
    let (fault, latency, quote) = {
        let mut i = inner.lock().unwrap();
        i.requests.push((headers.clone(), req.clone()));
        (i.faults.pop_front(), i.latency, i.quote.clone())
    };
    if headers.get(auth_header).is_none() {
        return Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": { "message": format!("missing {auth_header}") } })),
        )
            .into_response());
    }
    tokio::time::sleep(latency).await;
    match fault {
        Some(Fault::RateLimited(secs)) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            axum::Json(json!({ "error": { "message": "rate limited" } })),
        )
            .into_response()),
        Some(Fault::ServerError) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": { "message": "boom" } })),
        )
            .into_response()),
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            Ok((None, quote))
        }
        other => Ok((other, quote)),
    }
}

fn prompt_of(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join("\n")
}

/// The content a fault or the schema calls for (with `quote`, if given, as
/// every field's quote).
fn content_for(fault: Option<Fault>, schema: &Value, prompt: &str, quote: Option<&str>) -> Value {
    match fault {
        Some(Fault::WrongSchema) => json!({ "unexpected": [1, 2, 3] }),
        _ if schema.is_object() => quoting(answer(schema, prompt), quote),
        _ => Value::String("OK".into()),
    }
}

async fn anthropic(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let _flight = Flight::enter(&inner);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (fault, quote) = match admit(&inner, &headers, &req, "x-api-key").await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if req["max_tokens"].as_u64().is_none() || headers.get("anthropic-version").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "max_tokens and anthropic-version are required" } })),
        )
            .into_response();
    }
    let prompt = prompt_of(
        std::iter::once(req["system"].as_str().unwrap_or("").to_owned()).chain(
            req["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["content"].as_str().map(str::to_owned)),
        ),
    );
    let schema = &req["tools"][0]["input_schema"];
    let content = if matches!(fault, Some(Fault::MalformedJson)) {
        json!([{ "type": "text", "text": "{\"oops\": " }])
    } else {
        let c = content_for(fault, schema, &prompt, quote.as_deref());
        if schema.is_object() {
            json!([{ "type": "tool_use", "id": "toolu_1", "name": req["tool_choice"]["name"], "input": c }])
        } else {
            json!([{ "type": "text", "text": c.as_str().unwrap_or("OK") }])
        }
    };
    axum::Json(json!({
        "id": "msg_test", "type": "message", "role": "assistant",
        "model": format!("{}-fake", req["model"].as_str().unwrap_or("claude")),
        "content": content,
        "stop_reason": if schema.is_object() { "tool_use" } else { "end_turn" },
        "usage": { "input_tokens": prompt.len() / 4, "output_tokens": 10 },
    }))
    .into_response()
}

async fn gemini(
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::Path(call): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let _flight = Flight::enter(&inner);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (fault, quote) = match admit(&inner, &headers, &req, "x-goog-api-key").await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(model) = call.strip_suffix(":generateContent") else {
        return (StatusCode::NOT_FOUND, "unknown method").into_response();
    };
    let prompt = prompt_of(
        req["systemInstruction"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                req["contents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["parts"].as_array().into_iter().flatten()),
            )
            .filter_map(|p| p["text"].as_str().map(str::to_owned)),
    );
    let schema = &req["generationConfig"]["responseJsonSchema"];
    let text = if matches!(fault, Some(Fault::MalformedJson)) {
        "{\"oops\": ".to_owned()
    } else {
        match content_for(fault, schema, &prompt, quote.as_deref()) {
            Value::String(s) => s,
            v => v.to_string(),
        }
    };
    axum::Json(json!({
        "candidates": [{ "content": { "role": "model", "parts": [{ "text": text }] }, "finishReason": "STOP" }],
        "usageMetadata": { "promptTokenCount": prompt.len() / 4, "candidatesTokenCount": text.len() / 4 },
        "modelVersion": format!("{model}-fake"),
    }))
    .into_response()
}
