//! Hostile tenants and the LLM, end to end on SQLite and PostgreSQL.
//!
//! - An ADMIN cannot take the OWNER's provider key elsewhere (security
//!   item 5). A binding's secrets belong to the hosts they were entered for
//!   (the host of `llmConfig.baseUrl`; without one, a built-in adapter's
//!   own provider hosts or an installed adapter's granted hosts): the host
//!   injects them only into requests toward those, never toward extra
//!   `llmAllowedHosts` beside a `baseUrl`, and a `configureProjectPlugins`
//!   that changes where they could go without providing secrets drops them.
//! - One organization cannot starve the others' LLM calls (item 8):
//!   `checkLlmConnection` goes through the LLM gateway, whose
//!   per-organization cap leaves adapter instance slots of the node free for
//!   the other tenants.
//!
//! Every test here starts its node with [`config`]: `plugins.pool_instances`
//! = 8 sets the per-organization cap to 2 calls (the plugin engine itself
//! is process-wide, and the test support gives every node the default
//! one). The starvation test runs alone (`exclusive`): its timing must not
//! share adapter slots with another test.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use evistream::config::Config;
use evistream::jobs::JobRegistry;
use evistream_tests::llm::FakeLlm;
use evistream_tests::{
    DbKind, Session, TestDb, TestServer, echo_server, eventually, fixtures, ok, refused,
};
use serde_json::{Value, json};

/// The OWNER's provider key, which must reach no host but the one it was
/// entered for.
const SECRET: &str = "sk-owner-secret";

/// A node configuration for this file: fake providers on loopback, and a
/// pool of 8 instances, so 4 adapter slots and an organization cap of
/// `max(1, 8 / 4)` = 2 calls at once.
fn config(tdb: &TestDb) -> Config {
    let mut c = tdb.config();
    c.plugins.allow_private_networks = true;
    c.plugins.pool_instances = 8;
    c
}

/// `configureProjectPlugins` through `GrantLlmHosts`, which can set every
/// LLM field and returns `llmConfig`, `llmAllowedHosts` and `llmSecretNames`.
async fn configure(srv: &TestServer, s: &Session, project: &str, mut vars: Value) -> Value {
    vars["projectId"] = json!(project);
    srv.op(Some(&s.token), "GrantLlmHosts", vars).await
}

async fn check(srv: &TestServer, s: &Session, project: &str) -> Value {
    srv.op(
        Some(&s.token),
        "CheckLlmConnection",
        json!({ "projectId": project }),
    )
    .await
}

fn reason(r: &Value) -> Option<&str> {
    r["errors"][0]["extensions"]["reason"].as_str()
}

/// Whether a recorded request carries `secret` anywhere: any header, or the body.
fn carries(headers: &HeaderMap, body: &Value, secret: &str) -> bool {
    headers
        .values()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(secret))
        || body.to_string().contains(secret)
}

/// The details and actor of the newest `project.plugins` audit entry of `org`.
async fn last_binding_audit(srv: &TestServer, owner: &Session, org: &str) -> (Value, Value) {
    let r = srv
        .op(
            Some(&owner.token),
            "AuditLog",
            json!({ "organizationId": org, "first": 100 }),
        )
        .await;
    let log = ok(&r, "auditLog");
    assert_eq!(log["pageInfo"]["hasNextPage"], false, "one page: {log}");
    let entry = log["edges"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| &e["node"])
        .find(|n| n["action"] == "project.plugins")
        .unwrap_or_else(|| panic!("no project.plugins entry: {log}"))
        .clone();
    (entry["details"].clone(), entry["actorUserId"].clone())
}

