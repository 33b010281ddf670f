//! Outbound HTTP of LLM adapters against a real local HTTP server: the host
//! allows only listed hosts, refuses private and loopback addresses after
//! DNS unless the operator allows them, refuses credential headers set by
//! the guest, injects the binding's secrets itself, caps response sizes,
//! and does not count time spent waiting on the network against the
//! plugin's deadline (while its own computation still counts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use evistream::plugins::llm::{CompletionRequest, LlmAdapter, LlmError, LlmFailure, Message, Role};
use evistream::plugins::policy::OutboundPolicy;
use evistream::plugins::runtime::engine::EngineSettings;
use evistream::plugins::{CallLimits, PluginError, PluginRuntime, sha256_hex};
use evistream_tests::fixtures;

#[derive(Clone, Default)]
struct Seen {
    hits: Arc<AtomicU32>,
}

/// `/echo` answers the credential headers it received and the body;
/// `/slow` answers after 1.5 s; `/big` answers 3 MiB.
async fn serve() -> (u16, Seen) {
    let seen = Seen::default();
    async fn echo(State(s): State<Seen>, h: HeaderMap, body: Bytes) -> String {
        s.hits.fetch_add(1, Ordering::SeqCst);
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        format!(
            "authorization={} x-api-key={} host={} body={}",
            get("authorization"),
            get("x-api-key"),
            get("host"),
            String::from_utf8_lossy(&body)
        )
    }
    async fn slow(State(s): State<Seen>) -> &'static str {
        s.hits.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        "slow but fine"
    }
    async fn big(State(s): State<Seen>) -> String {
        s.hits.fetch_add(1, Ordering::SeqCst);
        "x".repeat(3 << 20)
    }
    let app = Router::new()
        .route("/echo", post(echo))
        .route("/slow", post(slow))
        .route("/big", post(big))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn policy(hosts: &[&str], allow_private: bool) -> OutboundPolicy {
    OutboundPolicy {
        allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        allow_private,
        inject: vec![(
            "authorization".parse().unwrap(),
            "Bearer sk-test-secret".parse().unwrap(),
        )],
        credential_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        request_timeout: Duration::from_secs(10),
        max_requests: 4,
        max_request_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
    }
}

fn limits() -> CallLimits {
    CallLimits {
        memory_bytes: 128 << 20,
        timeout: Duration::from_secs(1),
        max_output_bytes: 4 << 20,
        ..Default::default()
    }
}

struct Fixture {
    adapter: Arc<dyn LlmAdapter>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rt = PluginRuntime::new(&EngineSettings::default(), &dir.path().join("cache")).unwrap();
    let wasm = fixtures::wasm("hostile_adapter");
    let adapter = rt
        .adapter(&sha256_hex(&wasm), async { Ok(Arc::new(wasm)) }, limits())
        .await
        .expect("the adapter fixture loads");
    Fixture { adapter, _dir: dir }
}

fn request(text: &str) -> CompletionRequest {
    CompletionRequest {
        messages: vec![Message {
            role: Role::User,
            content: text.into(),
        }],
        ..Default::default()
    }
}

