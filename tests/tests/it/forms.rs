//! Forms end to end, on SQLite and PostgreSQL: typed nested fields with
//! precise validation errors, immutable versions compiled into a
//! deterministic, content-addressed extraction program, and the review
//! workflow (approve → ACTIVE, previous → SUPERSEDED; regenerate with
//! feedback → a new version that records it).

use evistream::forms::program::canonical_json;
use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, ok, refused};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn trial_fields() -> Value {
    json!([
        { "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"],
          "description": "Trial design", "required": true },
        { "name": "sample_size", "type": "INTEGER", "unit": "participants",
          "description": "Number randomized", "hints": "Look in the CONSORT diagram" },
        { "name": "blinded", "type": "BOOLEAN" },
        { "name": "arms", "type": "ARRAY", "description": "Trial arms", "fields": [
            { "name": "name", "type": "TEXT" },
            { "name": "n", "type": "INTEGER", "unit": "participants" },
            { "name": "outcomes", "type": "ARRAY", "fields": [
                { "name": "name", "type": "TEXT" },
                { "name": "events", "type": "INTEGER" },
                { "name": "mean", "type": "NUMBER", "unit": "mmHg" },
            ]},
        ]},
    ])
}

async fn create(srv: &TestServer, token: &str, project: &str, name: &str, fields: Value) -> Value {
    srv.op(
        Some(token),
        "CreateForm",
        json!({ "projectId": project, "name": name, "description": "RCT basics", "fields": fields }),
    )
    .await
}

async fn version(srv: &TestServer, token: &str, id: &str) -> Value {
    let r = srv
        .op(Some(token), "FormVersion", json!({ "id": id }))
        .await;
    ok(&r, "formVersion").clone()
}

evistream_tests::dual_db_test!(
    forms_compile_and_go_through_review,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let project = srv.project(&a.token, &a.org_id, "Forms").await;

        let r = create(&srv, &a.token, &project, "Trial basics", trial_fields()).await;
        let form = ok(&r, "createForm").clone();
        assert_eq!(form["name"], "Trial basics");
        assert_eq!(form["latestVersion"]["number"], 1);
        assert_eq!(form["latestVersion"]["status"], "AWAITING_REVIEW");
        let v1_id = form["latestVersion"]["id"].as_str().unwrap().to_owned();

        // The program: ordered steps, dependencies, schemas; hashed canonically.
        let v1 = version(&srv, &a.token, &v1_id).await;
        let hash = v1["programHash"].as_str().unwrap().to_owned();
        assert_eq!(hash.len(), 64);
        let program = &v1["program"];
        let steps: Vec<&str> = program["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["general", "arms", "arms.outcomes"]);
        assert_eq!(program["steps"][2]["depends_on"], json!(["arms"]));
        assert_eq!(program["steps"][2]["for_each"], "arms[]");
        assert_eq!(
            program["steps"][0]["json_schema"]["properties"]["sample_size"]["properties"]["value"]
                ["type"],
            json!(["integer", "null"])
        );
        let instructions = program["steps"][0]["instructions"].as_str().unwrap();
        assert!(
            instructions.contains("`sample_size` (integer, unit: participants)")
                && instructions.contains("Look in the CONSORT diagram")
                && instructions.contains("parallel | crossover | cluster"),
            "{instructions}"
        );
        let recomputed = hex_sha(&canonical_json(program));
        assert_eq!(
            recomputed, hash,
            "programHash is the sha256 of the canonical program"
        );

        // Deterministic: the same form elsewhere compiles to the same program.
        let other = srv.project(&a.token, &a.org_id, "Elsewhere").await;
        let r = create(&srv, &a.token, &other, "Trial basics", trial_fields()).await;
        let twin = ok(&r, "createForm")["latestVersion"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            version(&srv, &a.token, &twin).await["programHash"],
            json!(hash)
        );

        // Approve; twice is a conflict.
        let r = srv
            .op(Some(&a.token), "ApproveFormVersion", json!({ "id": v1_id }))
            .await;
        let approved = ok(&r, "approveFormVersion");
        assert_eq!(approved["status"], "ACTIVE");
        assert_eq!(approved["programHash"], json!(hash));
        let r = srv
            .op(Some(&a.token), "ApproveFormVersion", json!({ "id": v1_id }))
            .await;
        refused(&r, "approveFormVersion", "CONFLICT");

        // Regenerate with feedback: a new version recording it.
        let r = srv
            .op(
                Some(&a.token),
                "RegenerateFormVersion",
                json!({ "id": v1_id, "feedback": "   " }),
            )
            .await;
        refused(&r, "regenerateFormVersion", "BAD_USER_INPUT");
        let feedback = "Count participants randomized, not those analysed.";
        let r = srv
            .op(
                Some(&a.token),
                "RegenerateFormVersion",
                json!({ "id": v1_id, "feedback": feedback }),
            )
            .await;
        let v2 = ok(&r, "regenerateFormVersion").clone();
        assert_eq!(v2["number"], 2);
        assert_eq!(v2["status"], "AWAITING_REVIEW");
        let v2_id = v2["id"].as_str().unwrap().to_owned();
        let v2 = version(&srv, &a.token, &v2_id).await;
        assert_ne!(v2["programHash"], json!(hash));
        assert_eq!(v2["program"]["feedback"], json!([feedback]));
        assert!(
            v2["program"]["instructions"]
                .as_str()
                .unwrap()
                .contains(feedback)
        );
        let form_id = form["id"].as_str().unwrap().to_owned();
        let d = detail(&srv, &a.token, &form_id).await;
        assert_eq!(
            d["activeVersion"]["number"], 1,
            "v1 stays active until v2 is approved"
        );
        assert_eq!(d["versions"][1]["feedback"], json!(feedback));
        assert_eq!(d["versions"][1]["regeneratedFrom"], json!(v1_id));

        // Approving v2 supersedes v1.
        let r = srv
            .op(Some(&a.token), "ApproveFormVersion", json!({ "id": v2_id }))
            .await;
        assert_eq!(ok(&r, "approveFormVersion")["status"], "ACTIVE");
        let d = detail(&srv, &a.token, &form_id).await;
        let statuses: Vec<&str> = d["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["SUPERSEDED", "ACTIVE"]);

        // Changing the fields makes version 3; the old versions are unchanged.
        let mut fields = trial_fields();
        fields
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "country", "type": "TEXT" }));
        let r = srv
            .op(
                Some(&a.token),
                "UpdateForm",
                json!({ "id": form_id, "fields": fields }),
            )
            .await;
        let updated = ok(&r, "updateForm");
        assert_eq!(updated["latestVersion"]["number"], 3);
        assert_eq!(updated["latestVersion"]["status"], "AWAITING_REVIEW");
        let d = detail(&srv, &a.token, &form_id).await;
        assert_eq!(d["activeVersion"]["number"], 2);
        assert_eq!(d["versions"][0]["fields"], d["versions"][1]["fields"]);
        assert_eq!(d["versions"][2]["fields"].as_array().unwrap().len(), 5);

        srv.stop().await;
        tdb.drop_db().await;
    }
);