evistream_tests::dual_db_test!(
    an_admin_cannot_redirect_the_owners_llm_key,
    |db: DbKind| async move {
        // Two providers on loopback. The secrets follow the host *name*
        // (not the port), so B is addressed as `localhost`: another host
        // than A's `127.0.0.1`, on the same machine.
        let fake_a = FakeLlm::start().await;
        let fake_b = FakeLlm::start().await;
        let url_a = fake_a.base_url.clone();
        let url_b = fake_b.base_url.replacen("127.0.0.1", "localhost", 1);
        assert!(url_a.starts_with("http://127.0.0.1:") && url_b.starts_with("http://localhost:"));
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(config(&tdb), JobRegistry::new())
            .await
            .unwrap();

        // The OWNER binds the built-in adapter to provider A with their key,
        // and makes a second user an ADMIN of the organization (an ADMIN may
        // edit bindings and run checks, but was never given the key).
        let owner = srv.register("owner").await;
        let admin = srv.register("admin").await;
        let org = owner.org_id.clone();
        let r = srv
            .op(
                Some(&owner.token),
                "AddMember",
                json!({ "organizationId": org, "email": admin.email, "role": "ADMIN" }),
            )
            .await;
        assert_eq!(ok(&r, "addMember")["role"], "ADMIN");
        let project = srv.project(&owner.token, &org, "Keyed").await;
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({
                "llmAdapter": "openai-compatible",
                "llmConfig": { "baseUrl": url_a, "model": "model-a" },
                "llmSecrets": { "apiKey": SECRET },
            }),
        )
        .await;
        let bound = ok(&r, "configureProjectPlugins");
        assert_eq!(bound["llmSecretNames"], json!(["apiKey"]));
        assert_eq!(bound["llmAllowedHosts"], json!(["127.0.0.1"]));

        // Control: the key works toward the host it was entered for, for the
        // ADMIN too (using the key there is allowed; moving it is not).
        let r = check(&srv, &admin, &project).await;
        assert_eq!(ok(&r, "checkLlmConnection")["text"], "OK");
        let (headers, _) = fake_a.requests().pop().expect("A was called");
        assert_eq!(
            headers["authorization"],
            format!("Bearer {SECRET}").as_str()
        );

        // (1) The ADMIN points the binding at B, changing nothing else. The
        // key was entered for A: it is dropped, not carried to B.
        let r = configure(
            &srv,
            &admin,
            &project,
            json!({ "llmConfig": { "baseUrl": url_b, "model": "model-a" } }),
        )
        .await;
        let moved = ok(&r, "configureProjectPlugins");
        assert_eq!(moved["llmConfig"]["baseUrl"], json!(url_b));
        assert_eq!(moved["llmAllowedHosts"], json!(["localhost"]));
        assert_eq!(moved["llmSecretNames"], json!([]), "secrets dropped: {r}");
        // Stored that way, not just answered so, and audited as such.
        let r = srv
            .op(
                Some(&owner.token),
                "ProjectPlugins",
                json!({ "id": project }),
            )
            .await;
        assert_eq!(ok(&r, "project")["plugins"]["llmSecretNames"], json!([]));
        let (details, actor) = last_binding_audit(&srv, &owner, &org).await;
        assert_eq!(details["secretsDropped"], true, "{details}");
        assert_eq!(details["secretsChanged"], false, "{details}");
        assert_eq!(actor, json!(admin.user_id));
        // The ADMIN's check reaches B without any key, and B refuses it.
        let a_before = fake_a.request_count();
        let r = check(&srv, &admin, &project).await;
        refused(&r, "checkLlmConnection", "PLUGIN_FAILED");
        assert_eq!(reason(&r), Some("LLM_AUTH"), "{r}");
        assert_eq!(fake_a.request_count(), a_before, "the check went to B");
        let seen_b = fake_b.requests();
        assert!(!seen_b.is_empty(), "the check reached B");
        for (h, body) in &seen_b {
            assert!(!carries(h, body, SECRET), "B got the key: {h:?}");
            assert!(h.get("authorization").is_none(), "{h:?}");
        }

        // (2) The OWNER enters the key for B: now B gets it.
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({ "llmSecrets": { "apiKey": SECRET } }),
        )
        .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!(["apiKey"])
        );
        let r = check(&srv, &admin, &project).await;
        assert_eq!(ok(&r, "checkLlmConnection")["text"], "OK");
        let (headers, _) = fake_b.requests().pop().unwrap();
        assert_eq!(
            headers["authorization"],
            format!("Bearer {SECRET}").as_str()
        );

        // (3) The ADMIN grants the adapter one more host (the manifest
        // requests `*`, so any host is valid; A's is as good as any). The
        // key could now be sent somewhere it was not entered for: dropped.
        let r = configure(
            &srv,
            &admin,
            &project,
            json!({ "llmAllowedHosts": ["127.0.0.1"] }),
        )
        .await;
        let widened = ok(&r, "configureProjectPlugins");
        assert_eq!(
            widened["llmAllowedHosts"],
            json!(["127.0.0.1", "localhost"])
        );
        assert_eq!(widened["llmSecretNames"], json!([]), "secrets dropped: {r}");
        let (details, _) = last_binding_audit(&srv, &owner, &org).await;
        assert_eq!(details["secretsDropped"], true, "{details}");
        let b_before = fake_b.request_count();
        let r = check(&srv, &admin, &project).await;
        refused(&r, "checkLlmConnection", "PLUGIN_FAILED");
        assert_eq!(reason(&r), Some("LLM_AUTH"), "{r}");
        for (h, body) in fake_b.requests().iter().skip(b_before) {
            assert!(!carries(h, body, SECRET), "B got the key: {h:?}");
        }

        // (4) Edits that do not change where the key can go keep it: the
        // OWNER enters it again; the ADMIN then changes the model, and sends
        // the same extra host again.
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({ "llmSecrets": { "apiKey": SECRET } }),
        )
        .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!(["apiKey"])
        );
        let r = configure(
            &srv,
            &admin,
            &project,
            json!({
                "llmConfig": { "baseUrl": url_b, "model": "model-b" },
                "llmAllowedHosts": ["127.0.0.1"],
            }),
        )
        .await;
        let kept = ok(&r, "configureProjectPlugins");
        assert_eq!(kept["llmConfig"]["model"], "model-b");
        assert_eq!(
            kept["llmSecretNames"],
            json!(["apiKey"]),
            "secrets kept: {r}"
        );
        let (details, _) = last_binding_audit(&srv, &owner, &org).await;
        assert_eq!(details["secretsDropped"], false, "{details}");
        let r = check(&srv, &admin, &project).await;
        assert_eq!(ok(&r, "checkLlmConnection")["model"], "model-b-fake");
        let (headers, body) = fake_b.requests().pop().unwrap();
        assert_eq!(body["model"], "model-b");
        assert_eq!(
            headers["authorization"],
            format!("Bearer {SECRET}").as_str()
        );

        // Nothing of this ever put the key in an answer.
        let r = srv
            .op(
                Some(&admin.token),
                "ProjectPlugins",
                json!({ "id": project }),
            )
            .await;
        assert!(!r.to_string().contains(SECRET), "{r}");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