async fn call(
    f: &Fixture,
    config: &[(&str, String)],
    policy: OutboundPolicy,
) -> Result<Result<String, LlmFailure>, PluginError> {
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let (r, _) = f.adapter.complete(config, &request("hello"), policy).await;
    match r {
        Ok(c) => Ok(Ok(c.text)),
        Err(LlmError::Provider(f)) => Ok(Err(f)),
        Err(LlmError::Plugin(p)) => Err(p),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_is_reached_with_the_secret_injected_by_the_host() {
    let _shared = evistream_tests::shared().await;
    let (port, seen) = serve().await;
    let f = fixture().await;
    let text = call(
        &f,
        &[("url", format!("http://127.0.0.1:{port}/echo"))],
        policy(&["127.0.0.1"], true),
    )
    .await
    .expect("no plugin error")
    .expect("completion");
    assert_eq!(
        text,
        format!(
            "200 authorization=Bearer sk-test-secret x-api-key=- host=127.0.0.1:{port} body=hello"
        )
    );
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_off_the_allow_list_is_capability_denied() {
    let _shared = evistream_tests::shared().await;
    let (port, seen) = serve().await;
    let f = fixture().await;
    let r = call(
        &f,
        &[("url", format!("http://127.0.0.1:{port}/echo"))],
        policy(&["api.example.com"], true),
    )
    .await;
    match r {
        Err(PluginError::CapabilityDenied(m)) => {
            assert!(m.contains("127.0.0.1") && m.contains("allow-list"), "{m}")
        }
        other => panic!("expected CapabilityDenied, got {other:?}"),
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0, "nothing left the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_address_is_denied_after_dns_unless_the_operator_allows_it() {
    let _shared = evistream_tests::shared().await;
    let (port, seen) = serve().await;
    let f = fixture().await;
    // `localhost` is on the list, but resolves to a loopback address.
    let url = format!("http://localhost:{port}/echo");
    let r = call(&f, &[("url", url.clone())], policy(&["localhost"], false)).await;
    match r {
        Err(PluginError::CapabilityDenied(m)) => {
            assert!(m.contains("non-public address"), "{m}");
            // What the name resolved to is not told to the tenant.
            assert!(!m.contains("127.0.0.1") && !m.contains("::1"), "{m}");
        }
        other => panic!("expected CapabilityDenied, got {other:?}"),
    }
    // An IP literal is checked the same way.
    let r = call(
        &f,
        &[("url", format!("http://127.0.0.1:{port}/echo"))],
        policy(&["127.0.0.1"], false),
    )
    .await;
    assert!(matches!(r, Err(PluginError::CapabilityDenied(_))), "{r:?}");
    // IPv6 spellings that reach an IPv4 loopback or private address:
    // IPv4-compatible, 6to4, NAT64.
    for host in ["::127.0.0.1", "2002:7f00:1::", "64:ff9b::7f00:1"] {
        let r = call(
            &f,
            &[("url", format!("http://[{host}]:{port}/echo"))],
            policy(&[host], false),
        )
        .await;
        assert!(
            matches!(r, Err(PluginError::CapabilityDenied(_))),
            "{host}: {r:?}"
        );
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);
    // With private networks allowed (local model servers), it goes through.
    let ok = call(&f, &[("url", url)], policy(&["localhost"], true)).await;
    assert!(
        matches!(ok, Ok(Ok(ref t)) if t.starts_with("200 ")),
        "{ok:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_may_not_set_credential_headers() {
    let _shared = evistream_tests::shared().await;
    let (port, seen) = serve().await;
    let f = fixture().await;
    for header in ["Authorization: Bearer stolen", "x-api-key: stolen"] {
        let r = call(
            &f,
            &[
                ("url", format!("http://127.0.0.1:{port}/echo")),
                ("header", header.to_owned()),
            ],
            policy(&["127.0.0.1"], true),
        )
        .await;
        match r {
            Err(PluginError::CapabilityDenied(m)) => assert!(m.contains("credential"), "{m}"),
            other => panic!("expected CapabilityDenied for {header}, got {other:?}"),
        }
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_waits_do_not_count_against_the_deadline_but_computation_does() {
    let _shared = evistream_tests::shared().await;
    let (port, _) = serve().await;
    let f = fixture().await;
    // The server takes 1.5 s; the adapter's own budget is 1 s.
    let slow = call(
        &f,
        &[("url", format!("http://127.0.0.1:{port}/slow"))],
        policy(&["127.0.0.1"], true),
    )
    .await;
    assert_eq!(slow.unwrap().unwrap(), "200 slow but fine");
    // 1.5 s of its own computation after the request is over budget.
    let spin = call(
        &f,
        &[
            ("url", format!("http://127.0.0.1:{port}/echo")),
            ("mode", "spin".into()),
            ("spin_ms", "1500".into()),
        ],
        policy(&["127.0.0.1"], true),
    )
    .await;
    assert!(matches!(spin, Err(PluginError::Timeout { .. })), "{spin:?}");
    let looping = call(&f, &[("mode", "loop".into())], policy(&[], false)).await;
    assert!(
        matches!(looping, Err(PluginError::Timeout { .. })),
        "{looping:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_the_size_limit_are_cut_off() {
    let _shared = evistream_tests::shared().await;
    let (port, seen) = serve().await;
    let f = fixture().await;
    // The host's cap (256 KiB) is below the guest's own (1 MiB).
    let mut p = policy(&["127.0.0.1"], true);
    p.max_response_bytes = 256 << 10;
    let r = call(&f, &[("url", format!("http://127.0.0.1:{port}/big"))], p)
        .await
        .expect("not a plugin error: the guest sees a failed read");
    match r {
        Err(LlmFailure::Transient(m)) => {
            assert!(m.contains("reading the response"), "{m}");
            assert!(
                !m.contains("larger than"),
                "the host cut it, not the guest: {m}"
            );
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}
