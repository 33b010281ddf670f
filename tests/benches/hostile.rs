//! The hostile-tenant attacks at full size, against a real node with the
//! production defaults (SQLite; release build under `cargo bench`), each
//! beside a named baseline measured in the same run:
//!
//! - `parse`: a 2,000- and a 100,000-level nested literal, a fragment
//!   fan-out of 2^30, 1,000 aliases; refusal time and memory growth, against
//!   `{ __typename }` (baseline);
//! - `cost`: 1,000 aliases of `document { text }` by a VIEWER on a converted
//!   paper, against one `document { text }` (baseline);
//! - `login`: 200 wrong passwords in a row (how many reached argon2), one
//!   request with 200 `login` aliases, 64 concurrent logins (memory), against
//!   one correct login (baseline);
//! - `grounding`: a 400-word near-miss quote of a paper, capped as the host
//!   caps it and uncapped, against an exact 80-word quote (baseline);
//! - `starvation`: another organization's `checkLlmConnection` while one
//!   organization holds 40 checks against a 3 s provider, against the same
//!   check on an idle node (baseline);
//! - `bodies`: a 90 MB multipart `operations` part, an 8 MB WebSocket
//!   message, anonymous 95 MB uploads, 40 connections stalled in their
//!   headers;
//! - `derivation`: a DUAL review whose reviewer recorded 8 × 5,000 list
//!   items (stored directly, as the API now refuses them): the review read
//!   by its reviewer and by a VIEWER, and another organization's `me`
//!   while two such reads run, against the same review with one value
//!   (baseline); then the same 8 × 5,000 sent through the API;
//! - `alignment`: `evaluation` of 5,000 extracted list items against 5,000
//!   reference items in the opposite order (identical items, then each
//!   with one value off), and `/livez` during two such evaluations, against
//!   50 × 50 items (baseline);
//! - `plugins`: a tenant's own 0.2 converter (`hostile-layout`) returning
//!   a row of 2,000 cells each spanning the whole text, 200,000
//!   one-character runs, 2,000,000,000 claimed pages, 100,000 pages, each
//!   against a valid document of the same converter (baseline), with
//!   another organization's `me` meanwhile; on a 60 MB text, 16 aliases
//!   of `warnings`/`converter`/`pages` and 8 aliases of `text` against one
//!   `warnings` (baseline); 20 fetches of a 16 MB "PNG" against 20 of a
//!   valid one; 256 aliases of `exportResults` against one export.
//!
//! Run: `cargo bench -p evistream-tests --bench hostile [-- PART…]`.

use std::time::{Duration, Instant};

use evistream::config::Config;
use evistream::db::entities::{extraction_result, review, review_decision};
use evistream::db::types::EvidenceList;
use evistream::extraction::grounding::{Grounder, cap_quote};
use evistream::jobs::JobRegistry;
use evistream::review::DecisionKind;
use evistream_tests::attacks;
use evistream_tests::llm::FakeLlm;
use evistream_tests::ws::WsConn;
use evistream_tests::{DbKind, Session, TestDb, TestServer, ok, ops, rss_mib};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn node(tune: impl FnOnce(&mut Config)) -> (TestDb, TestServer) {
    let tdb = TestDb::new(DbKind::Sqlite).await.expect("db");
    let mut c = tdb.config();
    tune(&mut c);
    let srv = TestServer::start(c, JobRegistry::new())
        .await
        .expect("node");
    (tdb, srv)
}

/// Median wall time of `n` runs of `f`, and the last result.
async fn time<F, Fut, T>(n: usize, mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    (times[n / 2], last.expect("n > 0"))
}

