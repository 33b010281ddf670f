//! An LLM adapter's behaviour, against a fake provider the check starts on
//! loopback: each status a provider answers with maps to its failure (429
//! with Retry-After to rate-limited with that delay, 401 to auth, 5xx to
//! transient, an unreadable body to a typed error), the declared secret
//! reaches the provider only in its header, and a host outside the
//! allow-list is refused by the host. The adapter is pointed at the fake
//! with its `baseUrl` configuration key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Report, Verdict, plugin_reason};
use crate::plugins::PluginHost;
use crate::plugins::error::PluginError;
use crate::plugins::llm::{CompletionRequest, LlmAdapter, LlmError, LlmFailure, Message, Role};
use crate::plugins::manifest::Manifest;

/// The delay the fake's 429 asks for, in seconds.
const RETRY_AFTER_SECS: u64 = 7;

/// The provider answers the check puts the adapter through, by the first
/// segment of the path (`baseUrl` = `http://127.0.0.1:<port>/<scenario>`).
const SCENARIOS: [&str; 4] = ["rate-limited", "auth", "transient", "malformed"];

/// A request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    scenario: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The fake provider: a real HTTP server on loopback.
struct Fake {
    port: u16,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let log: Log = Arc::default();
        let app = axum::Router::new().fallback(answer).with_state(log.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { port, log, task })
    }

    fn seen(&self, scenario: &str) -> Vec<Seen> {
        self.log
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|s| s.scenario == scenario)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn answer(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let scenario = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut l) = log.lock() {
        l.push(Seen {
            scenario: scenario.clone(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body,
        });
    }
    let json = [("content-type", "application/json")];
    match scenario.as_str() {
        "rate-limited" => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json"),
                ("retry-after", &RETRY_AFTER_SECS.to_string()),
            ],
            r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )
            .into_response(),
        "auth" => (
            StatusCode::UNAUTHORIZED,
            json,
            r#"{"error":{"type":"authentication_error","message":"invalid key"}}"#,
        )
            .into_response(),
        "transient" => (
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            r#"{"error":{"type":"overloaded_error","message":"try later"}}"#,
        )
            .into_response(),
        "malformed" => (StatusCode::OK, json, r#"{"choices": [{"message": "#).into_response(),
        _ => (StatusCode::NOT_FOUND, "no such scenario").into_response(),
    }
}

