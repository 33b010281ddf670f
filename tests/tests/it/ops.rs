//! Operations endpoints and HTTP plumbing, over real HTTP, on SQLite and
//! PostgreSQL:
//!
//! - `/livez` answers; `/readyz` reports database and blob store as ok, and
//!   answers 503 naming the blob store when blobs cannot be written (and
//!   recovers when they can again);
//! - `/metrics` is Prometheus text that counts GraphQL requests by route and
//!   status, has HELP lines, and (on the leader) reports runnable jobs per
//!   kind from the database;
//! - every response carries an `x-request-id`, and a client's own is echoed;
//! - a body above `limits.max_body_bytes` is refused with 413 and a GraphQL
//!   error coded PAYLOAD_TOO_LARGE, while one just below is served;
//! - PostgreSQL only: when the database kills the server's connections, the
//!   server recovers by itself: queries, readiness and the LISTEN/NOTIFY event
//!   bus work again within a couple of seconds.

use std::time::Duration;

use evistream::events::Event;
use evistream::jobs::JobRegistry;
use evistream::jobs::queue::{NewJob, enqueue};
use evistream_tests::{DbKind, TestDb, TestServer, dual_db_test, postgres_admin_url};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

async fn start(db: DbKind) -> (TestDb, TestServer) {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    (tdb, srv)
}