fn code(r: &Value) -> String {
    r["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("-")
        .to_owned()
}

fn row(what: &str, t: Duration, base: Duration, grew: f64, outcome: &str) {
    println!(
        "| {what} | {:.3} ms | {:.1}× | {grew:+.1} MiB | {outcome} |",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64().max(1e-9)
    );
}

async fn parse() {
    println!("\n## parse: refused before parsing (median of 20)\n");
    println!("| request | time | vs `{{ __typename }}` | memory | answer |\n|---|---|---|---|---|");
    let (tdb, srv) = node(|_| {}).await;
    let (base, _) = time(20, || srv.gql(None, "{ __typename }", json!({}))).await;
    row("`{ __typename }` (baseline)", base, base, 0.0, "data");
    for levels in [2_000usize, 100_000] {
        let q = attacks::nested_literal(levels);
        let before = rss_mib();
        let (t, r) = time(20, || srv.gql(None, &q, json!({}))).await;
        row(
            &format!("{levels} nested `[`"),
            t,
            base,
            rss_mib() - before,
            &code(&r),
        );
    }
    let q = attacks::fragment_fan_out(30);
    let before = rss_mib();
    let (t, r) = time(20, || srv.gql(None, &q, json!({}))).await;
    row(
        "fragment fan-out 2^30",
        t,
        base,
        rss_mib() - before,
        &code(&r),
    );
    let q = attacks::aliases(1_000);
    let (t, r) = time(20, || srv.gql(None, &q, json!({}))).await;
    row("1,000 aliases", t, base, 0.0, &code(&r));
    srv.stop().await;
    tdb.drop_db().await;
}

async fn cost() {
    println!("\n## cost: data-sized fields (median of 5)\n");
    println!("| request | time | vs one `text` | memory | answer |\n|---|---|---|---|---|");
    let (tdb, srv) = node(|_| {}).await;
    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "p").await;
    let ids = srv
        .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
        .await;
    let r = srv
        .op(
            Some(&owner.token),
            "CreateApiKey",
            json!({ "organizationId": owner.org_id, "name": "viewer", "role": "VIEWER" }),
        )
        .await;
    let viewer = ok(&r, "createApiKey")["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let texts = |n: usize| -> String {
        let f: String = (0..n)
            .map(|i| format!("d{i}: document(id: \"{}\") {{ text }} ", ids[0]))
            .collect();
        format!("{{ {f} }}")
    };
    let one = texts(1);
    let (base, r) = time(5, || srv.gql(Some(&viewer), &one, json!({}))).await;
    let bytes = r.to_string().len();
    row(
        &format!("1 × `text` (baseline, {bytes} bytes)"),
        base,
        base,
        0.0,
        "data",
    );
    for n in [9usize, 1_000] {
        let q = texts(n);
        let before = rss_mib();
        let (t, r) = time(5, || srv.gql(Some(&viewer), &q, json!({}))).await;
        let answer = if r.get("errors").is_some() {
            code(&r)
        } else {
            format!("data, {} bytes", r.to_string().len())
        };
        row(
            &format!("{n} × `text`"),
            t,
            base,
            rss_mib() - before,
            &answer,
        );
    }
    srv.stop().await;
    tdb.drop_db().await;
}

