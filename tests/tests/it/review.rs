//! Human review in SINGLE mode, end to end on a real paper, on SQLite and
//! PostgreSQL: every extracted value starts UNREVIEWED; a reviewer accepts,
//! corrects (type-checked, the quote grounded by the host) and rejects;
//! decisions are kept as history with who and when; completing is refused
//! while a required field is unreviewed, then locks the review until it is
//! reopened with a note; other members see each change live; a VIEWER
//! reads but cannot decide; bad paths and values are refused cleanly.

use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::ws::Subscription;
use evistream_tests::{DbKind, TestDb, TestServer, assert_code, ok, ops};
use serde_json::{Value, json};

fn fields() -> Value {
    json!([
        { "name": "sample_size", "type": "INTEGER", "required": true,
          "description": "Total number of participants randomised" },
        { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"],
          "description": "Masking" },
        { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
    ])
}

/// How many reviews are stored (of any organization).
pub async fn stored_reviews(srv: &TestServer) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    evistream::db::entities::review::Entity::find()
        .count(&srv.node.app.db)
        .await
        .unwrap()
}

/// Runs the project's extraction of `version` to its end.
pub async fn extract(srv: &TestServer, token: &str, project: &str, version: &str) {
    srv.run_extraction(token, project, version).await;
}

pub fn value<'a>(review: &'a Value, path: &str) -> &'a Value {
    review["values"]
        .as_array()
        .expect("values")
        .iter()
        .find(|v| v["path"] == path)
        .unwrap_or_else(|| panic!("no value at {path}: {review}"))
}

