//! Extraction through an LLM, end to end, on SQLite and PostgreSQL: the
//! built-in `openai-compatible` adapter speaks the OpenAI Chat Completions
//! protocol to a local test server (tests/support/llm.rs) that answers from
//! the JSON Schema and the text it was sent; the built-in `llm-extractor`
//! runs the program's steps (lists, then per-item steps); the host's
//! gateway caches (a re-run makes no request), retries rate limits and
//! server errors, and accounts tokens and cost; a malformed answer gets a
//! repair round; values are grounded in the paper.

use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::llm::{FakeLlm, Fault};
use evistream_tests::{DbKind, TestDb, TestServer, eventually, ok};
use serde_json::{Value, json};

fn fields() -> Value {
    json!([
        { "name": "sample_size", "type": "INTEGER", "description": "Total number randomised" },
        { "name": "trial_design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"] },
        { "name": "arms", "type": "ARRAY", "description": "Trial arms", "fields": [
            { "name": "name", "type": "TEXT" },
            { "name": "outcomes", "type": "ARRAY", "fields": [ { "name": "events", "type": "INTEGER" } ] },
        ]},
    ])
}

async fn run(srv: &TestServer, token: &str, project: &str, version: &str) -> Value {
    let id = srv.start_extraction(token, project, version).await;
    srv.job_end(token, &id).await;
    let r = srv
        .op(Some(token), "JobLlmUsage", json!({ "id": id }))
        .await;
    ok(&r, "job").clone()
}