/// An installed adapter that posts to whatever `url` its config names
/// (tests/fixtures/plugins/hostile-adapter), allowed loopback by name and
/// address.
const ECHO_ADAPTER: &str = r#"
id = "echo-adapter"
version = "1.0.0"
kind = "llm-adapter"
wit = "0.1.0"
license = "Apache-2.0 OR MIT"
description = "posts the prompt to a URL"

[capabilities]
outbound_hosts = ["127.0.0.1", "localhost"]
config_keys = ["url", "header", "mode", "baseUrl"]
secrets = [{ name = "apiKey", header = "authorization", format = "Bearer {secret}" }]

[limits]
memory_mb = 64
timeout_ms = 5000
"#;

evistream_tests::dual_db_test!(
    secrets_are_sent_only_to_the_host_they_were_entered_for,
    |db: DbKind| async move {
        let port = echo_server().await;
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(config(&tdb), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let r = srv
            .install_plugin(
                &owner.token,
                &owner.org_id,
                ECHO_ADAPTER,
                fixtures::wasm("hostile_adapter"),
            )
            .await;
        assert_eq!(ok(&r, "installPlugin")["kind"], "LLM_ADAPTER");
        let project = srv.project(&owner.token, &owner.org_id, "Echo").await;

        // The key is entered for `127.0.0.1` (the baseUrl's host); the
        // adapter is also granted `localhost`, which is the same server —
        // but another host name, so it must not see the key. The guest
        // decides where it sends (`url`), as a malicious adapter would.
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({
                "llmAdapter": "echo-adapter",
                "llmConfig": {
                    "baseUrl": format!("http://127.0.0.1:{port}/"),
                    "url": format!("http://localhost:{port}/echo"),
                },
                "llmAllowedHosts": ["localhost"],
                "llmSecrets": { "apiKey": SECRET },
            }),
        )
        .await;
        let bound = ok(&r, "configureProjectPlugins");
        assert_eq!(bound["llmSecretNames"], json!(["apiKey"]));
        assert_eq!(bound["llmAllowedHosts"], json!(["127.0.0.1", "localhost"]));
        let r = check(&srv, &owner, &project).await;
        assert_eq!(
            ok(&r, "checkLlmConnection")["text"],
            "200 authorization=-",
            "an extra allowed host got no credential"
        );

        // Toward the credential host the host injects it. (Changing `url`
        // moves neither the credential host nor the granted set: the
        // secrets stay.)
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({
                "llmConfig": {
                    "baseUrl": format!("http://127.0.0.1:{port}/"),
                    "url": format!("http://127.0.0.1:{port}/echo"),
                },
            }),
        )
        .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!(["apiKey"])
        );
        let r = check(&srv, &owner, &project).await;
        assert_eq!(
            ok(&r, "checkLlmConnection")["text"],
            format!("200 authorization=Bearer {SECRET}").as_str()
        );

        // Another port of the credential host is another origin: no key
        // (the binding's `baseUrl` names scheme, host and port).
        let other = echo_server().await;
        let r = configure(
            &srv,
            &owner,
            &project,
            json!({
                "llmConfig": {
                    "baseUrl": format!("http://127.0.0.1:{port}/"),
                    "url": format!("http://127.0.0.1:{other}/echo"),
                },
            }),
        )
        .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!(["apiKey"])
        );
        let r = check(&srv, &owner, &project).await;
        assert_eq!(ok(&r, "checkLlmConnection")["text"], "200 authorization=-");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