async fn login_req(srv: &TestServer, email: &str, pw: &str) -> (u16, Value) {
    let resp = srv
        .http
        .post(format!("{}/graphql", srv.base))
        .json(&json!({ "query": ops::operation("Login"), "variables": { "email": email, "password": pw } }))
        .send()
        .await
        .expect("sent");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn login() {
    println!("\n## login\n");
    let (tdb, srv) = node(|_| {}).await;
    let user = srv.register("victim").await;
    let (base, _) = time(5, || login_req(&srv, &user.email, "correct horse")).await;
    println!(
        "- one correct login (baseline): {:.1} ms",
        base.as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let mut checked = 0;
    let mut throttled = 0;
    for _ in 0..200 {
        let (status, r) = login_req(&srv, &user.email, "wrong password").await;
        match (status, code(&r).as_str()) {
            (429, "RATE_LIMITED") => throttled += 1,
            (_, "UNAUTHENTICATED") => checked += 1,
            other => println!("  unexpected {other:?}"),
        }
    }
    println!(
        "- 200 wrong passwords in a row: {checked} checked, {throttled} refused RATE_LIMITED (429), {:.2} s ({:.1}× one login)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() / base.as_secs_f64()
    );
    let aliases: String = (0..200)
        .map(|i| {
            format!(
                "a{i}: login(input: {{email: \"{}\", password: \"p{i}\"}}) {{ accessToken }} ",
                user.email
            )
        })
        .collect();
    let q = format!("mutation {{ {aliases} }}");
    let (t, r) = time(5, || srv.gql(None, &q, json!({}))).await;
    println!(
        "- one request with 200 `login` aliases: {} in {:.2} ms ({:.2}× one login)",
        code(&r),
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64()
    );
    srv.stop().await;
    // A fresh node, so the backoff above does not answer for it.
    let mut c = tdb.config();
    c.listen = "127.0.0.1:0".parse().unwrap();
    let srv = TestServer::start(c, JobRegistry::new())
        .await
        .expect("node");
    let before = rss_mib();
    let started = Instant::now();
    let all =
        futures::future::join_all((0..64).map(|_| login_req(&srv, &user.email, "correct horse")))
            .await;
    let ok_n = all.iter().filter(|(s, _)| *s == 200).count();
    let busy = all.iter().filter(|(s, _)| *s == 429).count();
    println!(
        "- 64 concurrent logins: {ok_n} succeeded, {busy} refused as busy, {:.2} s, memory {:+.1} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib() - before
    );
    srv.stop().await;
    tdb.drop_db().await;
}

fn grounding() {
    println!("\n## grounding (median of 5)\n");
    // The corpus's reference text of one paper.
    let text = std::fs::read_to_string(
        ops::repo_root().join("../shared/corpus/rct/ei_txt/PMC3321528.txt"),
    )
    .unwrap_or_default();
    if text.split_whitespace().count() < 1_000 {
        println!("no corpus text found: skipped");
        return;
    }
    let pages = vec![evistream::plugins::converter::PageRange {
        number: 1,
        start: 0,
        end: text.chars().count() as u32,
    }];
    let g = Grounder::new(&text, &pages);
    let words: Vec<&str> = text.split_whitespace().skip(200).take(400).collect();
    let exact80 = words[..80].join(" ");
    let near400: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i % 5 == 4 { "xyzzy" } else { w })
        .collect::<Vec<_>>()
        .join(" ");
    let run = |q: &str| {
        let mut t = Vec::new();
        let mut v = None;
        for _ in 0..5 {
            let s = Instant::now();
            v = Some(g.locate(q, None).verdict);
            t.push(s.elapsed());
        }
        t.sort();
        (t[2], v)
    };
    let (base, v) = run(&exact80);
    println!(
        "- exact 80-word quote (baseline): {:.2} ms, {v:?}",
        base.as_secs_f64() * 1e3
    );
    let (capped, cut) = cap_quote(&near400);
    let (t, v) = run(capped);
    println!(
        "- 400-word near miss, capped to 80 words as the host does (cut: {cut}): {:.2} ms ({:.1}×), {v:?}",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64()
    );
    let (t, v) = run(&near400);
    println!(
        "- 400-word near miss, uncapped (bounded matcher alone): {:.2} ms ({:.1}×), {v:?}",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64()
    );
}

async fn starvation() {
    println!("\n## starvation: checkLlmConnection of another organization\n");
    let (tdb, srv) = node(|c| c.plugins.allow_private_networks = true).await;
    let slow = FakeLlm::start().await;
    slow.set_latency(Duration::from_secs(3));
    let fast = FakeLlm::start().await;
    let a = srv.register("flood").await;
    let b = srv.register("victim").await;
    let pb = srv.project(&b.token, &b.org_id, "b").await;
    srv.bind_llm(&b.token, &pb, "openai-compatible", &fast.base_url, "m", "k")
        .await;
    let check = |token: String, project: String| {
        let srv = &srv;
        async move {
            srv.op(
                Some(&token),
                "CheckLlmConnection",
                json!({ "projectId": project }),
            )
            .await
        }
    };
    let (base, _) = time(3, || check(b.token.clone(), pb.clone())).await;
    println!(
        "- B's check on an idle node (baseline): {:.1} ms",
        base.as_secs_f64() * 1e3
    );
    let mut projects = Vec::new();
    for i in 0..10 {
        let p = srv.project(&a.token, &a.org_id, &format!("a{i}")).await;
        srv.bind_llm(&a.token, &p, "openai-compatible", &slow.base_url, "m", "k")
            .await;
        projects.push(p);
    }
    let flood: Vec<_> = (0..40)
        .map(|i| check(a.token.clone(), projects[i % 10].clone()))
        .collect();
    let flood = futures::future::join_all(flood);
    let victim = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        let r = check(b.token.clone(), pb.clone()).await;
        (t.elapsed(), r, slow.request_count())
    };
    let (results, (t, r, at_slow)) = tokio::join!(flood, victim);
    let ok_n = results.iter().filter(|r| r.get("errors").is_none()).count();
    println!(
        "- B's check while A holds 40 checks on a 3 s provider: {:.1} ms ({:.1}×), {}; A's calls at the provider then: {at_slow}; A's 40 checks: {ok_n} succeeded",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64(),
        if r.get("errors").is_none() {
            "ok".to_owned()
        } else {
            code(&r)
        }
    );
    srv.stop().await;
    tdb.drop_db().await;
}