async fn detail(srv: &TestServer, token: &str, id: &str) -> Value {
    let r = srv.op(Some(token), "FormDetail", json!({ "id": id })).await;
    ok(&r, "form").clone()
}

fn hex_sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

evistream_tests::dual_db_test!(bad_forms_are_refused_precisely, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let a = srv.register("alice").await;
    let project = srv.project(&a.token, &a.org_id, "Bad forms").await;
    let deep = json!([{ "name": "l1", "type": "OBJECT", "fields": [
        { "name": "l2", "type": "OBJECT", "fields": [
            { "name": "l3", "type": "OBJECT", "fields": [
                { "name": "l4", "type": "ARRAY", "fields": [
                    { "name": "l5", "type": "OBJECT", "fields": [{ "name": "x", "type": "TEXT" }] }
                ]}
            ]}
        ]}
    ]}]);
    let cases = [
        (json!([]), "at least one field"),
        (
            json!([{ "name": "design", "type": "ENUM" }]),
            "`design`: an ENUM needs options",
        ),
        (
            json!([{ "name": "n", "type": "INTEGER" }, { "name": "n", "type": "TEXT" }]),
            "`n` appears twice",
        ),
        (
            json!([{ "name": "arms", "type": "ARRAY", "fields": [
                { "name": "x", "type": "TEXT" }, { "name": "x", "type": "TEXT" }] }]),
            "`arms[].x` appears twice",
        ),
        (deep, "nesting deeper than 4"),
        (
            json!([{ "name": "arms", "type": "ARRAY" }]),
            "needs sub-fields",
        ),
        (
            json!([{ "name": "t", "type": "TEXT", "options": ["a"] }]),
            "only an ENUM has options",
        ),
        (
            json!([{ "name": "has space", "type": "TEXT" }]),
            "letters, digits or _",
        ),
    ];
    for (fields, message) in cases {
        let r = create(&srv, &a.token, &project, "Bad", fields.clone()).await;
        refused(&r, "createForm", "BAD_USER_INPUT");
        let m = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            m.contains(message),
            "{fields}: expected `{message}` in `{m}`"
        );
    }
    // An unknown type never reaches the service: GraphQL refuses the enum value.
    let r = create(
        &srv,
        &a.token,
        &project,
        "Bad",
        json!([{ "name": "x", "type": "COLOR" }]),
    )
    .await;
    refused(&r, "createForm", "BAD_USER_INPUT");
    // Nothing was created.
    let r = srv
        .gql(
            Some(&a.token),
            "query($id: ID!) { project(id: $id) { forms { id } } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(ok(&r, "project")["forms"], json!([]));
    srv.stop().await;
    tdb.drop_db().await;
});