evistream_tests::dual_db_test!(
    extraction_through_an_openai_compatible_provider,
    |db: DbKind| async move {
        let fake = FakeLlm::start().await;
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true; // the provider is on loopback
        config.llm.retry_base_ms = 50;
        config.llm.prices.insert(
            "test-model".into(),
            evistream::config::ModelPrice {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
            },
        );
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let a = srv.register("alice").await;
        let project = srv.project(&a.token, &a.org_id, "LLM").await;
        let bound = srv
            .bind_llm(
                &a.token,
                &project,
                "openai-compatible",
                &fake.base_url,
                "test-model",
                "sk-test-123",
            )
            .await;
        assert_eq!(bound["llmAdapter"]["id"], "openai-compatible");
        let r = srv
            .op(
                Some(&a.token),
                "CheckLlmConnectionStats",
                json!({ "projectId": project }),
            )
            .await;
        let check = ok(&r, "checkLlmConnection");
        assert_eq!(check["text"], "OK");
        assert_eq!(check["model"], "test-model-fake");
        let (headers, body) = fake.requests().pop().unwrap();
        assert_eq!(
            headers["authorization"], "Bearer sk-test-123",
            "the host injected the key"
        );
        assert_eq!(body["model"], "test-model");

        // A real paper, converted.
        srv.converted_papers(&a.token, &project, &["PMC3321528.pdf"])
            .await;
        let version = srv.approved_version(&a.token, &project, fields()).await;

        let before = fake.request_count();
        let j = run(&srv, &a.token, &project, &version).await;
        assert_eq!(j["state"], "SUCCEEDED", "{j}");
        let sent = fake.request_count() - before;
        if sent != 4 {
            let r = srv
                .op(
                    Some(&a.token),
                    "Results",
                    json!({ "projectId": project, "formVersionId": version }),
                )
                .await;
            eprintln!("job {j}\nresults {r}");
        }
        // general, arms, then outcomes for each of the two arms the fake lists.
        assert_eq!(sent, 4, "one request per step and item");
        let usage = &j["llmUsage"];
        assert_eq!(usage["calls"], 4);
        assert_eq!(usage["cachedCalls"], 0);
        assert!(usage["inputTokens"].as_u64().unwrap() > 0);
        let cost = usage["costUsd"].as_f64().unwrap();
        let expect = (usage["inputTokens"].as_f64().unwrap() * 1.0
            + usage["outputTokens"].as_f64().unwrap() * 2.0)
            / 1e6;
        assert!((cost - expect).abs() < 1e-12, "{cost} vs {expect}");
        // Every request asked for the step's schema, strictly.
        for (_, body) in fake.requests().iter().skip(before) {
            assert_eq!(body["response_format"]["type"], "json_schema");
            assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        }

        let r = srv
            .op(
                Some(&a.token),
                "Results",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        let node = &ok(&r, "results")["edges"][0]["node"];
        let prov = &node["provenance"];
        assert!(
            prov["extractor"]
                .as_str()
                .unwrap()
                .starts_with("llm-extractor@0.1.0#"),
            "{prov}"
        );
        assert_eq!(prov["model"], "test-model-fake");
        let values = node["values"].as_array().unwrap();
        let paths: Vec<&str> = values.iter().map(|v| v["path"].as_str().unwrap()).collect();
        for p in [
            "sample_size",
            "trial_design",
            "arms[0].name",
            "arms[1].name",
            "arms[0].outcomes[0].events",
            "arms[1].outcomes[1].events",
        ] {
            assert!(paths.contains(&p), "{p} in {paths:?}");
        }
        // The fake quotes lines of what it was sent: the paper's words, found by the host.
        let found: Vec<&Value> = values.iter().filter(|v| v["status"] == "FOUND").collect();
        assert!(!found.is_empty());
        for v in &found {
            assert_eq!(v["evidence"][0]["grounding"], "EXACT", "{v}");
        }

        // A re-run of the same program on the same document: zero provider requests.
        let before = fake.request_count();
        let j = run(&srv, &a.token, &project, &version).await;
        assert_eq!(j["state"], "SUCCEEDED");
        assert_eq!(fake.request_count(), before, "answered from the cache");
        assert_eq!(j["llmUsage"]["cachedCalls"], 4);
        assert_eq!(j["llmUsage"]["costUsd"], 0.0);

        // A new version: only its changed step misses the cache. On it, a 429
        // with Retry-After and a 500 are retried, a malformed answer gets a
        // repair round.
        let mut f = fields();
        f.as_array_mut()
            .unwrap()
            .push(json!({ "name": "blinded", "type": "BOOLEAN" }));
        let v2 = srv.approved_version(&a.token, &project, f).await;
        fake.fail_next(Fault::RateLimited(1));
        fake.fail_next(Fault::ServerError);
        fake.fail_next(Fault::MalformedJson);
        let before = fake.request_count();
        let started = std::time::Instant::now();
        let j = run(&srv, &a.token, &project, &v2).await;
        assert_eq!(j["state"], "SUCCEEDED", "{j}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After was honoured"
        );
        assert_eq!(
            fake.request_count() - before,
            4,
            "the changed step: a 429, a 500, a malformed answer, the repair"
        );
        assert_eq!(j["llmUsage"]["cachedCalls"], 3, "the unchanged steps");
        assert_eq!(j["llmUsage"]["calls"], 5);
        assert_eq!(j["llmUsage"]["failedCalls"], 0);

        // Wrong-schema answers twice: the step's fields are UNCLEAR, the run goes on.
        let mut f = fields();
        f.as_array_mut()
            .unwrap()
            .push(json!({ "name": "country", "type": "TEXT" }));
        let v3 = srv.approved_version(&a.token, &project, f).await;
        fake.fail_next(Fault::WrongSchema);
        fake.fail_next(Fault::WrongSchema);
        let j = run(&srv, &a.token, &project, &v3).await;
        assert_eq!(j["state"], "SUCCEEDED", "{j}");
        let r = srv
            .op(
                Some(&a.token),
                "Results",
                json!({ "projectId": project, "formVersionId": v3 }),
            )
            .await;
        let values = ok(&r, "results")["edges"][0]["node"]["values"]
            .as_array()
            .unwrap()
            .clone();
        let sample = values.iter().find(|v| v["path"] == "sample_size").unwrap();
        assert_eq!(sample["status"], "UNCLEAR");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    anthropic_and_gemini_adapters_speak_their_protocols,
    |db: DbKind| async move {
        let fake = FakeLlm::start().await;
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let a = srv.register("alice").await;
        let providers = [
            (
                "anthropic",
                fake.base_url.clone(),
                "claude-test",
                "x-api-key",
            ),
            (
                "gemini",
                fake.gemini_url.clone(),
                "gemini-test",
                "x-goog-api-key",
            ),
        ];
        for (adapter, base, model, auth) in providers {
            let project = srv.project(&a.token, &a.org_id, adapter).await;
            srv.bind_llm(
                &a.token,
                &project,
                adapter,
                &base,
                model,
                &format!("key-{adapter}"),
            )
            .await;
            // A rate limit reaches the caller typed (the check does not retry).
            fake.fail_next(Fault::RateLimited(3));
            let r = srv
                .op(
                    Some(&a.token),
                    "CheckLlmConnectionStats",
                    json!({ "projectId": project }),
                )
                .await;
            assert_eq!(r["errors"][0]["extensions"]["code"], "PLUGIN_FAILED", "{r}");
            assert_eq!(
                r["errors"][0]["extensions"]["reason"], "LLM_RATE_LIMITED",
                "{r}"
            );
            let r = srv
                .op(
                    Some(&a.token),
                    "CheckLlmConnectionStats",
                    json!({ "projectId": project }),
                )
                .await;
            let check = ok(&r, "checkLlmConnection");
            assert_eq!(check["text"], "OK", "{adapter}");
            assert_eq!(check["model"], json!(format!("{model}-fake")));
            let (headers, _) = fake.requests().pop().unwrap();
            assert_eq!(
                headers[auth],
                format!("key-{adapter}").as_str(),
                "the host injected the key"
            );
            assert!(headers.get("authorization").is_none());

            srv.converted_papers(&a.token, &project, &["PMC3321528.pdf"])
                .await;
            let version = srv.approved_version(&a.token, &project, fields()).await;
            let before = fake.request_count();
            let j = run(&srv, &a.token, &project, &version).await;
            assert_eq!(j["state"], "SUCCEEDED", "{adapter}: {j}");
            assert_eq!(fake.request_count() - before, 4, "{adapter}");
            for (_, body) in fake.requests().iter().skip(before) {
                match adapter {
                    "anthropic" => {
                        assert_eq!(body["tool_choice"]["type"], "tool");
                        assert!(body["tools"][0]["input_schema"].is_object());
                    }
                    _ => {
                        assert_eq!(
                            body["generationConfig"]["responseMimeType"],
                            "application/json"
                        );
                        assert!(body["generationConfig"]["responseJsonSchema"].is_object());
                    }
                }
            }
            let r = srv
                .op(
                    Some(&a.token),
                    "Results",
                    json!({ "projectId": project, "formVersionId": version }),
                )
                .await;
            let node = &ok(&r, "results")["edges"][0]["node"];
            assert_eq!(node["provenance"]["model"], json!(format!("{model}-fake")));
            assert!(
                node["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["path"] == "arms[1].outcomes[0].events")
            );
        }
        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    a_run_is_cancelled_while_its_unit_waits_on_the_provider,
    |db: DbKind| async move {
        let fake = FakeLlm::start().await;
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let a = srv.register("alice").await;
        let project = srv.project(&a.token, &a.org_id, "Slow").await;
        srv.bind_llm(
            &a.token,
            &project,
            "openai-compatible",
            &fake.base_url,
            "slow",
            "sk",
        )
        .await;
        srv.converted_papers(&a.token, &project, &["PMC3321528.pdf"])
            .await;
        let version = srv.approved_version(&a.token, &project, fields()).await;
        // Every answer takes 20 s: the unit is mid-call when the cancel comes.
        fake.set_latency(Duration::from_secs(20));
        let id = srv.start_extraction(&a.token, &project, &version).await;
        eventually(Duration::from_secs(30), || async {
            (fake.request_count() > 0).then_some(())
        })
        .await;
        let asked = std::time::Instant::now();
        let r = srv
            .op(Some(&a.token), "CancelJob", json!({ "id": id }))
            .await;
        ok(&r, "cancelJob");
        let j = eventually(Duration::from_secs(15), || async {
            let r = srv
                .op(Some(&a.token), "JobLlmUsage", json!({ "id": id }))
                .await;
            let j = r["data"]["job"].clone();
            (j["state"] == "CANCELLED").then_some(j)
        })
        .await;
        assert!(
            asked.elapsed() < Duration::from_secs(15),
            "stopped without waiting for the provider"
        );
        assert_eq!(j["state"], "CANCELLED");
        let r = srv
            .op(
                Some(&a.token),
                "Results",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        assert_eq!(ok(&r, "results")["totalCount"], 0, "nothing half-written");
        fake.set_latency(Duration::ZERO);
        srv.stop().await;
        tdb.drop_db().await;
    }
);