async fn bodies() {
    println!("\n## bodies and connections\n");
    let (tdb, srv) = node(|_| {}).await;
    let owner = srv.register("owner").await;
    // 90 MB `operations` part.
    let big = format!(
        "{{\"query\":\"{{ __typename }}\",\"variables\":{{\"p\":\"{}\"}}}}",
        "x".repeat(90 << 20)
    );
    let before = rss_mib();
    let t = Instant::now();
    let form = reqwest::multipart::Form::new()
        .text("operations", big)
        .text("map", "{}");
    let resp = srv
        .http
        .post(format!("{}/graphql", srv.base))
        .bearer_auth(&owner.token)
        .multipart(form)
        .send()
        .await;
    println!(
        "- 90 MB multipart `operations` part: {} in {:.2} s, memory {:+.1} MiB (the client's copy included)",
        resp.map(|r| r.status().as_u16().to_string())
            .unwrap_or_else(|e| format!("cut off ({e})")),
        t.elapsed().as_secs_f64(),
        rss_mib() - before
    );
    // 8 MB WebSocket message.
    let mut ws = WsConn::connect(&srv.ws_url(), Some(&owner.token))
        .await
        .expect("ws");
    let t = Instant::now();
    let _ = ws
        .send_text(json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }", "variables": { "p": "x".repeat(8 << 20) } } }).to_string())
        .await;
    let closed = ws.closed(Duration::from_secs(10)).await;
    println!(
        "- 8 MB WebSocket message: closed ({closed:?}) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // Anonymous 95 MB uploads: answered before the body is read.
    let t = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(srv.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\napollo-require-preflight: 1\r\nContent-Length: {}\r\n\r\n",
            95u64 << 20
        );
        s.write_all(head.as_bytes()).await.expect("write");
        // The server may answer and close before this megabyte is through.
        let sent = s.write_all(&vec![b'x'; 1 << 20]).await.is_ok();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(0);
        answers.push(format!(
            "{}{}",
            String::from_utf8_lossy(&buf[..n.min(12)]),
            if sent {
                ""
            } else {
                " (closed before the first MB was read)"
            }
        ));
    }
    println!(
        "- 4 anonymous 95 MB uploads (1 MB sent each): answered {answers:?} in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // 40 connections stalled in their headers.
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut s = tokio::net::TcpStream::connect(srv.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        s.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        stalled.push(s);
    }
    let t = Instant::now();
    let closed = futures::future::join_all(stalled.into_iter().map(|mut s| async move {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
            .await
            .is_ok()
    }))
    .await;
    println!(
        "- 40 connections stalled in their headers: {} closed by the server within {:.1} s",
        closed.iter().filter(|c| **c).count(),
        t.elapsed().as_secs_f64()
    );
    srv.stop().await;
    tdb.drop_db().await;
}

/// A member of `owner`'s organization with `role`.
async fn member(srv: &TestServer, owner: &Session, label: &str, role: &str) -> Session {
    let s = srv.register(label).await;
    srv.add_member(&owner.token, &owner.org_id, &s.email, role)
        .await;
    s
}

/// `n` decisions of `user` extracting `arms[first..first + n].name`.
fn arm_decisions(
    org: &str,
    review: &str,
    user: &str,
    first: usize,
    n: usize,
) -> Vec<review_decision::ActiveModel> {
    (first..first + n)
        .map(|i| review_decision::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            organization_id: Set(org.to_owned()),
            review_id: Set(review.to_owned()),
            path: Set(format!("arms[{i}].name")),
            verdict: Set(DecisionKind::Extract),
            user_id: Set(Some(user.to_owned())),
            value: Set(Some(json!(format!("arm {i}")).to_string())),
            extracted: Set(Some("null".into())),
            evidence: Set(EvidenceList::default()),
            note: Set(None),
            created_at: Set(1 + i as i64),
        })
        .collect()
}