async fn get(srv: &TestServer, path: &str) -> reqwest::Response {
    srv.http
        .get(format!("{}{path}", srv.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn get_json(srv: &TestServer, path: &str) -> (u16, Value) {
    let resp = get(srv, path).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

/// The sum of the samples of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((label_text, value)) = rest.split_once("} ") else {
            continue;
        };
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if matches {
            let v: f64 = value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("sample value in {line:?}"));
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

async fn scrape(srv: &TestServer) -> String {
    let resp = get(srv, "/metrics").await;
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain"), "content-type {ctype}");
    resp.text().await.unwrap()
}

const READY: &str =
    r#"{"status":"ok","components":{"database":{"status":"ok"},"blobs":{"status":"ok"}}}"#;

dual_db_test!(livez_and_readyz_report_ok, |db| async move {
    let (tdb, srv) = start(db).await;
    assert_eq!(
        get_json(&srv, "/livez").await,
        (200, json!({ "status": "ok" }))
    );
    let (status, body) = get_json(&srv, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::from_str::<Value>(READY).unwrap());
    srv.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(
    readyz_is_503_while_the_blob_store_is_broken,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let root = tdb.path().join("blob-root");
        let mut config = tdb.config();
        config.storage.fs_root = root.display().to_string();
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        assert!(root.is_dir(), "the blob root is created at start");
        assert_eq!(get_json(&srv, "/readyz").await.0, 200);

        // A regular file where the blob folder was: every write fails.
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::write(&root, b"not a directory").unwrap();
        let (status, body) = get_json(&srv, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["components"]["blobs"]["status"], "error", "{body}");
        assert!(
            body["components"]["blobs"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "the blob error is explained: {body}"
        );
        assert_eq!(body["components"]["database"]["status"], "ok", "{body}");
        // Liveness does not depend on dependencies.
        assert_eq!(get_json(&srv, "/livez").await.0, 200);

        // Repaired: ready again, without a restart.
        std::fs::remove_file(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        let (status, body) = get_json(&srv, "/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, serde_json::from_str::<Value>(READY).unwrap());
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(
    metrics_count_requests_and_report_queued_jobs,
    |db| async move {
        let (tdb, srv) = start(db).await;
        let graphql_ok = [("route", "/graphql"), ("method", "POST"), ("status", "200")];
        // The recorder is process-wide and other tests run alongside: compare.
        let before = sample(
            &scrape(&srv).await,
            "evistream_http_requests_total",
            &graphql_ok,
        )
        .unwrap_or(0.0);
        for _ in 0..3 {
            let r = srv.gql(None, "{ __typename }", json!({})).await;
            assert_eq!(r["data"]["__typename"], "Query", "{r}");
        }
        let text = scrape(&srv).await;
        let after =
            sample(&text, "evistream_http_requests_total", &graphql_ok).unwrap_or_else(|| {
                panic!("no evistream_http_requests_total for /graphql 200 in:\n{text}")
            });
        assert!(after >= before + 3.0, "counter went {before} -> {after}");
        assert!(
            text.contains("# TYPE evistream_http_requests_total counter"),
            "Prometheus TYPE line:\n{text}"
        );
        let timed = sample(
            &text,
            "evistream_http_request_duration_seconds_count",
            &[("route", "/graphql"), ("method", "POST")],
        )
        .expect("request duration histogram for /graphql");
        assert!(timed >= 3.0);

        // Jobs by kind and state, read from the database at scrape time by
        // the leader (this node, alone on its database, leads within a
        // tick). No worker of this server handles the kind, so they stay queued.
        let s = srv.register("metrics").await;
        let kind = format!(
            "ops_probe_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        for _ in 0..2 {
            enqueue(
                &srv.node.app.db,
                NewJob {
                    organization_id: s.org_id.clone(),
                    project_id: None,
                    parent_id: None,
                    kind: kind.clone(),
                    payload: json!({}),
                    max_attempts: 1,
                },
            )
            .await
            .unwrap();
        }
        let text = evistream_tests::eventually(Duration::from_secs(20), || async {
            let t = scrape(&srv).await;
            t.contains("\nevistream_leader 1\n").then_some(t)
        })
        .await;
        assert_eq!(
            sample(
                &text,
                "evistream_queue_jobs",
                &[("kind", &kind), ("state", "runnable")]
            ),
            Some(2.0),
            "runnable gauge of {kind} in:\n{text}"
        );
        assert_eq!(
            sample(
                &text,
                "evistream_queue_jobs",
                &[("kind", &kind), ("state", "running")]
            ),
            None,
            "nothing of {kind} runs"
        );
        for help in [
            "# HELP evistream_queue_jobs ",
            "# TYPE evistream_queue_jobs gauge",
            "# HELP evistream_http_requests_total ",
            "# HELP evistream_leader ",
        ] {
            assert!(text.contains(help), "{help} in:\n{text}");
        }
        srv.stop().await;
        tdb.drop_db().await;
    }
);

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {} {}", resp.status(), resp.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

dual_db_test!(every_response_carries_a_request_id, |db| async move {
    let (tdb, srv) = start(db).await;
    let a = get(&srv, "/livez").await;
    let b = get(&srv, "/livez").await;
    let (ida, idb) = (request_id(&a), request_id(&b));
    uuid::Uuid::parse_str(&ida).unwrap_or_else(|e| panic!("generated id {ida:?} is a UUID: {e}"));
    assert_ne!(ida, idb, "each request gets its own id");
    let missing = get(&srv, "/no-such-route").await;
    assert_eq!(missing.status(), 404);
    request_id(&missing);
    assert_eq!(request_id(&get(&srv, "/metrics").await).len(), 36);

    // The client's own id is kept, on every route.
    let mine = format!("trace-{}", uuid::Uuid::new_v4().simple());
    let gql = srv
        .http
        .post(format!("{}/graphql", srv.base))
        .header("x-request-id", &mine)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(gql.status(), 200);
    assert_eq!(request_id(&gql), mine);
    let ready = srv
        .http
        .get(format!("{}/readyz", srv.base))
        .header("x-request-id", &mine)
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&ready), mine);
    srv.stop().await;
    tdb.drop_db().await;
});

/// A GraphQL request body of exactly `len` bytes.
fn body_of_len(len: usize) -> String {
    let head = r#"{"query":"{ __typename }","variables":{"pad":""#;
    let tail = r#""}}"#;
    let pad = len - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(body.len(), len);
    body
}

dual_db_test!(bodies_above_the_limit_are_413, |db| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    config.limits.max_body_bytes = 4096;
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let post = |body: String| {
        srv.http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let fits = post(body_of_len(4096)).await.unwrap();
    assert_eq!(fits.status(), 200);
    let v: Value = fits.json().await.unwrap();
    assert_eq!(v["data"]["__typename"], "Query", "{v}");

    let big = post(body_of_len(4097)).await.unwrap();
    assert_eq!(big.status(), 413);
    request_id(&big);
    assert!(
        big.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "JSON error body"
    );
    let v: Value = big.json().await.unwrap();
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE",
        "{v}"
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4096")),
        "{v}"
    );
    assert!(v.get("data").is_none(), "{v}");

    // A declared 8 MiB body is refused after the first bytes past the limit,
    // without waiting for (or buffering) the rest; a chunked one likewise.
    let addr = srv.node.addr.unwrap();
    let head = "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
    let partial = format!(
        "{head}Content-Length: {}\r\n\r\n{}",
        8 << 20,
        "x".repeat(8192)
    );
    let reply = raw_exchange(addr, partial.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("PAYLOAD_TOO_LARGE"), "{reply}");
    let chunked = format!(
        "{head}Transfer-Encoding: chunked\r\n\r\n2000\r\n{}\r\n",
        "x".repeat(0x2000)
    );
    let reply = raw_exchange(addr, chunked.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("PAYLOAD_TOO_LARGE"), "{reply}");
    srv.stop().await;
    tdb.drop_db().await;
});

/// Writes `request` on a fresh connection (leaving it open, so an
/// unfinished body stays unfinished) and reads the response head and
/// what follows of it for up to 5 s.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no complete response within 5 s: {}",
        String::from_utf8_lossy(&got)
    );
    String::from_utf8_lossy(&got).into_owned()
}

/// Kills every connection the server holds to `db_name`; returns how many.
async fn terminate_backends(db_name: &str) -> usize {
    let admin = Database::connect(&postgres_admin_url()).await.unwrap();
    let rows = admin
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
                 WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
            ),
        ))
        .await
        .unwrap();
    admin.close().await.unwrap();
    rows.iter()
        .filter(|r| r.try_get::<bool>("", "killed").unwrap_or(false))
        .count()
}

/// Runs `f` up to three times, 500 ms apart, until it returns `Ok`; returns
/// the attempts it took.
async fn within_three_tries<F, Fut>(what: &str, mut f: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut last = String::new();
    for attempt in 1..=3 {
        match f().await {
            Ok(()) => return attempt,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what} did not recover after 3 attempts: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_loss_is_survived() {
    let _shared = evistream_tests::shared().await;
    let (tdb, srv) = start(DbKind::Postgres).await;
    let db_name = tdb.url.rsplit('/').next().unwrap().to_owned();
    let s = srv.register("pgdrop").await;
    srv.project(&s.token, &s.org_id, "Survivor").await;
    let projects = || async {
        let r = srv
            .op(
                Some(&s.token),
                "Projects",
                json!({ "organizationId": s.org_id, "first": 20 }),
            )
            .await;
        match r["data"]["projects"]["totalCount"].as_i64() {
            Some(1) if r.get("errors").is_none() => Ok(()),
            _ => Err(r.to_string()),
        }
    };
    projects().await.expect("Projects before the drop");

    for round in 1..=2 {
        let killed = terminate_backends(&db_name).await;
        // At least a pooled connection and the LISTEN connection.
        assert!(killed >= 2, "round {round}: terminated {killed} backends");

        let tries = within_three_tries("Projects", projects).await;
        eprintln!("round {round}: killed {killed}; Projects ok on attempt {tries}");
        within_three_tries("readyz", || async {
            let (status, body) = get_json(&srv, "/readyz").await;
            if status == 200 {
                Ok(())
            } else {
                Err(body.to_string())
            }
        })
        .await;

        // The event bus listens again: a NOTIFY reaches local subscribers.
        let mut rx = srv.node.app.bus.subscribe();
        let job_id = format!("probe-{round}-{}", uuid::Uuid::new_v4().simple());
        let probe = Event::JobChanged {
            job_id: job_id.clone(),
            organization_id: s.org_id.clone(),
            kind: "probe".into(),
            state: "queued".into(),
            cancel_requested: false,
        };
        let heard = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                // At-most-once: publish until one arrives.
                srv.node.app.bus.publish(probe.clone()).await;
                let deadline = tokio::time::sleep(Duration::from_millis(250));
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        () = &mut deadline => break,
                        ev = rx.recv() => match ev {
                            Ok(Event::JobChanged { job_id: id, .. }) if id == job_id => return,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(e) => panic!("bus closed: {e}"),
                        },
                    }
                }
            }
        })
        .await;
        assert!(
            heard.is_ok(),
            "round {round}: no event through LISTEN/NOTIFY within 5 s"
        );
    }
    srv.stop().await;
    tdb.drop_db().await;
}
