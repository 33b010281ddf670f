//! Extraction end to end on real corpus papers, on SQLite and PostgreSQL,
//! with the built-in offline extractor: a parent job with one unit per
//! document, results with host-grounded evidence (code-point spans that
//! point at the quote in the document's text) and provenance; one failing
//! document does not fail the others; retry and cancel of a run; only
//! ACTIVE versions run.

use std::time::Duration;

use evistream::db::entities::document_text;
use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, eventually, ok, refused};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

const PAPERS: [&str; 2] = ["PMC3321528.pdf", "PMC4183415.pdf"];

fn fields() -> Value {
    json!([
        { "name": "sample_size", "type": "INTEGER", "unit": "participants",
          "description": "Total number of participants randomised" },
        { "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster", "factorial"],
          "description": "Trial design" },
        { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"],
          "description": "Masking of participants and investigators" },
        { "name": "arms", "type": "ARRAY", "description": "Trial arms", "fields": [
            { "name": "name", "type": "TEXT" }, { "name": "n", "type": "INTEGER" } ] },
    ])
}

async fn job(srv: &TestServer, token: &str, id: &str) -> Value {
    let r = srv.op(Some(token), "JobUnits", json!({ "id": id })).await;
    ok(&r, "job").clone()
}

async fn wait_job(srv: &TestServer, token: &str, id: &str) -> Value {
    eventually(Duration::from_secs(180), || async {
        let j = job(srv, token, id).await;
        matches!(
            j["state"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        )
        .then_some(j)
    })
    .await
}

/// A project with the papers converted and an approved form: (project, version, doc ids).
async fn setup(srv: &TestServer, token: &str, org: &str) -> (String, String, Vec<String>) {
    let project = srv.project(token, org, "Extraction").await;
    let docs = srv.converted_papers(token, &project, &PAPERS).await;
    let r = srv
        .op(
            Some(token),
            "CreateForm",
            json!({ "projectId": project, "name": "RCT", "fields": fields() }),
        )
        .await;
    let v = ok(&r, "createForm")["latestVersion"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not approved yet: it does not run.
    let r = srv
        .op(
            Some(token),
            "StartExtraction",
            json!({ "projectId": project, "formVersionId": v }),
        )
        .await;
    refused(&r, "startExtraction", "BAD_USER_INPUT");
    let r = srv
        .op(Some(token), "ApproveFormVersion", json!({ "id": v }))
        .await;
    ok(&r, "approveFormVersion");
    (project, v, docs)
}

async fn results(srv: &TestServer, token: &str, project: &str, version: &str) -> Value {
    let r = srv
        .op(
            Some(token),
            "Results",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    ok(&r, "results").clone()
}

evistream_tests::dual_db_test!(
    extraction_runs_offline_with_grounded_evidence,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let (project, version, docs) = setup(&srv, &a.token, &a.org_id).await;

        let r = srv
            .op(
                Some(&a.token),
                "StartExtraction",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        let started = ok(&r, "startExtraction");
        let run = started["id"].as_str().unwrap().to_owned();
        assert_eq!(started["state"], "RUNNING");
        let done = wait_job(&srv, &a.token, &run).await;
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        assert_eq!(done["progress"], 1.0);
        assert_eq!(done["children"].as_array().unwrap().len(), 2);
        // The project lists its runs, each unit naming its document.
        let r = srv
            .gql(
                Some(&a.token),
                "query($id: ID!) { project(id: $id) { extractionRuns { formVersionId documentCount job { id state children { documentId } } } } }",
                json!({ "id": project }),
            )
            .await;
        let runs = ok(&r, "project")["extractionRuns"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0]["formVersionId"], json!(version));
        assert_eq!(runs[0]["documentCount"], 2);
        assert_eq!(runs[0]["job"]["id"], json!(run));
        assert_eq!(runs[0]["job"]["state"], "SUCCEEDED");
        let mut unit_docs: Vec<String> = runs[0]["job"]["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["documentId"].as_str().unwrap().to_owned())
            .collect();
        unit_docs.sort();
        let mut want = docs.clone();
        want.sort();
        assert_eq!(unit_docs, want);
        // Another organization sees no runs of it.
        let other = srv.register("eve").await;
        let r = srv
            .gql(
                Some(&other.token),
                "query($id: ID!) { project(id: $id) { extractionRuns { id } } }",
                json!({ "id": project }),
            )
            .await;
        evistream_tests::assert_code(&r, "NOT_FOUND");

        let res = results(&srv, &a.token, &project, &version).await;
        assert_eq!(res["totalCount"], 2);
        let mut grounded = 0;
        for edge in res["edges"].as_array().unwrap() {
            let node = &edge["node"];
            let doc_id = node["document"]["id"].as_str().unwrap();
            assert!(docs.contains(&doc_id.to_owned()));
            let prov = &node["provenance"];
            assert!(
                prov["extractor"]
                    .as_str()
                    .unwrap()
                    .starts_with("lexical-extractor@0.1.0#"),
                "{prov}"
            );
            assert!(
                prov["converter"].as_str().unwrap().starts_with("pdf-text@"),
                "{prov}"
            );
            assert_eq!(prov["programHash"].as_str().unwrap().len(), 64);
            assert_eq!(prov["model"], Value::Null, "no LLM was used");
            let values = node["values"].as_array().unwrap();
            let paths: Vec<&str> = values.iter().map(|v| v["path"].as_str().unwrap()).collect();
            assert_eq!(paths, ["sample_size", "design", "blinding", "arms"]);
            // The text the offsets point into.
            let r = srv
                .op(Some(&a.token), "Document", json!({ "id": doc_id }))
                .await;
            let text: Vec<char> = ok(&r, "document")["text"]
                .as_str()
                .unwrap()
                .chars()
                .collect();
            for v in values {
                assert!(
                    v["confidence"].as_f64().unwrap() <= 0.6,
                    "honest confidence: {v}"
                );
                for e in v["evidence"].as_array().unwrap() {
                    if e["grounding"] == "EXACT" {
                        let (s, en) = (
                            e["start"].as_u64().unwrap() as usize,
                            e["end"].as_u64().unwrap() as usize,
                        );
                        let span: String = text[s..en].iter().collect();
                        let quote = e["quote"].as_str().unwrap();
                        // The quote, or (a quote across a table row) the
                        // cell in it that holds the value.
                        assert!(
                            span == quote
                                || (quote.contains(span.as_str())
                                    && span.contains(&v["value"].to_string())),
                            "span points at the quote: {span:?} in {quote:?} for {}",
                            v["value"]
                        );
                        assert!(e["page"].as_u64().unwrap() >= 1);
                        grounded += 1;
                    }
                }
            }
            let sample = &values[0];
            if sample["status"] == "FOUND" {
                assert!(sample["value"].is_i64(), "typed: {sample}");
            }
            assert_eq!(
                values[3]["status"], "UNCLEAR",
                "lists are not enumerated offline"
            );
        }
        assert!(
            grounded >= 4,
            "the extractor's quotes are the paper's words"
        );

        // A second run replaces nothing and duplicates nothing: one row per document.
        let r = srv
            .op(
                Some(&a.token),
                "StartExtraction",
                json!({ "projectId": project, "formVersionId": version, "documentIds": [docs[0]] }),
            )
            .await;
        let run2 = ok(&r, "startExtraction")["id"].as_str().unwrap().to_owned();
        assert_eq!(wait_job(&srv, &a.token, &run2).await["state"], "SUCCEEDED");
        let res = results(&srv, &a.token, &project, &version).await;
        assert_eq!(res["totalCount"], 2);

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    one_failing_document_does_not_fail_the_run,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let (project, version, docs) = setup(&srv, &a.token, &a.org_id).await;
        // The second paper loses its text behind the API's back.
        let saved = document_text::Entity::find_by_id(docs[1].as_str())
            .one(&srv.node.app.db)
            .await
            .unwrap()
            .unwrap();
        document_text::Entity::delete_by_id(docs[1].as_str())
            .exec(&srv.node.app.db)
            .await
            .unwrap();
        let run = srv.start_extraction(&a.token, &project, &version).await;
        let done = wait_job(&srv, &a.token, &run).await;
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        assert!(
            done["error"].as_str().unwrap().contains("1 of 2 units"),
            "{done}"
        );
        let states: Vec<&str> = done["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["state"].as_str().unwrap())
            .collect();
        assert!(
            states.contains(&"FAILED") && states.contains(&"SUCCEEDED"),
            "{states:?}"
        );
        assert_eq!(
            results(&srv, &a.token, &project, &version).await["totalCount"],
            1
        );

        // The text comes back; retrying re-runs only the failed unit.
        use sea_orm::ActiveModelTrait;
        let am: document_text::ActiveModel = saved.into();
        am.reset_all().insert(&srv.node.app.db).await.unwrap();
        let r = srv
            .op(Some(&a.token), "RetryJob", json!({ "id": run }))
            .await;
        assert_eq!(ok(&r, "retryJob")["state"], "RUNNING");
        let done = wait_job(&srv, &a.token, &run).await;
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        assert_eq!(done["error"], Value::Null);
        assert_eq!(
            results(&srv, &a.token, &project, &version).await["totalCount"],
            2
        );
        // Nothing left to retry.
        let r = srv
            .op(Some(&a.token), "RetryJob", json!({ "id": run }))
            .await;
        refused(&r, "retryJob", "CONFLICT");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(a_cancelled_run_stops_its_units, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let setup_node = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let a = setup_node.register("alice").await;
    let (project, version, _) = setup(&setup_node, &a.token, &a.org_id).await;
    setup_node.stop().await;
    // An API node without workers: the units stay queued until the cancel.
    let srv = TestServer::start_roles(
        tdb.config(),
        JobRegistry::new(),
        evistream::server::Roles {
            api: true,
            workers: false,
        },
    )
    .await
    .unwrap();
    let run = srv.start_extraction(&a.token, &project, &version).await;
    let r = srv
        .op(Some(&a.token), "CancelJob", json!({ "id": run }))
        .await;
    ok(&r, "cancelJob");
    let done = wait_job(&srv, &a.token, &run).await;
    assert_eq!(done["state"], "CANCELLED", "{done}");
    for c in done["children"].as_array().unwrap() {
        assert_eq!(c["state"], "CANCELLED", "{c}");
    }
    // Nothing was extracted.
    assert_eq!(
        results(&srv, &a.token, &project, &version).await["totalCount"],
        0
    );
    srv.stop().await;
    tdb.drop_db().await;
});