async fn derivation() {
    println!("\n## derivation: a review of 8 × 5,000 reviewer list items\n");
    let (tdb, mut srv) = node(|_| {}).await;
    // Before the fix one read took minutes in a debug build.
    srv.http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1_800))
        .build()
        .expect("client");
    let owner = srv.register("owner").await;
    let a = member(&srv, &owner, "alice", "REVIEWER").await;
    let b = member(&srv, &owner, "bob", "REVIEWER").await;
    let viewer = member(&srv, &owner, "victor", "VIEWER").await;
    let other = srv.register("other").await;
    let project = srv.project(&owner.token, &owner.org_id, "p").await;
    let docs = srv
        .converted_papers(
            &owner.token,
            &project,
            &["PMC3321528.pdf", "PMC3580751.pdf"],
        )
        .await;
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([
                { "name": "sample_size", "type": "INTEGER" },
                { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
            ]),
        )
        .await;
    let r = srv
        .op(
            Some(&owner.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": "DUAL", "reviewersPerDocument": 2 }),
        )
        .await;
    ok(&r, "configureReview");
    srv.run_extraction(&owner.token, &project, &version).await;
    let ids = json!({ "documentId": docs[0], "formVersionId": version });
    let submit = |who: &Session, values: Value, done: bool| {
        let mut vars = ids.clone();
        vars["values"] = values;
        vars["submit"] = json!(done);
        let token = who.token.clone();
        let srv = &srv;
        async move { srv.op(Some(&token), "SubmitReviewerValues", vars).await }
    };
    let read = |who: &Session| {
        let token = who.token.clone();
        let vars = ids.clone();
        let srv = &srv;
        async move {
            let r = srv.op(Some(&token), "Review", vars).await;
            r["data"]["review"]["values"]
                .as_array()
                .map_or_else(|| code(&r), |v| format!("{} values", v.len()))
        }
    };
    let me = || {
        let token = other.token.clone();
        let srv = &srv;
        async move {
            let r = srv.op(Some(&token), "Me", json!({})).await;
            assert!(r["data"]["me"]["id"].is_string(), "{r}");
        }
    };
    let probe = attacks::Probe::Me {
        url: format!("{}/graphql", srv.base),
        token: other.token.clone(),
    };
    ok(
        &submit(&a, json!({ "sample_size": 1 }), false).await,
        "submitReviewerValues",
    );
    let (base, out) = time(5, || read(&a)).await;
    println!("| request | time | vs baseline | answer |\n|---|---|---|---|");
    let line = |what: &str, t: Duration, out: &str| {
        println!(
            "| {what} | {:.1} ms | {:.1}× | {out} |",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64().max(1e-9)
        );
    };
    line("alice's `review`, one value (baseline)", base, &out);
    let (me_base, _) = time(5, me).await;
    line("another organization's `me`, idle", me_base, "ok");

    // Alice's 8 parts of 5,000 items, written as the API once took them.
    let db = &srv.node.app.db;
    let review_id = review::Entity::find()
        .filter(review::Column::DocumentId.eq(docs[0].as_str()))
        .one(db)
        .await
        .expect("db")
        .expect("alice's review")
        .id;
    for part in 0..8 {
        for chunk in
            arm_decisions(&owner.org_id, &review_id, &a.user_id, part * 5_000, 5_000).chunks(500)
        {
            review_decision::Entity::insert_many(chunk.to_vec())
                .exec(db)
                .await
                .expect("decisions stored");
        }
    }
    let (t, out) = time(1, || read(&a)).await;
    line("alice's `review` (blind), 40,000 of her values", t, &out);
    let (t, out) = time(1, || read(&viewer)).await;
    line("a VIEWER's `review` while alice extracts", t, &out);
    ok(&submit(&a, json!({}), true).await, "submitReviewerValues");
    ok(
        &submit(&b, json!({ "sample_size": 2 }), true).await,
        "submitReviewerValues",
    );
    let (t, out) = time(1, || read(&viewer)).await;
    line(
        "a VIEWER's `review`, both submitted (40,001 values)",
        t,
        &out,
    );
    let two = async { futures::future::join(read(&viewer), read(&owner)).await };
    let ((x, y), answers) = attacks::slowest_during(two, probe).await;
    let (worst, n) = (answers.slowest(), answers.len());
    line(
        &format!("another organization's `me` during two such reads (slowest of {n})"),
        worst,
        &format!("reads: {x}, {y}"),
    );

    // The same attack through the API, on the second paper.
    let ids2 = json!({ "documentId": docs[1], "formVersionId": version });
    let started = Instant::now();
    let mut answers = Vec::new();
    for part in 0..8 {
        let values: serde_json::Map<String, Value> = (part * 5_000..(part + 1) * 5_000)
            .map(|i| (format!("arms[{i}].name"), json!(format!("arm {i}"))))
            .collect();
        let mut vars = ids2.clone();
        vars["values"] = Value::Object(values);
        vars["submit"] = json!(false);
        let r = srv.op(Some(&a.token), "SubmitReviewerValues", vars).await;
        answers.push(if r.get("errors").is_some() {
            code(&r)
        } else {
            "ok".into()
        });
    }
    line(
        "the 8 parts of 5,000 items through the API (all 8)",
        started.elapsed(),
        &answers.join(" "),
    );
    srv.stop().await;
    tdb.drop_db().await;
}