/// A form version's export in `format` (`values`: FINAL or EXTRACTED)
/// and its codebook, as downloaded with `token`.
pub async fn export(
    srv: &TestServer,
    token: &str,
    project: &str,
    version: &str,
    format: &str,
    which: &str,
) -> (String, String) {
    let vars = json!({ "projectId": project, "formVersionId": version,
                       "format": format, "values": which });
    let r = srv
        .gql(
            Some(token),
            "mutation($projectId: ID!, $formVersionId: ID!, $format: ExportFormat!, $values: ExportValues) {
               exportResults(projectId: $projectId, formVersionId: $formVersionId, format: $format, values: $values) {
                 url codebookUrl } }",
            vars,
        )
        .await;
    let e = ok(&r, "exportResults");
    let mut texts = Vec::new();
    for key in ["url", "codebookUrl"] {
        let url = e[key].as_str().unwrap().to_owned();
        texts.push(
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let codebook = texts.pop().unwrap();
    (texts.pop().unwrap(), codebook)
}

/// A CSV text as one map of column to cell per row.
pub fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header = rd.headers().unwrap().clone();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A form version's CSV_LONG export (`values`: FINAL or EXTRACTED), one
/// map of column to cell per row.
pub async fn export_long(
    srv: &TestServer,
    token: &str,
    project: &str,
    version: &str,
    which: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    csv_rows(
        &export(srv, token, project, version, "CSV_LONG", which)
            .await
            .0,
    )
}

evistream_tests::dual_db_test!(
    a_single_review_verifies_corrects_rejects_and_locks,
    |db: DbKind| async move { single_review(db).await }
);

async fn single_review(db: DbKind) {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let owner = srv.register("owner").await;
    let viewer = srv.register("viewer").await;
    let outsider = srv.register("outsider").await;
    let r = srv
        .op(
            Some(&owner.token),
            "AddMember",
            json!({ "organizationId": owner.org_id, "email": viewer.email, "role": "VIEWER" }),
        )
        .await;
    ok(&r, "addMember");
    let project = srv.project(&owner.token, &owner.org_id, "Review").await;
    let docs = srv
        .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
        .await;
    let doc = docs[0].clone();
    let version = srv.approved_version(&owner.token, &project, fields()).await;

    // Settings: SINGLE with one reviewer; nonsense refused.
    let r = srv
        .op(
            Some(&owner.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": "SINGLE" }),
        )
        .await;
    assert_eq!(
        ok(&r, "configureReview"),
        &json!({ "mode": "SINGLE", "reviewersPerDocument": 1 })
    );
    let r = srv
        .op(
            Some(&owner.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": "SINGLE", "reviewersPerDocument": 3 }),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    let r = srv
        .op(
            Some(&viewer.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": "SINGLE" }),
        )
        .await;
    assert_code(&r, "FORBIDDEN");

    // Extraction with the offline extractor.
    extract(&srv, &owner.token, &project, &version).await;
    let ids = json!({ "documentId": doc, "formVersionId": version });
    let review = |token: String| {
        let ids = ids.clone();
        let srv = &srv;
        async move {
            let r = srv.op(Some(&token), "Review", ids).await;
            ok(&r, "review").clone()
        }
    };

    // Before any decision: every value is the extractor's, UNREVIEWED.
    let before = review(owner.token.clone()).await;
    assert_eq!(before["status"], "OPEN");
    let values = before["values"].as_array().unwrap();
    assert!(!values.is_empty(), "{before}");
    for v in values {
        assert_eq!(v["state"], "UNREVIEWED", "{v}");
        assert_eq!(v["source"], "EXTRACTOR", "{v}");
        assert_eq!(v["value"], v["extracted"], "{v}");
        assert_eq!(v["decisions"], json!([]), "{v}");
    }
    assert_eq!(
        review(viewer.token.clone()).await["id"],
        before["id"],
        "a VIEWER reads the same review"
    );
    let r = srv.op(Some(&outsider.token), "Review", ids.clone()).await;
    assert_code(&r, "NOT_FOUND");
    // Reading reviews, alone or a results page of them, stores nothing.
    let vars = json!({ "projectId": project, "formVersionId": version, "first": 10 });
    let page = srv.op(Some(&viewer.token), "ResultsReviews", vars).await;
    assert_eq!(
        ok(&page, "results")["edges"][0]["node"]["review"]["id"],
        before["id"]
    );

    // Required sample_size is unreviewed: completion is refused.
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_code(&r, "CONFLICT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sample_size"),
        "{r}"
    );
    assert_eq!(
        stored_reviews(&srv).await,
        0,
        "reads or a refused completion wrote a review"
    );

    // Another member watches the project's reviews.
    let mut watch = Subscription::start(
        &srv.ws_url(),
        Some(&viewer.token),
        &ops::operation("ReviewUpdated"),
        json!({ "projectId": project }),
    )
    .await
    .unwrap();

    let verify = |vars: Value| {
        let mut v = ids.clone();
        v.as_object_mut()
            .unwrap()
            .extend(vars.as_object().unwrap().clone());
        v
    };
    // Bad input first: nothing is written.
    for (vars, code) in [
        (
            json!({ "path": "nonsense", "verdict": "REJECT" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "arms[0].dose", "verdict": "REJECT" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "arms", "verdict": "CORRECT", "value": [{ "name": "x" }] }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "sample_size", "verdict": "CORRECT" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "sample_size", "verdict": "CORRECT", "value": "120" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "blinding", "verdict": "CORRECT", "value": "triple-blind" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "path": "sample_size", "verdict": "REJECT", "quote": "some words" }),
            "BAD_USER_INPUT",
        ),
    ] {
        let r = srv
            .op(Some(&owner.token), "VerifyValue", verify(vars.clone()))
            .await;
        assert_code(&r, code);
    }
    let r = srv
        .op(
            Some(&viewer.token),
            "VerifyValue",
            verify(json!({ "path": "sample_size", "verdict": "REJECT" })),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = srv
        .op(
            Some(&outsider.token),
            "VerifyValue",
            verify(json!({ "path": "sample_size", "verdict": "REJECT" })),
        )
        .await;
    assert_code(&r, "NOT_FOUND");
    assert_eq!(
        review(owner.token.clone()).await["values"],
        before["values"],
        "refused decisions left nothing behind"
    );

    // A correction with a quote from the paper, grounded by the host.
    let text = srv
        .gql(
            Some(&owner.token),
            "query($id: ID!) { document(id: $id) { text } }",
            json!({ "id": doc }),
        )
        .await;
    let text = text["data"]["document"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let quote: String = text
        .split_whitespace()
        .skip(40)
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    let r = srv
        .op(
            Some(&owner.token),
            "VerifyValue",
            verify(
                json!({ "path": "sample_size", "verdict": "CORRECT", "value": 999,
                           "quote": quote, "note": "counted from the flow chart" }),
            ),
        )
        .await;
    let corrected = ok(&r, "verifyValue");
    // The first decision stored the review under the id readers saw.
    assert_eq!(stored_reviews(&srv).await, 1);
    assert_eq!(review(owner.token.clone()).await["id"], before["id"]);
    assert_eq!(corrected["state"], "CORRECTED");
    assert_eq!(corrected["source"], "REVIEWER");
    assert_eq!(corrected["value"], 999);
    let ev = &corrected["evidence"][0];
    assert_eq!(ev["grounding"], "EXACT", "{corrected}");
    let (start, end) = (
        ev["start"].as_u64().unwrap() as usize,
        ev["end"].as_u64().unwrap() as usize,
    );
    let found: String = text.chars().skip(start).take(end - start).collect();
    let words: Vec<&str> = quote.split_whitespace().collect();
    assert!(
        found.contains(words[0]) && found.contains(words[words.len() - 1]),
        "the span {found:?} is the quote {quote:?}"
    );
    let event = watch
        .next(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("an update");
    assert_eq!(event["data"]["reviewUpdated"]["id"], before["id"]);
    assert_eq!(event["data"]["reviewUpdated"]["status"], "OPEN");

    // Reject one value, accept another (whatever the extractor found).
    let r = srv
        .op(
            Some(&owner.token),
            "VerifyValue",
            verify(json!({ "path": "blinding", "verdict": "REJECT" })),
        )
        .await;
    let rejected = ok(&r, "verifyValue");
    assert_eq!(
        (&rejected["state"], &rejected["value"], &rejected["source"]),
        (&json!("REJECTED"), &Value::Null, &json!("REVIEWER"))
    );
    let other = values
        .iter()
        .find(|v| v["path"] != "sample_size" && v["path"] != "blinding")
        .map(|v| v["path"].as_str().unwrap().to_owned());
    if let Some(path) = &other {
        let r = srv
            .op(
                Some(&owner.token),
                "VerifyValue",
                verify(json!({ "path": path, "verdict": "ACCEPT" })),
            )
            .await;
        let accepted = ok(&r, "verifyValue");
        assert_eq!(accepted["state"], "VERIFIED");
        assert_eq!(accepted["source"], "EXTRACTOR");
        assert_eq!(accepted["value"], value(&before, path)["extracted"]);
    }
    // An item the extractor missed, added by the reviewer.
    let r = srv
        .op(
            Some(&owner.token),
            "VerifyValue",
            verify(json!({ "path": "arms[7].name", "verdict": "CORRECT", "value": "usual care" })),
        )
        .await;
    assert_eq!(ok(&r, "verifyValue")["state"], "CORRECTED");

    // The history: who, what, when, why.
    let after = review(viewer.token.clone()).await;
    let s = value(&after, "sample_size");
    assert_eq!(s["state"], "CORRECTED");
    assert_eq!(s["extracted"], value(&before, "sample_size")["extracted"]);
    let d = &s["decisions"][0];
    assert_eq!(d["reviewer"]["email"], json!(owner.email));
    assert_eq!(d["verdict"], "CORRECT");
    assert_eq!(d["value"], 999);
    assert_eq!(d["note"], "counted from the flow chart");
    assert!(d["at"].as_str().unwrap().starts_with("20"), "{d}");
    assert_eq!(value(&after, "arms[7].name")["extracted"], Value::Null);

    // Complete: locked until reopened with a note.
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_eq!(ok(&r, "completeReview")["status"], "COMPLETE");
    let r = srv
        .op(
            Some(&owner.token),
            "VerifyValue",
            verify(json!({ "path": "sample_size", "verdict": "REJECT" })),
        )
        .await;
    assert_code(&r, "CONFLICT");
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_code(&r, "CONFLICT");
    let r = srv
        .op(
            Some(&owner.token),
            "ReopenReview",
            verify(json!({ "note": "  " })),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    let r = srv
        .op(
            Some(&owner.token),
            "ReopenReview",
            verify(json!({ "note": "a second look at the flow chart" })),
        )
        .await;
    assert_eq!(ok(&r, "reopenReview")["status"], "OPEN");
    let r = srv
        .op(
            Some(&owner.token),
            "VerifyValue",
            verify(json!({ "path": "sample_size", "verdict": "CORRECT", "value": 1000 })),
        )
        .await;
    assert_eq!(ok(&r, "verifyValue")["value"], 1000);
    let history = review(owner.token.clone()).await;
    assert_eq!(
        value(&history, "sample_size")["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["value"].clone())
            .collect::<Vec<_>>(),
        [json!(999), json!(1000)],
        "nothing is overwritten"
    );

    // Exports: FINAL holds the reviewed values, EXTRACTED the extractor's;
    // CSV_LONG says the state, source and reviewer of each.
    let long = |which: &'static str| export_long(&srv, &owner.token, &project, &version, which);
    let row = |rows: &[std::collections::HashMap<String, String>], path: &str| {
        rows.iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("no row for {path}"))
            .clone()
    };
    let final_rows = long("FINAL").await;
    let s = row(&final_rows, "sample_size");
    assert_eq!(
        (
            s["value"].as_str(),
            s["state"].as_str(),
            s["source"].as_str()
        ),
        ("1000", "CORRECTED", "REVIEWER")
    );
    assert_eq!(s["reviewer"], owner.email);
    assert_eq!(row(&final_rows, "blinding")["value"], "");
    assert_eq!(row(&final_rows, "blinding")["state"], "REJECTED");
    assert_eq!(row(&final_rows, "arms[7].name")["value"], "usual care");
    let extracted_rows = long("EXTRACTED").await;
    let s = row(&extracted_rows, "sample_size");
    let extracted = value(&before, "sample_size")["extracted"].clone();
    assert_eq!(
        s["value"],
        match &extracted {
            Value::Null => String::new(),
            v => v.to_string(),
        }
    );
    assert_eq!(
        (s["state"].as_str(), s["source"].as_str()),
        ("CORRECTED", "EXTRACTOR")
    );
    assert!(
        extracted_rows.iter().all(|r| r["path"] != "arms[7].name"),
        "EXTRACTED holds the extractor's values only"
    );

    // The figures, and the disclosure written from the same records.
    let r = srv
        .gql(
            Some(&viewer.token),
            "query($p: ID!, $v: ID!) { reviewSummary(projectId: $p, formVersionId: $v) { \
               documents complete disputed extracted unreviewed verified corrected rejected \
               fields { path reviewed extractorAccepted extractorCorrected agreement kappa } } }",
            json!({ "p": project, "v": version }),
        )
        .await;
    let summary = ok(&r, "reviewSummary");
    let n = values.len() as i64;
    let accepted = i64::from(other.is_some());
    assert_eq!(
        summary,
        &json!({
            "documents": 1, "complete": 0, "disputed": 0, "extracted": n,
            "unreviewed": n - 2 - accepted, "verified": accepted, "corrected": 1, "rejected": 1,
            "fields": summary["fields"],
        })
    );
    let field = |path: &str| {
        summary["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap()
            .clone()
    };
    assert_eq!(
        field("sample_size"),
        json!({ "path": "sample_size", "reviewed": 1, "extractorAccepted": 0,
                "extractorCorrected": 1, "agreement": null, "kappa": null })
    );
    assert_eq!(field("arms[].name")["reviewed"], 1, "the added item");
    let r = srv
        .op(
            Some(&viewer.token),
            "Disclosure",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let md = ok(&r, "disclosure")["markdown"]
        .as_str()
        .unwrap()
        .to_owned();
    for needle in [
        "lexical-extractor@".to_owned(),
        "pdf-text@".to_owned(),
        "without a large language model".to_owned(),
        format!("Of {n} extracted values, {accepted} "),
        "1 (".to_owned(),
        format!("{} (", n - 2 - accepted),
        "Reviewers added 1 value(s)".to_owned(),
        "0 of 1 review(s) are complete".to_owned(),
        "| `sample_size` | 1 | 0 | 1 |".to_owned(),
    ] {
        assert!(md.contains(&needle), "{needle:?} not in:\n{md}");
    }

    // Ten decisions on one value at the same moment: all kept, in order.
    let calls = (0..10).map(|i| {
        srv.op(
            Some(&owner.token),
            "VerifyValue",
            verify(json!({ "path": "sample_size", "verdict": "CORRECT", "value": 2000 + i })),
        )
    });
    for r in futures::future::join_all(calls).await {
        ok(&r, "verifyValue");
    }
    let history = review(owner.token.clone()).await;
    let mut decided: Vec<i64> = value(&history, "sample_size")["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["value"].as_i64().unwrap())
        .collect();
    assert_eq!(decided.len(), 12, "{decided:?}");
    let last = value(&history, "sample_size")["value"].as_i64().unwrap();
    assert_eq!(Some(&last), decided.last(), "the latest decision decides");
    decided.sort();
    assert_eq!(decided[2..], (2000..2010).collect::<Vec<_>>()[..]);

    // Extracting the document again keeps the decisions on the same values.
    extract(&srv, &owner.token, &project, &version).await;
    let again = review(owner.token.clone()).await;
    assert_eq!(value(&again, "sample_size")["state"], "CORRECTED");
    assert_eq!(value(&again, "sample_size")["value"], last);
    assert_eq!(value(&again, "blinding")["state"], "REJECTED");

    // The extractor scored against the complete review: only the values
    // people decided count, a rejection as "not reported".
    let evaluate = |against: &'static str| {
        let vars = json!({ "p": project, "v": version, "a": against });
        let srv = &srv;
        let token = owner.token.clone();
        async move {
            let r = srv
                .gql(
                    Some(&token),
                    "query($p: ID!, $v: ID!, $a: Reference) { evaluation(projectId: $p, \
                     formVersionId: $v, against: $a) { documents overall { support correct } \
                     fields { path support correct } } }",
                    vars,
                )
                .await;
            ok(&r, "evaluation").clone()
        }
    };
    assert_eq!(
        evaluate("REVIEW").await["documents"],
        0,
        "no complete review yet"
    );
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_eq!(ok(&r, "completeReview")["status"], "COMPLETE");
    let e = evaluate("REVIEW").await;
    assert_eq!(e["documents"], 1);
    let score = |path: &str| {
        e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| json!({ "support": f["support"], "correct": f["correct"] }))
            .unwrap_or_else(|| panic!("no score for {path}: {e}"))
    };
    // Corrected and rejected: the extractor was wrong; the added item it missed.
    assert_eq!(
        score("sample_size"),
        json!({ "support": 1, "correct": 0.0 })
    );
    // Rejected: right only if the extractor had found nothing either.
    let blinding_null = value(&before, "blinding")["extracted"].is_null();
    assert_eq!(score("blinding")["correct"], f64::from(blinding_null));
    assert_eq!(
        score("arms[].name"),
        json!({ "support": 1, "correct": 0.0 })
    );
    let accepted_support = i64::from(other.is_some());
    assert_eq!(e["overall"]["support"], 3 + accepted_support);
    assert_eq!(
        evaluate("GROUND_TRUTH").await["documents"],
        0,
        "nothing imported"
    );

    srv.stop().await;
    tdb.drop_db().await;
}