/// The slow tenant's provider latency; the fast tenant's check must finish
/// well within it.
const SLOW: Duration = Duration::from_secs(3);
/// Where "well within" ends: without the per-organization cap, the fast
/// check waits for a slot for nearly all of [`SLOW`].
const PROMPT: Duration = Duration::from_millis(1500);

evistream_tests::dual_db_test!(
    exclusive one_organization_cannot_starve_the_others_llm_calls,
    |db: DbKind| async move {
        let slow = FakeLlm::start().await;
        slow.set_latency(SLOW);
        let fast = FakeLlm::start().await;
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(config(&tdb), JobRegistry::new())
            .await
            .unwrap();
        // The engine's adapter slots (half its pool) are more than A's cap:
        // what keeps A's two projects from taking more is the organization
        // cap, proven below by the calls A has in flight at once.
        let allocation = evistream::plugins::runtime::engine::shared(&Default::default())
            .map(|e| format!("{:?}", e.allocation))
            .unwrap_or_else(|e| e);
        eprintln!("plugin engine allocation: {allocation}");

        // Organization A: two projects on the slow provider. Organization
        // B: one project on the fast one.
        let a = srv.register("greedy").await;
        let b = srv.register("modest").await;
        let mut a_projects = Vec::new();
        for name in ["A1", "A2"] {
            let p = srv.project(&a.token, &a.org_id, name).await;
            srv.bind_llm(
                &a.token,
                &p,
                "openai-compatible",
                &slow.base_url,
                "slow",
                "sk-a",
            )
            .await;
            a_projects.push(p);
        }
        let b_project = srv.project(&b.token, &b.org_id, "B").await;
        srv.bind_llm(
            &b.token,
            &b_project,
            "openai-compatible",
            &fast.base_url,
            "fast",
            "sk-b",
        )
        .await;

        // Warm-up: the node's first call compiles the adapter, which is
        // not what is measured below.
        let r = check(&srv, &b, &b_project).await;
        assert_eq!(ok(&r, "checkLlmConnection")["text"], "OK");

        // A fires 4 checks at once, 2 per project: the per-project limit (4)
        // admits them all, and they alone would take every one of the
        // node's 4 adapter slots for 3 s. The organization cap lets 2 run.
        let started = Instant::now();
        let a_calls = futures::future::join_all(
            a_projects
                .iter()
                .flat_map(|p| [p, p])
                .map(|p| check(&srv, &a, p)),
        );
        let b_probe = async {
            // A's calls are at the provider...
            eventually(Duration::from_secs(20), || async {
                (slow.in_flight() >= 2).then_some(())
            })
            .await;
            // ...and whatever more the node would let through has had time
            // to get there.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let a_at_provider = slow.request_count();
            // Then B checks its connection.
            let asked = Instant::now();
            let r = check(&srv, &b, &b_project).await;
            let took = asked.elapsed();
            (r, took, a_at_provider, slow.in_flight())
        };
        let (a_results, (b_result, b_took, a_at_provider, a_in_flight)) =
            tokio::join!(a_calls, b_probe);
        let a_took = started.elapsed();
        eprintln!(
            "B's check took {b_took:?} with {a_at_provider} of A's calls at the provider; \
             A's 4 calls took {a_took:?}"
        );

        // B was served at once, while A's first two calls still waited on
        // their provider: it did not queue behind them for a slot.
        assert_eq!(ok(&b_result, "checkLlmConnection")["text"], "OK");
        assert!(b_took < PROMPT, "B waited {b_took:?} behind A");
        assert_eq!(a_in_flight, 2, "A's calls were still in flight");
        // A had only its 2 calls at the provider, not 4.
        assert_eq!(a_at_provider, 2, "the organization cap");

        // A is slowed, not refused: all 4 calls succeed, 2 at a time.
        for r in &a_results {
            assert_eq!(ok(r, "checkLlmConnection")["text"], "OK");
        }
        assert_eq!(slow.request_count(), 4);
        assert_eq!(slow.max_in_flight(), 2, "never more than 2 at once");
        assert!(a_took >= SLOW * 2, "two rounds of 2: {a_took:?}");

        srv.stop().await;
        tdb.drop_db().await;
    }
);