async fn alignment() {
    println!("\n## alignment: evaluation of 5,000 × 5,000 list items\n");
    let (tdb, mut srv) = node(|_| {}).await;
    // Before the fix one evaluation took minutes in a debug build.
    srv.http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1_800))
        .build()
        .expect("client");
    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "p").await;
    let doc = srv
        .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
        .await
        .remove(0);
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([{ "name": "arms", "type": "ARRAY", "fields": [
                { "name": "name", "type": "TEXT" }, { "name": "n", "type": "INTEGER" } ] }]),
        )
        .await;
    srv.run_extraction(&owner.token, &project, &version).await;
    let db = &srv.node.app.db;
    let result = extraction_result::Entity::find()
        .filter(extraction_result::Column::DocumentId.eq(doc.as_str()))
        .one(db)
        .await
        .expect("db")
        .expect("a result")
        .id;
    let vars = json!({ "projectId": project, "formVersionId": version });
    let evaluate = || {
        let srv = &srv;
        let token = owner.token.clone();
        let vars = vars.clone();
        async move {
            let r = srv.op(Some(&token), "Evaluation", vars).await;
            r["data"]["evaluation"]["overall"]["accuracy"]
                .as_f64()
                .map_or_else(|| code(&r), |a| format!("accuracy {a:.3}"))
        }
    };
    println!("| request | time | vs baseline | answer |\n|---|---|---|---|");
    let mut base = Duration::ZERO;
    for (n, off) in [(50usize, 1usize), (5_000, 0), (5_000, 1)] {
        attacks::reversed_arms(db, &owner.org_id, &result, n, off).await;
        let r = srv
            .op(
                Some(&owner.token),
                "ImportGroundTruth",
                json!({ "projectId": project, "formVersionId": version, "records": attacks::truth_arms(&doc, n) }),
            )
            .await;
        ok(&r, "importGroundTruth");
        let (t, out) = time(if n < 1_000 { 5 } else { 1 }, evaluate).await;
        if base.is_zero() {
            base = t;
        }
        let items = if off == 0 {
            "identical items, reversed"
        } else {
            "items reversed, each `n` off by one"
        };
        println!(
            "| `evaluation`, {n} × {n} {items}{} | {:.1} ms | {:.1}× | {out} |",
            if n < 1_000 { " (baseline)" } else { "" },
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64().max(1e-9)
        );
        let two = futures::future::join(evaluate(), evaluate());
        let ((x, _), answers) =
            attacks::slowest_during(two, attacks::Probe::Get(format!("{}/livez", srv.base))).await;
        let (worst, probes) = (answers.slowest(), answers.len());
        println!(
            "| `/livez` during two such evaluations (slowest of {probes}) | {:.1} ms | | {x} |",
            worst.as_secs_f64() * 1e3
        );
    }
    srv.stop().await;
    tdb.drop_db().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |p: &str| args.is_empty() || args.iter().any(|a| a == p);
    if want("parse") {
        parse().await;
    }
    if want("cost") {
        cost().await;
    }
    if want("login") {
        login().await;
    }
    if want("grounding") {
        grounding();
    }
    if want("starvation") {
        starvation().await;
    }
    if want("bodies") {
        bodies().await;
    }
    if want("derivation") {
        derivation().await;
    }
    if want("alignment") {
        alignment().await;
    }
    if want("plugins") {
        plugins().await;
    }
}