pub(super) async fn run(
    host: &PluginHost,
    m: &Manifest,
    sha: &str,
    wasm: Arc<Vec<u8>>,
    report: &mut Report,
) {
    let Some(a) = super::loaded(host.adapter(m, sha, async { Ok(wasm) }), m, report).await else {
        return;
    };
    let started = Instant::now();
    if !m.capabilities.config_keys.iter().any(|k| k == "baseUrl") {
        report.skip(
            "behaviour",
            "the manifest declares no `baseUrl` configuration key, so the check cannot point \
             the adapter at its fake provider",
        );
        return;
    }
    let fake = match Fake::start().await {
        Ok(f) => f,
        Err(e) => {
            report.record(
                "fake provider",
                Verdict::Fail,
                format!("could not listen on loopback: {e}"),
                started,
            );
            return;
        }
    };
    let secret = format!(
        "evs-check-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let secrets: HashMap<String, String> = m
        .capabilities
        .secrets
        .iter()
        .map(|s| (s.name.clone(), secret.clone()))
        .collect();
    let origin = format!("http://127.0.0.1:{}", fake.port);
    let policy = |granted: &[String]| {
        host.outbound_policy(m, granted, std::slice::from_ref(&origin), &secrets)
            .map(|mut p| {
                // Only for the check's own fake on loopback.
                p.allow_private = true;
                p
            })
    };
    let granted = vec!["127.0.0.1".to_owned()];
    let mut denied = Vec::new();
    for scenario in SCENARIOS {
        let started = Instant::now();
        let p = match policy(&granted) {
            Ok(p) => p,
            Err(e) => {
                report.record(scenario, Verdict::Fail, plugin_reason(&e, m), started);
                continue;
            }
        };
        let r = call(a.as_ref(), &format!("{origin}/{scenario}"), p).await;
        if let Err(LlmError::Plugin(PluginError::CapabilityDenied(why))) = &r {
            denied.push(why.clone());
        }
        let (verdict, reason) = judge(scenario, &r, m);
        report.record(scenario, verdict, reason, started);
        if let Err(LlmError::Plugin(e)) = &r
            && super::exhausted(e)
        {
            report.skip("behaviour", "the adapter ran out of its limits");
            return;
        }
    }
    let started = Instant::now();
    if denied.is_empty() {
        report.record(
            "outbound-hosts",
            Verdict::Pass,
            "every request went to the host of baseUrl",
            started,
        );
    } else {
        report.record(
            "outbound-hosts",
            Verdict::Fail,
            format!(
                "the host refused requests the adapter made beyond the allow-list (the host of \
                 baseUrl, where the manifest's outbound_hosts request it): {}",
                denied.join("; ")
            ),
            started,
        );
    }
    secret_check(&fake, m, &secret, report);
    // A binding that grants another host only: the fake must see nothing.
    let started = Instant::now();
    let (verdict, reason) = match policy(&["provider.invalid".to_owned()]) {
        Err(e) => (Verdict::Fail, plugin_reason(&e, m)),
        Ok(p) => {
            let r = call(a.as_ref(), &format!("{origin}/denied"), p).await;
            let reached = fake.seen("denied").len();
            match r {
                _ if reached > 0 => (
                    Verdict::Fail,
                    format!("{reached} requests reached a host outside the allow-list"),
                ),
                Err(LlmError::Plugin(PluginError::CapabilityDenied(why))) => {
                    (Verdict::Pass, format!("refused by the host: {why}"))
                }
                Err(LlmError::Plugin(e)) => (Verdict::Fail, plugin_reason(&e, m)),
                other => (
                    Verdict::Fail,
                    format!(
                        "the host refused the request, but the adapter answered {}",
                        outcome(&other)
                    ),
                ),
            }
        }
    };
    report.record("allow-list", verdict, reason, started);
}

async fn call(
    a: &dyn LlmAdapter,
    base_url: &str,
    policy: crate::plugins::policy::OutboundPolicy,
) -> Result<crate::plugins::llm::Completion, LlmError> {
    let request = CompletionRequest {
        messages: vec![
            Message {
                role: Role::System,
                content: "You answer in one word.".into(),
            },
            Message {
                role: Role::User,
                content: "Reply with OK.".into(),
            },
        ],
        json_schema: None,
        schema_name: None,
        temperature: Some(0.0),
        max_tokens: Some(8),
    };
    let config = vec![
        ("baseUrl".to_owned(), base_url.to_owned()),
        ("model".to_owned(), "plugin-check".to_owned()),
    ];
    a.complete(config, &request, policy).await.0
}

fn outcome(r: &Result<crate::plugins::llm::Completion, LlmError>) -> String {
    match r {
        Ok(c) => format!(
            "a completion ({:?})",
            c.text.chars().take(40).collect::<String>()
        ),
        Err(e) => format!("{}: {e}", e.kind()),
    }
}

fn judge(
    scenario: &str,
    r: &Result<crate::plugins::llm::Completion, LlmError>,
    m: &Manifest,
) -> (Verdict, String) {
    let want = match scenario {
        "rate-limited" => "rate-limited with the delay of Retry-After",
        "auth" => "auth",
        "transient" => "transient",
        _ => "a typed failure (invalid output)",
    };
    let ok = match (scenario, r) {
        ("rate-limited", Err(LlmError::Provider(LlmFailure::RateLimited(Some(ms))))) => {
            *ms == RETRY_AFTER_SECS * 1000
        }
        ("auth", Err(LlmError::Provider(LlmFailure::Auth(_)))) => true,
        ("transient", Err(LlmError::Provider(LlmFailure::Transient(_)))) => true,
        ("malformed", Err(LlmError::Provider(_))) => true,
        _ => false,
    };
    let what = match scenario {
        "rate-limited" => format!("429 with Retry-After: {RETRY_AFTER_SECS}"),
        "auth" => "401".to_owned(),
        "transient" => "503".to_owned(),
        _ => "200 with a body cut short".to_owned(),
    };
    let got = match r {
        Err(LlmError::Plugin(e)) => plugin_reason(e, m),
        other => outcome(other),
    };
    if ok {
        (Verdict::Pass, format!("{what} → {got}"))
    } else {
        (
            Verdict::Fail,
            format!("{what} should map to {want}; got {got}"),
        )
    }
}

/// The secret reached the fake only in its declared header, formatted as
/// declared: nowhere in the URL, the body or another header.
fn secret_check(fake: &Fake, m: &Manifest, secret: &str, report: &mut Report) {
    let started = Instant::now();
    if m.capabilities.secrets.is_empty() {
        report.skip("secret", "the manifest declares no secret");
        return;
    }
    let seen: Vec<Seen> = SCENARIOS.iter().flat_map(|s| fake.seen(s)).collect();
    if seen.is_empty() {
        report.record(
            "secret",
            Verdict::Fail,
            "the adapter sent no request to baseUrl",
            started,
        );
        return;
    }
    let mut problems = Vec::new();
    for s in &seen {
        for spec in &m.capabilities.secrets {
            let want = spec.format.replace("{secret}", secret);
            let header = spec.header.to_ascii_lowercase();
            let got: Vec<&str> = s
                .headers
                .iter()
                .filter(|(k, _)| *k == header)
                .map(|(_, v)| v.as_str())
                .collect();
            if got != [want.as_str()] {
                problems.push(format!(
                    "{}: header `{header}` is {:?}, not the declared format",
                    s.uri,
                    got.iter().map(|_| "<set>").collect::<Vec<_>>()
                ));
            }
        }
        let declared: Vec<String> = m
            .capabilities
            .secrets
            .iter()
            .map(|s| s.header.to_ascii_lowercase())
            .collect();
        if s.uri.contains(secret) {
            problems.push(format!("{}: the secret is in the URL", s.scenario));
        }
        if String::from_utf8_lossy(&s.body).contains(secret) {
            problems.push(format!("{}: the secret is in the body", s.scenario));
        }
        for (k, v) in &s.headers {
            if !declared.contains(k) && v.contains(secret) {
                problems.push(format!("{}: the secret is in header `{k}`", s.scenario));
            }
        }
    }
    if problems.is_empty() {
        report.record(
            "secret",
            Verdict::Pass,
            format!(
                "{} requests carried the secret in its declared header only",
                seen.len()
            ),
            started,
        );
    } else {
        problems.dedup();
        report.record("secret", Verdict::Fail, problems.join("; "), started);
    }
}
