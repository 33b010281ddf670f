//! A hostile tenant: each test reproduces one class of attack found against
//! the release binary, scaled down so the suite stays fast, and asserts the
//! refusal, that it costs little time and memory, and that the server keeps
//! serving. (The LLM-related attacks are in `hostile_llm.rs`.)

use std::time::{Duration, Instant};

use evistream::config::Config;
use evistream::jobs::JobRegistry;
use evistream::server::Roles;
use evistream_tests::attacks;
use evistream_tests::ws::WsConn;
use evistream_tests::{
    DbKind, Session, TestDb, TestServer, assert_code, dual_db_test, error_code, ok, ops, refused,
    rss_mib,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// Tests that measure this process's memory are `exclusive` (they run
// alone), so no other test's allocations count.

async fn server(kind: DbKind, tune: impl FnOnce(&mut Config)) -> (TestDb, TestServer) {
    let tdb = TestDb::new(kind).await.expect("test database");
    let mut c = tdb.config();
    tune(&mut c);
    let srv = TestServer::start(c, JobRegistry::new())
        .await
        .expect("server");
    (tdb, srv)
}

/// The server still answers an ordinary request.
async fn still_serving(srv: &TestServer) {
    let r = srv.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(r["data"]["__typename"], "Query", "{r}");
}

fn message(resp: &Value) -> String {
    resp["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

// 1. Nested value literals used to overflow the parser's stack (~2,000
// levels crashed the process). Refused before parsing, on every transport.
dual_db_test!(
    exclusive deep_nesting_is_refused_on_every_transport,
    |kind| async move {
        let (tdb, srv) = server(kind, |_| {}).await;
        let owner = srv.register("deep").await;
        let deep = attacks::nested_literal(5_000);
        let rss = rss_mib();
        let started = Instant::now();

        // HTTP, no credential.
        let r = srv.gql(None, &deep, json!({})).await;
        assert_code(&r, "BAD_USER_INPUT");
        assert!(message(&r).contains("nests deeper than 64"), "{r}");

        // Deep JSON variables are refused by the body parser's own bound.
        // (Built as text: a 5,000-deep `Value` would overflow this test's own stack.)
        let v = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
        let body = format!(r#"{{"query":"{{ __typename }}","variables":{{"x":{v}}}}}"#);
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);

        // Multipart: the operations part goes through the same check.
        let form = reqwest::multipart::Form::new()
            .text(
                "operations",
                json!({ "query": deep, "variables": {} }).to_string(),
            )
            .text("map", "{}");
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .bearer_auth(&owner.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let r: Value = resp.json().await.unwrap();
        assert_code(&r, "BAD_USER_INPUT");

        // WebSocket.
        let mut ws = WsConn::connect(&srv.ws_url(), Some(&owner.token))
            .await
            .unwrap();
        let r = ws.run(&deep, json!({})).await.unwrap();
        assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");

        let took = started.elapsed();
        let grew = rss_mib() - rss;
        assert!(took < Duration::from_secs(5), "refusals took {took:?}");
        assert!(grew < 64.0, "memory grew by {grew:.1} MiB");
        still_serving(&srv).await;
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// 2. Fragments spreading each other twice per level: 2^30 fields from
// 1.5 KB used to exhaust memory. Refused in linear time, without the
// expansion ever being built.
dual_db_test!(exclusive fragment_fan_out_is_refused_cheaply, |kind| async move {
    let (tdb, srv) = server(kind, |_| {}).await;
    let q = attacks::fragment_fan_out(30);
    let rss = rss_mib();
    let started = Instant::now();
    let r = srv.gql(None, &q, json!({})).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert!(
        message(&r).contains("once its fragments are expanded"),
        "{r}"
    );

    // A cycle is refused too (the validator's recursion would fan out).
    let cycle =
        "query { ...a } fragment a on Query { ...b ...b } fragment b on Query { ...a ...a }";
    let r = srv.gql(None, cycle, json!({})).await;
    assert_code(&r, "BAD_USER_INPUT");

    // A chain of fragments each nesting 62 deep (found by fuzzing: the
    // bounds walker followed it ~16,000 frames deep and overflowed).
    let chain = attacks::fragment_chain(256, 62);
    let r = srv.gql(None, &chain, json!({})).await;
    assert_code(&r, "BAD_USER_INPUT");

    // And 1,000 aliases.
    let r = srv.gql(None, &attacks::aliases(1_000), json!({})).await;
    assert_code(&r, "BAD_USER_INPUT");
    assert!(message(&r).contains("aliases"), "{r}");

    let took = started.elapsed();
    let grew = rss_mib() - rss;
    assert!(took < Duration::from_secs(2), "refusals took {took:?}");
    assert!(grew < 32.0, "memory grew by {grew:.1} MiB");
    still_serving(&srv).await;
    srv.stop().await;
    tdb.drop_db().await;
});

// 3. `document { text }` under 1,000 aliases built a 1 GB response. Fields
// whose size grows with the data are priced accordingly, and a response has
// a byte cap whatever its cost.
dual_db_test!(
    data_sized_fields_are_priced_and_responses_capped,
    |kind| async move {
        let (tdb, srv) = server(kind, |_| {}).await;
        let owner = srv.register("cost").await;
        let texts = |n: usize| -> String {
            let fields: String = (0..n)
                .map(|i| {
                    format!(
                        "d{i}: document(id: \"00000000-0000-0000-0000-000000000000\") {{ text }} "
                    )
                })
                .collect();
            format!("{{ {fields} }}")
        };
        let r = srv.gql(Some(&owner.token), &texts(20), json!({})).await;
        assert_code(&r, "BAD_USER_INPUT");
        assert!(message(&r).contains("complex"), "{r}");
        // A few are an ordinary request (here: documents that do not exist).
        let r = srv.gql(Some(&owner.token), &texts(3), json!({})).await;
        assert_code(&r, "NOT_FOUND");
        srv.stop().await;

        // A node with a tiny response cap, on the same database.
        let mut c = tdb.config();
        c.limits.max_response_bytes = 120;
        let srv = TestServer::start(c, JobRegistry::new()).await.unwrap();
        // The byte cap: `me` with memberships is more than 120 bytes.
        let r = srv.op(Some(&owner.token), "Me", json!({})).await;
        assert_code(&r, "RESPONSE_TOO_LARGE");
        assert!(r["data"].is_null(), "{r}");
        // Over WebSocket too.
        let mut ws = WsConn::connect(&srv.ws_url(), Some(&owner.token))
            .await
            .unwrap();
        let r = ws.run(&ops::operation("Me"), json!({})).await.unwrap();
        assert_eq!(error_code(&r), Some("RESPONSE_TOO_LARGE"), "{r}");
        still_serving(&srv).await;
        srv.stop().await;
        tdb.drop_db().await;
    }
);

async fn create_key(srv: &TestServer, token: &str, org: &str, role: &str) -> Value {
    srv.op(
        Some(token),
        "CreateApiKey",
        json!({ "organizationId": org, "name": "k", "role": role }),
    )
    .await
}

const CREATE_KEY: &str =
    "mutation($o: ID!) { createApiKey(organizationId: $o, name: \"ws\", role: VIEWER) { secret } }";

// 4a. Over an open WebSocket, a revoked API key and a demoted or removed
// member used to keep minting keys: auth was read once at connection_init.
// Every operation now acts as the credential is at that moment.
dual_db_test!(
    websocket_operations_are_authorized_as_of_now,
    |kind| async move {
        // A long recheck interval: what is tested here is per-operation auth.
        let (tdb, srv) = server(kind, |c| c.limits.ws_recheck_secs = 60).await;
        let owner = srv.register("owner").await;
        let org = owner.org_id.clone();

        // A revoked key.
        let r = create_key(&srv, &owner.token, &org, "ADMIN").await;
        let secret = ok(&r, "createApiKey")["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let key_id = r["data"]["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut ws = WsConn::connect(&srv.ws_url(), Some(&secret)).await.unwrap();
        let r = ws.run(CREATE_KEY, json!({ "o": org })).await.unwrap();
        assert!(r["data"]["createApiKey"]["secret"].is_string(), "{r}");
        let r = srv
            .op(Some(&owner.token), "RevokeApiKey", json!({ "id": key_id }))
            .await;
        ok(&r, "revokeApiKey");
        let r = ws.run(CREATE_KEY, json!({ "o": org })).await.unwrap();
        assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");

        // A member demoted from ADMIN to VIEWER, then removed.
        let member = srv.register("member").await;
        let add = |role: &'static str| {
            let (srv, token, org, email) =
                (&srv, owner.token.clone(), org.clone(), member.email.clone());
            async move {
                let r = srv
                    .op(
                        Some(&token),
                        "AddMember",
                        json!({ "organizationId": org, "email": email, "role": role }),
                    )
                    .await;
                ok(&r, "addMember");
            }
        };
        add("ADMIN").await;
        let mut ws = WsConn::connect(&srv.ws_url(), Some(&member.token))
            .await
            .unwrap();
        let r = ws.run(CREATE_KEY, json!({ "o": org })).await.unwrap();
        let members_key = r["data"]["createApiKey"]["secret"]
            .as_str()
            .expect("a key")
            .to_owned();
        add("VIEWER").await;
        let r = ws.run(CREATE_KEY, json!({ "o": org })).await.unwrap();
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
        let r = srv
            .op(
                Some(&owner.token),
                "RemoveMember",
                json!({ "organizationId": org, "userId": member.user_id }),
            )
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        let r = ws
            .run(
                "query($o: ID!) { organization(id: $o) { id } }",
                json!({ "o": org }),
            )
            .await
            .unwrap();
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
        // The key the member made while ADMIN ends with the membership.
        let r = srv
            .gql(
                Some(&members_key),
                "query($o: ID!) { organization(id: $o) { id } }",
                json!({ "o": org }),
            )
            .await;
        assert_code(&r, "UNAUTHENTICATED");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// 4b. The socket itself closes once its credential is revoked or expires.
dual_db_test!(
    websockets_close_when_their_credential_ends,
    |kind| async move {
        let (tdb, srv) = server(kind, |c| {
            c.limits.ws_recheck_secs = 1;
            c.auth.access_token_ttl_secs = 1;
        })
        .await;
        let owner = srv.register("expiring").await;
        let org = owner.org_id.clone();
        // The access token (1 s + 5 s leeway) is still valid here.
        let r = create_key(&srv, &owner.token, &org, "ADMIN").await;
        let secret = ok(&r, "createApiKey")["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let key_id = r["data"]["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut by_key = WsConn::connect(&srv.ws_url(), Some(&secret)).await.unwrap();
        let mut by_token = WsConn::connect(&srv.ws_url(), Some(&owner.token))
            .await
            .unwrap();
        // Revoked: closed within the recheck interval.
        let r = srv
            .gql(
                Some(&secret),
                "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                json!({ "id": key_id }),
            )
            .await;
        ok(&r, "revokeApiKey");
        let started = Instant::now();
        assert_eq!(
            by_key.closed(Duration::from_secs(5)).await.unwrap(),
            Some(4403)
        );
        assert!(started.elapsed() < Duration::from_secs(4));
        // Expired: closed once the token's lifetime (and leeway) is over.
        assert_eq!(
            by_token.closed(Duration::from_secs(12)).await.unwrap(),
            Some(4403)
        );
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// 4c/9. connection_init must come in time; messages are capped like bodies;
// a socket runs a bounded number of operations.
dual_db_test!(
    websocket_handshake_size_and_operation_limits,
    |kind| async move {
        let tdb = TestDb::new(kind).await.expect("test database");
        let mut c = tdb.config();
        c.limits.ws_init_timeout_secs = 1;
        c.limits.ws_max_operations = 2;
        c.limits.max_body_bytes = 64 << 10;
        // No workers: an uploaded document's conversion stays queued, so a
        // subscription to it stays open.
        let srv = TestServer::start_roles(
            c,
            JobRegistry::new(),
            Roles {
                api: true,
                workers: false,
            },
        )
        .await
        .expect("server");
        let owner = srv.register("ws").await;

        let mut silent = WsConn::connect_raw(&srv.ws_url()).await.unwrap();
        assert_eq!(
            silent.closed(Duration::from_secs(5)).await.unwrap(),
            Some(4408)
        );

        let mut big = WsConn::connect(&srv.ws_url(), Some(&owner.token))
            .await
            .unwrap();
        let padding = "x".repeat(100 << 10);
        let _ = big
        .send_text(json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }", "variables": { "p": padding } } }).to_string())
        .await;
        let code = big.closed(Duration::from_secs(5)).await.unwrap();
        assert!(matches!(code, None | Some(1009)), "closed with {code:?}");

        let project = srv.project(&owner.token, &owner.org_id, "p").await;
        let r = srv
            .upload(
                Some(&owner.token),
                &project,
                "a.pdf",
                b"%PDF-1.4\n% not converted in this test\n".to_vec(),
            )
            .await;
        let job = ok(&r, "uploadDocument")["job"]["id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                r["data"]["uploadDocument"]["jobId"]
                    .as_str()
                    .map(str::to_owned)
            });
        let job = match job {
            Some(j) => j,
            None => {
                let id = r["data"]["uploadDocument"]["id"].as_str().unwrap();
                let d = srv
                    .gql(
                        Some(&owner.token),
                        "query($id: ID!) { document(id: $id) { job { id } } }",
                        json!({ "id": id }),
                    )
                    .await;
                d["data"]["document"]["job"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let sub = "subscription($id: ID!) { jobUpdated(id: $id) { id state } }";
        let mut ws = WsConn::connect(&srv.ws_url(), Some(&owner.token))
            .await
            .unwrap();
        let a = ws.start(sub, json!({ "id": job })).await.unwrap();
        let first = ws
            .next_of(&a, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first["data"]["jobUpdated"]["state"], "QUEUED", "{first}");
        let b = ws.start(sub, json!({ "id": job })).await.unwrap();
        ws.next_of(&b, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        let c3 = ws.start(sub, json!({ "id": job })).await.unwrap();
        let refused_third = ws
            .next_of(&c3, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            error_code(&refused_third),
            Some("BAD_USER_INPUT"),
            "{refused_third}"
        );
        // Ending one makes room again.
        ws.send_json(json!({ "id": a, "type": "complete" }))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let d = ws.start(sub, json!({ "id": job })).await.unwrap();
        let again = ws
            .next_of(&d, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again["data"]["jobUpdated"]["state"], "QUEUED", "{again}");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

async fn login(srv: &TestServer, email: &str, password: &str) -> (u16, Option<String>, Value) {
    let resp = srv
        .http
        .post(format!("{}/graphql", srv.base))
        .json(&json!({ "query": ops::operation("Login"), "variables": { "email": email, "password": password } }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, resp.json().await.unwrap())
}

const TWO_LOGINS: &str = "mutation($e: String!, $p: String!) { a: login(input: {email: $e, password: $p}) { accessToken } b: login(input: {email: $e, password: $p}) { accessToken } }";

// 7. Passwords could be tried without limit: 200 in 7 s, 200 per request
// under aliases, 3,200 per batch. Now: one credential mutation per request
// and batch, then backoff per account and per address.
dual_db_test!(
    logins_back_off_and_one_credential_mutation_per_request,
    |kind| async move {
        let (tdb, srv) = server(kind, |c| {
            c.auth.login_free_failures = 3;
            c.auth.login_backoff_base_ms = 60_000;
        })
        .await;
        let user: Session = srv.register("victim").await;

        // Aliases and batches: refused before any password is checked.
        let r = srv
            .gql(
                None,
                TWO_LOGINS,
                json!({ "e": user.email, "p": "correct horse" }),
            )
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        let login_op = json!({ "query": ops::operation("Login"), "variables": { "email": user.email, "password": "correct horse" } });
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .json(&json!([login_op, login_op]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_code(&body, "BAD_USER_INPUT");
        // One login beside an ordinary query is fine.
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .json(&json!([login_op, { "query": "{ __typename }" }]))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert!(
            body[0]["data"]["login"]["accessToken"].is_string(),
            "{body}"
        );

        // Three wrong passwords are answered as wrong; then the account waits,
        // even for the right password.
        for _ in 0..3 {
            let (status, _, r) = login(&srv, &user.email, "wrong password").await;
            assert_eq!(status, 200);
            assert_code(&r, "UNAUTHENTICATED");
        }
        let (status, retry, r) = login(&srv, &user.email, "correct horse").await;
        assert_eq!(status, 429, "{r}");
        assert_code(&r, "RATE_LIMITED");
        let wait = r["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap();
        assert!((50..=60).contains(&wait), "{r}");
        assert_eq!(retry.as_deref(), Some(wait.to_string().as_str()));

        // Spraying other accounts from one address: the address waits too
        // (4 × the free failures of an account).
        for i in 0..12 {
            let _ = login(&srv, &format!("nobody{i}@example.org"), "guess").await;
        }
        let other = srv.register("bystander").await;
        let (status, _, r) = login(&srv, &other.email, "correct horse").await;
        assert_eq!(status, 429, "{r}");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// 7. 64 concurrent logins took RSS from 0.6 to 1.5 GB (argon2's memory
// per hash, unbounded); 256 were killed by the kernel. Hashing is bounded
// and the excess is refused at once.
dual_db_test!(exclusive concurrent_password_hashing_is_bounded, |kind| async move {
    let (tdb, srv) = server(kind, |c| {
        c.auth.max_concurrent_hashes = 2;
        c.auth.max_waiting_hashes = 4;
    })
    .await;
    let user = srv.register("busy").await;
    let rss = rss_mib();
    let attempts = (0..48).map(|_| login(&srv, &user.email, "correct horse"));
    let results = futures::future::join_all(attempts).await;
    let grew = rss_mib() - rss;
    let ok_count = results
        .iter()
        .filter(|(_, _, r)| r["data"]["login"]["accessToken"].is_string())
        .count();
    let busy = results
        .iter()
        .filter(|(s, _, r)| *s == 429 && error_code(r) == Some("RATE_LIMITED"))
        .count();
    assert!(ok_count >= 2, "{ok_count} logins succeeded");
    assert!(busy >= 1, "no login was refused as busy");
    assert_eq!(ok_count + busy, 48);
    // Two hashing threads hold 19 MiB each; unbounded, 48 argon2 hashes at
    // once would take ~900 MiB.
    assert!(grew < 80.0, "memory grew by {grew:.1} MiB");
    srv.stop().await;
    tdb.drop_db().await;
});

// 9. The multipart `operations` part took 90 MB (JSON bodies: 1 MB), and
// anonymous uploads were spooled to disk before being refused.
dual_db_test!(
    multipart_parts_and_anonymous_uploads_are_bounded,
    |kind| async move {
        let (tdb, srv) = server(kind, |c| c.limits.max_body_bytes = 64 << 10).await;
        let owner = srv.register("parts").await;
        let project = srv.project(&owner.token, &owner.org_id, "p").await;
        let operations = json!({
            "query": ops::operation("UploadDocument"),
            "variables": { "projectId": project, "file": null, "pad": "x".repeat(200 << 10) },
        });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.file"] }).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(b"%PDF-1.4\n".to_vec()).file_name("a.pdf"),
            );
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .bearer_auth(&owner.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        let r: Value = resp.json().await.unwrap();
        assert_code(&r, "PAYLOAD_TOO_LARGE");

        // Anonymous: refused as soon as the headers are read, while the body
        // is still arriving (it never completes here).
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let mut tx_keep = tx.clone();
        tokio::spawn(async move {
            use futures::SinkExt;
            let _ = tx_keep
                .send(Ok(
                    b"--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}"
                        .to_vec(),
                ))
                .await;
            // Hold the stream open.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx_keep);
        });
        drop(tx);
        let started = Instant::now();
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "multipart/form-data; boundary=b")
            .header("apollo-require-preflight", "1")
            .body(reqwest::Body::wrap_stream(rx))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(started.elapsed() < Duration::from_secs(5));
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// 9. 40 connections that stalled in their headers or body were still open
// after 70 s.
dual_db_test!(stalled_requests_are_cut_off, |kind| async move {
    let (tdb, srv) = server(kind, |c| {
        c.limits.header_read_timeout_secs = 1;
        c.limits.body_idle_timeout_secs = 1;
    })
    .await;
    let addr = srv.base.trim_start_matches("http://").to_owned();
    let read_all = |mut s: tokio::net::TcpStream| async move {
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut buf)).await;
        buf
    };
    // A connection that sends nothing at all: closed too.
    let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let got = read_all(s).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "open for {:?}",
        started.elapsed()
    );
    assert!(
        got.is_empty() || String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // Headers that never end: the connection is closed.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let got = read_all(s).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "open for {took:?}");
    assert!(
        got.is_empty() || String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A body that stops arriving: 408.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let got = String::from_utf8_lossy(&read_all(s).await).into_owned();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    still_serving(&srv).await;
    srv.stop().await;
    tdb.drop_db().await;
});

const UPLOAD_BY_VARIABLE: &str =
    "mutation($p: ID!, $file: Upload!) { uploadDocument(projectId: $p, file: $file) { id } }";

// 10. Smaller ones.
dual_db_test!(
    upload_variables_only_come_from_file_parts,
    |kind| async move {
        let (tdb, srv) = server(kind, |_| {}).await;
        let owner = srv.register("marker").await;
        let project = srv.project(&owner.token, &owner.org_id, "p").await;
        // A wrong type, a marker naming no file, a marker that is no number.
        for file in [
            json!("hello"),
            json!("#__graphql_file__:7"),
            json!("#__graphql_file__:x"),
        ] {
            let r = srv
                .gql(
                    Some(&owner.token),
                    UPLOAD_BY_VARIABLE,
                    json!({ "p": project, "file": file }),
                )
                .await;
            refused(&r, "uploadDocument", "BAD_USER_INPUT");
        }
        let literal = format!(
            "mutation {{ uploadDocument(projectId: \"{project}\", file: \"#__graphql_file__:0\") {{ id }} }}"
        );
        let r = srv.gql(Some(&owner.token), &literal, json!({})).await;
        refused(&r, "uploadDocument", "BAD_USER_INPUT");
        // The same marker spelled with an escape (the parser resolves it), and
        // without a credential: `Upload` parsing used to unwrap it.
        let escaped = format!(
            "mutation {{ uploadDocument(projectId: \"{project}\", file: \"\\u0023__graphql_file__:x\") {{ id }} }}"
        );
        for token in [Some(owner.token.as_str()), None] {
            let r = srv.gql(token, &escaped, json!({})).await;
            refused(&r, "uploadDocument", "BAD_USER_INPUT");
        }
        still_serving(&srv).await;
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(logout_revokes_the_refresh_family, |kind| async move {
    let (tdb, srv) = server(kind, |_| {}).await;
    let user = srv.register("leaving").await;
    let r = srv
        .op(None, "Refresh", json!({ "refreshToken": user.refresh }))
        .await;
    let next = ok(&r, "refresh")["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // Logging out with the spent ancestor ends the whole family.
    let r = srv
        .op(None, "Logout", json!({ "refreshToken": user.refresh }))
        .await;
    assert_eq!(ok(&r, "logout"), &json!(true));
    let r = srv
        .op(None, "Refresh", json!({ "refreshToken": next }))
        .await;
    refused(&r, "refresh", "UNAUTHENTICATED");
    let r = srv
        .op(None, "Logout", json!({ "refreshToken": "evr_not-a-token" }))
        .await;
    refused(&r, "logout", "UNAUTHENTICATED");
    srv.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(
    forwarded_headers_count_only_from_trusted_proxies,
    |kind| async move {
        let (tdb, srv) = server(kind, |_| {}).await;
        let owner = srv.register("fwd").await;
        let project = srv.project(&owner.token, &owner.org_id, "p").await;
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "n", "type": "INTEGER" }]),
            )
            .await;
        let export = |forwarded: &'static str| {
            let (srv, token, project, version) =
                (&srv, owner.token.clone(), project.clone(), version.clone());
            async move {
                let body = json!({ "query": ops::operation("ExportResults"), "variables": { "projectId": project, "formVersionId": version, "format": "CSV_LONG" } });
                let resp = srv
                    .http
                    .post(format!("{}/graphql", srv.base))
                    .bearer_auth(token)
                    .header("x-forwarded-host", forwarded)
                    .header("x-forwarded-proto", "https")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let r: Value = resp.json().await.unwrap();
                ok(&r, "exportResults")["url"].as_str().unwrap().to_owned()
            }
        };
        let url = export("evil.example").await;
        assert!(url.starts_with(&srv.base), "{url}");
        srv.stop().await;

        // Behind a configured proxy (here: loopback), they are believed.
        let mut c = tdb.config();
        c.limits.trusted_proxies = vec!["127.0.0.0/8".into()];
        let srv = TestServer::start(c, JobRegistry::new()).await.unwrap();
        // Same database and data dir (so the same signing key): the token still works.
        let body = json!({ "query": ops::operation("ExportResults"), "variables": { "projectId": project, "formVersionId": version, "format": "CSV_LONG" } });
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .bearer_auth(&owner.token)
            .header("x-forwarded-host", "evistream.example")
            .header("x-forwarded-proto", "https")
            .json(&body)
            .send()
            .await
            .unwrap();
        let r: Value = resp.json().await.unwrap();
        let url = ok(&r, "exportResults")["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("https://evistream.example/"), "{url}");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(graphiql_is_pinned_under_a_strict_csp, |kind| async move {
    let (tdb, srv) = server(kind, |_| {}).await;
    let resp = srv
        .http
        .get(format!("{}/graphql", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = resp.text().await.unwrap();
    let scripts = html.matches("<script src=").count();
    assert!(scripts >= 3, "{html}");
    assert_eq!(
        html.matches("integrity=\"sha384-").count(),
        scripts + 1,
        "{html}"
    );
    srv.stop().await;
    tdb.drop_db().await;
});

// A killed upload left its bytes behind under a document key. Uploads are
// staged and moved into place only when complete; a cancelled one leaves
// nothing.
dual_db_test!(a_cancelled_upload_leaves_no_blob, |kind| async move {
    let (tdb, srv) = server(kind, |_| {}).await;
    let owner = srv.register("killed").await;
    let project = srv.project(&owner.token, &owner.org_id, "p").await;
    let app = srv.node.app.clone();
    let access = evistream::tenancy::Access::load(
        &app.db,
        evistream::auth::Principal::User {
            user_id: owner.user_id.clone(),
        },
    )
    .await
    .unwrap();
    let mut big = tempfile::tempfile().unwrap();
    {
        use std::io::Write;
        big.write_all(b"%PDF-1.4\n").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            big.write_all(&chunk).unwrap();
        }
        std::io::Seek::rewind(&mut big).unwrap();
    }
    let blobs = app.blobs.operator().clone();
    let objects = || {
        let blobs = blobs.clone();
        async move {
            blobs
                .list_with("")
                .recursive(true)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !e.path().ends_with('/'))
                .map(|e| e.path().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(objects().await.is_empty());
    let task = {
        let (app, access, project) = (app.clone(), access, project.clone());
        tokio::spawn(async move {
            evistream::documents::upload(
                &app,
                &access,
                &project,
                "big.pdf",
                tokio::fs::File::from_std(big),
            )
            .await
        })
    };
    // Kill it once its bytes have started to land.
    let deadline = Instant::now() + Duration::from_secs(20);
    while objects().await.is_empty() && !task.is_finished() {
        assert!(Instant::now() < deadline, "the upload never wrote");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        !task.is_finished(),
        "the upload finished before it could be killed"
    );
    task.abort();
    let _ = task.await;
    let left = evistream_tests::eventually(Duration::from_secs(5), || async {
        let o = objects().await;
        o.is_empty().then_some(o)
    })
    .await;
    assert!(left.is_empty());
    let r = srv
        .op(Some(&owner.token), "Project", json!({ "id": project }))
        .await;
    assert_eq!(r["data"]["project"]["documents"]["totalCount"], 0, "{r}");
    srv.stop().await;
    tdb.drop_db().await;
});