/// Uploads a "PDF" asking `hostile-layout` for `mode` and waits for its
/// conversion's end: (status, error, document id).
async fn convert_mode(
    srv: &TestServer,
    who: &Session,
    project: &str,
    mode: &str,
) -> (String, String, String) {
    let pdf = format!("%PDF-1.7\n% mode={mode}\n").into_bytes();
    let r = srv
        .upload(Some(&who.token), project, &format!("{mode}.pdf"), pdf)
        .await;
    let id = ok(&r, "uploadDocument")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    evistream_tests::eventually(Duration::from_secs(600), || async {
        let r = srv
            .gql(
                Some(&who.token),
                "query($id: ID!) { document(id: $id) { status error } }",
                json!({ "id": id }),
            )
            .await;
        let d = &r["data"]["document"];
        let s = d["status"].as_str().unwrap_or_default().to_owned();
        (s == "COMPLETED" || s == "FAILED")
            .then(|| (s, d["error"].as_str().unwrap_or("").to_owned(), id.clone()))
    })
    .await
}

async fn plugins() {
    println!("\n## plugins: a tenant's own converter, big documents, exports\n");
    let (tdb, mut srv) = node(|_| {}).await;
    srv.http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let attacker = srv.register("attacker").await;
    let bystander = srv.register("bystander").await;
    let project = srv.project(&attacker.token, &attacker.org_id, "p").await;
    srv.bind_own_converter(
        &attacker.token,
        &attacker.org_id,
        &project,
        "id = \"hostile-layout\"\nversion = \"1.0.0\"\nkind = \"pdf-converter\"\nwit = \"0.2.0\"\nlicense = \"MIT\"\n",
        evistream_tests::fixtures::wasm("hostile_layout"),
    )
    .await;
    let probe = || attacks::Probe::Me {
        url: format!("{}/graphql", srv.base),
        token: bystander.token.clone(),
    };
    println!(
        "| conversion | time | vs baseline | memory | other tenant's `me` (slowest) | outcome |\n|---|---|---|---|---|---|"
    );
    let started = Instant::now();
    convert_mode(&srv, &attacker, &project, "ok").await;
    let base = started.elapsed();
    for mode in ["ok", "wide-cells", "tiny-runs", "page-count", "many-pages"] {
        let rss = rss_mib();
        let t = Instant::now();
        let ((status, error, _), answers) =
            attacks::slowest_during(convert_mode(&srv, &attacker, &project, mode), probe()).await;
        let worst = answers.slowest();
        let outcome = if status == "FAILED" {
            error.split(':').take(2).collect::<Vec<_>>().join(":")
        } else {
            status
        };
        println!(
            "| `{mode}` | {:.1} ms | {:.1}× | {:+.1} MiB | {:.1} ms | {outcome} |",
            t.elapsed().as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() / base.as_secs_f64(),
            rss_mib() - rss,
            worst.as_secs_f64() * 1e3
        );
    }

    let (_, _, big) = convert_mode(&srv, &attacker, &project, "big-text-60").await;
    let ask = |fields: String| {
        let srv = &srv;
        let token = attacker.token.clone();
        let big = big.clone();
        async move {
            srv.gql(
                Some(&token),
                &format!("query($id: ID!) {{ document(id: $id) {{ {fields} }} }}"),
                json!({ "id": big }),
            )
            .await
        }
    };
    println!(
        "\n| request on a 60 MB text | time | vs baseline | memory | other tenant's `me` (slowest) | answer |\n|---|---|---|---|---|---|"
    );
    let (base, _) = time(3, || ask("warnings".into())).await;
    for (what, fields) in [
        ("one `warnings` (baseline)", "warnings".to_owned()),
        (
            "16 aliases of `warnings converter pages`",
            (0..16)
                .map(|i| format!("w{i}: warnings c{i}: converter p{i}: pages {{ number }} "))
                .collect(),
        ),
        (
            "8 aliases of `text`",
            (0..8).map(|i| format!("t{i}: text ")).collect(),
        ),
    ] {
        let rss = rss_mib();
        let t = Instant::now();
        let (r, answers) = attacks::slowest_during(ask(fields), probe()).await;
        let worst = answers.slowest();
        println!(
            "| {what} | {:.1} ms | {:.1}× | {:+.1} MiB | {:.1} ms | {} |",
            t.elapsed().as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() / base.as_secs_f64().max(1e-9),
            rss_mib() - rss,
            worst.as_secs_f64() * 1e3,
            code(&r)
        );
    }

    println!(
        "\n| page image | 20 fetches | vs baseline | memory | answer |\n|---|---|---|---|---|"
    );
    let mut base = Duration::ZERO;
    for mode in ["ok", "fake-png"] {
        let (_, _, doc) = convert_mode(&srv, &attacker, &project, mode).await;
        let r = srv
            .gql(
                Some(&attacker.token),
                "query($id: ID!) { document(id: $id) { pageImageUrl(page: 1, width: 800) } }",
                json!({ "id": doc }),
            )
            .await;
        let url = r["data"]["document"]["pageImageUrl"]
            .as_str()
            .expect("url")
            .to_owned();
        let rss = rss_mib();
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..20 {
            bytes = srv
                .http
                .get(&url)
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body")
                .len();
        }
        let took = t.elapsed();
        if base.is_zero() {
            base = took;
        }
        println!(
            "| `{mode}` | {:.1} ms | {:.1}× | {:+.1} MiB | {bytes} bytes |",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / base.as_secs_f64(),
            rss_mib() - rss
        );
    }

    let version = srv
        .approved_version(
            &attacker.token,
            &project,
            json!([{ "name": "n", "type": "INTEGER", "description": "participants" }]),
        )
        .await;
    let export = |i: usize| {
        format!("e{i}: exportResults(projectId: $p, formVersionId: $v, format: JSON) {{ url }} ")
    };
    let vars = json!({ "p": project, "v": version });
    println!("\n| exports | time | vs baseline | memory | answer |\n|---|---|---|---|---|");
    let mut base = Duration::ZERO;
    for (what, n) in [("one export (baseline)", 1usize), ("256 aliases", 256)] {
        let q = format!(
            "mutation($p: ID!, $v: ID!) {{ {} }}",
            (0..n).map(export).collect::<String>()
        );
        let rss = rss_mib();
        let t = Instant::now();
        let r = srv.gql(Some(&attacker.token), &q, vars.clone()).await;
        let took = t.elapsed();
        if base.is_zero() {
            base = took;
        }
        println!(
            "| {what} | {:.1} ms | {:.1}× | {:+.1} MiB | {} |",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / base.as_secs_f64(),
            rss_mib() - rss,
            code(&r)
        );
    }
    srv.stop().await;
    tdb.drop_db().await;
}
