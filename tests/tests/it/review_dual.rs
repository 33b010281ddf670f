//! Human review in DUAL mode, end to end on two real papers, on SQLite and
//! PostgreSQL: two reviewers extract each document blind (neither sees the
//! extractor's values nor the other's before submitting); the extractor
//! counts as one more extraction; values all agree on are AGREED, the rest
//! DISPUTED until an adjudicator who did not extract resolves them with a
//! note; completion waits for that and then locks. The summary's agreement
//! and kappa match a case worked by hand, and so do the disclosure and the
//! FINAL export. A third reviewer racing for a full document is refused,
//! and bad input leaves nothing half-written.

use std::collections::BTreeMap;
use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::ws::Subscription;
use evistream_tests::{DbKind, Session, TestDb, TestServer, assert_code, ok, ops};
use serde_json::{Value, json};

use super::review::{export_long, extract, value};

fn fields() -> Value {
    json!([
        { "name": "sample_size", "type": "INTEGER", "required": true,
          "description": "Total number of participants randomised" },
        { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"],
          "description": "Masking" },
        { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
        { "name": "country", "type": "TEXT", "description": "Country where the trial was run" },
        { "name": "allocation_concealed", "type": "BOOLEAN",
          "description": "Whether allocation was concealed" },
    ])
}

/// The review as `who` sees it.
async fn review(srv: &TestServer, who: &Session, ids: &Value) -> Value {
    let r = srv.op(Some(&who.token), "Review", ids.clone()).await;
    ok(&r, "review").clone()
}

/// Checks that the reviews a results page reads together are, for every
/// document, the review `who` gets by asking for it alone; returns whether
/// each document (by id) is blind to `who`.
async fn results_match_reviews(
    srv: &TestServer,
    who: &Session,
    project: &str,
    version: &str,
) -> BTreeMap<String, bool> {
    let vars = json!({ "projectId": project, "formVersionId": version, "first": 50 });
    let r = srv.op(Some(&who.token), "ResultsReviews", vars).await;
    let mut blind = BTreeMap::new();
    for edge in ok(&r, "results")["edges"].as_array().unwrap() {
        let doc = edge["node"]["document"]["id"].as_str().unwrap();
        let mut together = edge["node"]["review"].clone();
        let was_blind = together["blind"].as_bool().unwrap();
        together.as_object_mut().unwrap().remove("blind");
        let ids = json!({ "documentId": doc, "formVersionId": version });
        assert_eq!(
            together,
            review(srv, who, &ids).await,
            "{doc} as {}",
            who.email
        );
        blind.insert(doc.to_owned(), was_blind);
    }
    blind
}

/// Submits values as `who`; the raw response.
async fn submit(srv: &TestServer, who: &Session, ids: &Value, values: Value, done: bool) -> Value {
    let mut vars = ids.clone();
    vars["values"] = values;
    vars["submit"] = json!(done);
    srv.op(Some(&who.token), "SubmitReviewerValues", vars).await
}

/// Resolves `path` as `who`; the raw response.
async fn resolve(
    srv: &TestServer,
    who: &Session,
    ids: &Value,
    path: &str,
    v: Value,
    note: &str,
) -> Value {
    let mut vars = ids.clone();
    vars["path"] = json!(path);
    vars["value"] = v;
    vars["note"] = json!(note);
    srv.op(Some(&who.token), "ResolveValue", vars).await
}

fn paths(review: &Value) -> Vec<String> {
    review["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap().to_owned())
        .collect()
}

async fn member(srv: &TestServer, owner: &Session, label: &str, role: &str) -> Session {
    let s = srv.register(label).await;
    let r = srv
        .op(
            Some(&owner.token),
            "AddMember",
            json!({ "organizationId": owner.org_id, "email": s.email, "role": role }),
        )
        .await;
    ok(&r, "addMember");
    s
}

evistream_tests::dual_db_test!(
    a_dual_review_extracts_blind_agrees_disputes_and_adjudicates,
    |db: DbKind| async move { dual_review(db).await }
);

async fn dual_review(db: DbKind) {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let owner = srv.register("owner").await;
    let a = member(&srv, &owner, "alice", "REVIEWER").await;
    let b = member(&srv, &owner, "bob", "REVIEWER").await;
    let c = member(&srv, &owner, "carol", "REVIEWER").await;
    let viewer = member(&srv, &owner, "victor", "VIEWER").await;
    let outsider = srv.register("mallory").await;
    let project = srv.project(&owner.token, &owner.org_id, "Dual").await;
    let docs = srv
        .converted_papers(
            &owner.token,
            &project,
            &["PMC3321528.pdf", "PMC3580751.pdf"],
        )
        .await;
    let version = srv.approved_version(&owner.token, &project, fields()).await;

    // Settings: DUAL with two reviewers by default; out of range refused.
    let configure = |mode: &str, n: Option<i64>| {
        let vars = json!({ "projectId": project, "mode": mode, "reviewersPerDocument": n });
        let srv = &srv;
        let token = owner.token.clone();
        async move { srv.op(Some(&token), "ConfigureReview", vars).await }
    };
    for n in [1, 6] {
        assert_code(&configure("DUAL", Some(n)).await, "BAD_USER_INPUT");
    }
    assert_eq!(
        ok(&configure("DUAL", None).await, "configureReview"),
        &json!({ "mode": "DUAL", "reviewersPerDocument": 2 })
    );

    extract(&srv, &owner.token, &project, &version).await;
    let ids = json!({ "documentId": docs[0], "formVersionId": version });
    let ids2 = json!({ "documentId": docs[1], "formVersionId": version });

    // A VIEWER (who never extracts) sees the extractor's values, UNREVIEWED.
    let seen = review(&srv, &viewer, &ids).await;
    let extracted: BTreeMap<String, Value> = seen["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["path"].as_str().unwrap().to_owned(), v["value"].clone()))
        .collect();
    assert!(extracted.contains_key("sample_size"), "{seen}");
    assert!(
        seen["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["state"] == "UNREVIEWED" && v["source"] == "EXTRACTOR"),
        "{seen}"
    );
    assert_eq!(seen["status"], "OPEN");

    // Blind: before submitting, a reviewer sees nothing of anyone else's.
    let blind = review(&srv, &a, &ids).await;
    assert_eq!(blind["values"], json!([]), "{blind}");

    // Carol watches the project's reviews.
    let mut sub = Subscription::start(
        &srv.ws_url(),
        Some(&c.token),
        &ops::operation("ReviewUpdated"),
        json!({ "projectId": project }),
    )
    .await
    .unwrap();

    // SINGLE verdicts are refused in DUAL mode, and vice versa below.
    let mut verify = ids.clone();
    verify["path"] = json!("sample_size");
    verify["verdict"] = json!("ACCEPT");
    assert_code(
        &srv.op(Some(&a.token), "VerifyValue", verify).await,
        "BAD_USER_INPUT",
    );

    // The values both people will give: the extractor's everywhere, except
    // the sample size (they differ) and the masking (they agree with each
    // other, not with the extractor); Bob adds an arm the extractor missed.
    let ss = extracted["sample_size"].as_i64().unwrap_or(100);
    let masking = if extracted.get("blinding") == Some(&json!("single-blind")) {
        "open-label"
    } else {
        "single-blind"
    };
    let arms = extracted.keys().filter(|p| p.starts_with("arms[")).count();
    let added = format!("arms[{arms}].name");
    let mut alice: serde_json::Map<String, Value> = extracted
        .iter()
        .filter(|(p, _)| p.contains('.') || !p.starts_with("arms"))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    alice.insert("sample_size".into(), json!(ss));
    alice.insert("blinding".into(), json!(masking));
    let mut bob = alice.clone();
    bob.insert("sample_size".into(), json!(ss + 1));
    bob.insert(added.clone(), json!("Bob's extra arm"));

    // Alice's first part: her view holds her values only, no extractor's.
    let first: serde_json::Map<String, Value> = [
        ("sample_size".to_owned(), json!(ss)),
        ("blinding".to_owned(), json!(masking)),
    ]
    .into_iter()
    .collect();
    let r = submit(&srv, &a, &ids, Value::Object(first), false).await;
    let mine = ok(&r, "submitReviewerValues");
    assert_eq!(mine["status"], "OPEN");
    let mut got = paths(mine);
    got.sort();
    assert_eq!(got, ["blinding", "sample_size"], "{mine}");
    let mine = review(&srv, &a, &ids).await;
    assert_eq!(value(&mine, "sample_size")["value"], json!(ss));
    assert_eq!(value(&mine, "sample_size")["source"], "REVIEWER");
    assert_eq!(value(&mine, "sample_size")["extracted"], Value::Null);
    assert_eq!(
        value(&mine, "sample_size")["decisions"][0]["verdict"],
        "EXTRACT"
    );
    // Bob sees none of it.
    assert_eq!(review(&srv, &b, &ids).await["values"], json!([]));
    // A results page shows each person the same reviews, blind alike.
    let both_blind = BTreeMap::from([(docs[0].clone(), true), (docs[1].clone(), true)]);
    for who in [&a, &b] {
        assert_eq!(
            results_match_reviews(&srv, who, &project, &version).await,
            both_blind
        );
    }
    let seeing = BTreeMap::from([(docs[0].clone(), false), (docs[1].clone(), false)]);
    assert_eq!(
        results_match_reviews(&srv, &viewer, &project, &version).await,
        seeing
    );

    // Bad input: each refused, nothing of it written.
    for (values, why) in [
        (json!({ "sample_size": "many" }), "wrong type"),
        (json!({ "sample_size": 1, "dose": 5 }), "not a field"),
        (
            json!({ "arms": [{ "name": "x" }] }),
            "a list, not its fields",
        ),
        (json!({ "blinding": "triple-blind" }), "not an option"),
        (json!([1, 2]), "not an object"),
        (json!({}), "nothing to record"),
    ] {
        let r = submit(&srv, &a, &ids, values, false).await;
        assert_eq!(
            evistream_tests::error_code(&r),
            Some("BAD_USER_INPUT"),
            "{why}: {r}"
        );
    }
    let r = submit(&srv, &viewer, &ids, json!({ "sample_size": 1 }), true).await;
    assert_code(&r, "FORBIDDEN");
    let r = submit(&srv, &outsider, &ids, json!({ "sample_size": 1 }), true).await;
    assert_code(&r, "NOT_FOUND");
    assert_eq!(
        value(&review(&srv, &a, &ids).await, "sample_size")["value"],
        json!(ss),
        "nothing half-written"
    );

    // Alice submits the rest; a second submission is refused.
    let r = submit(&srv, &a, &ids, Value::Object(alice.clone()), true).await;
    ok(&r, "submitReviewerValues");
    let r = submit(&srv, &a, &ids, json!({ "sample_size": 3 }), true).await;
    assert_code(&r, "CONFLICT");
    // Submitted, Alice is no longer blind, but values wait for Bob.
    let waiting = review(&srv, &a, &ids).await;
    assert_eq!(
        value(&waiting, "sample_size")["value"],
        extracted["sample_size"]
    );
    assert_eq!(value(&waiting, "sample_size")["state"], "UNREVIEWED");
    // On one results page, Alice now sees the first paper, not the second.
    assert_eq!(
        results_match_reviews(&srv, &a, &project, &version).await,
        BTreeMap::from([(docs[0].clone(), false), (docs[1].clone(), true)])
    );
    // Resolving before all extractions are in: nothing is disputed yet.
    let r = resolve(&srv, &c, &ids, "sample_size", json!(ss), "early").await;
    assert_code(&r, "CONFLICT");

    // Bob begins; now the document has its two reviewers, and Carol's
    // attempt to extract it too is refused.
    let r = submit(&srv, &b, &ids, json!({ "sample_size": ss + 1 }), false).await;
    ok(&r, "submitReviewerValues");
    let r = submit(&srv, &c, &ids, json!({ "sample_size": ss }), false).await;
    assert_code(&r, "CONFLICT");

    // Bob's submission completes the extractions; Carol hears of it.
    let r = submit(&srv, &b, &ids, Value::Object(bob.clone()), true).await;
    let after = ok(&r, "submitReviewerValues");
    assert_eq!(after["status"], "AWAITING_ADJUDICATION", "{after}");
    loop {
        let update = sub
            .next(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("an update");
        if update["data"]["reviewUpdated"]["status"] == "AWAITING_ADJUDICATION" {
            break;
        }
        assert_eq!(
            update["data"]["reviewUpdated"]["status"], "OPEN",
            "{update}"
        );
    }

    // Agreement per value: everything both people and the extractor gave
    // alike is AGREED (the extractor's value); the rest is DISPUTED.
    let all = review(&srv, &owner, &ids).await;
    assert_eq!(all["status"], "AWAITING_ADJUDICATION");
    let disputed: Vec<String> = all["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["state"] == "DISPUTED")
        .map(|v| v["path"].as_str().unwrap().to_owned())
        .collect();
    let mut want = vec![
        "sample_size".to_owned(),
        "blinding".to_owned(),
        added.clone(),
    ];
    want.sort();
    let mut got = disputed.clone();
    got.sort();
    assert_eq!(got, want, "{all}");
    for v in all["values"].as_array().unwrap() {
        if v["state"] == "AGREED" {
            assert_eq!(v["source"], "EXTRACTOR", "{v}");
            assert_eq!(v["value"], v["extracted"], "{v}");
        }
    }
    let agreed_here = all["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["state"] == "AGREED")
        .count();
    assert!(agreed_here > 0, "{all}");
    // The owner, who may still extract the second paper, is blind to it.
    assert_eq!(
        results_match_reviews(&srv, &owner, &project, &version).await,
        BTreeMap::from([(docs[0].clone(), false), (docs[1].clone(), true)])
    );
    let history = &value(&all, "sample_size")["decisions"];
    assert_eq!(
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["reviewer"]["email"].clone(), d["value"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!(a.email), json!(ss)),
            (json!(a.email), json!(ss)),
            (json!(b.email), json!(ss + 1)),
            (json!(b.email), json!(ss + 1)),
        ],
        "every value each person entered, in order"
    );

    // Completion waits for the disputes.
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_code(&r, "CONFLICT");

    // Who adjudicates: not someone who extracted it, not a VIEWER; a note
    // is required; only a disputed value; of the field's type.
    let r = resolve(&srv, &a, &ids, "sample_size", json!(ss), "mine").await;
    assert_code(&r, "FORBIDDEN");
    let r = resolve(&srv, &viewer, &ids, "sample_size", json!(ss), "no").await;
    assert_code(&r, "FORBIDDEN");
    let r = resolve(&srv, &c, &ids, "sample_size", json!(ss), "   ").await;
    assert_code(&r, "BAD_USER_INPUT");
    let r = resolve(&srv, &c, &ids, "sample_size", json!("ten"), "x").await;
    assert_code(&r, "BAD_USER_INPUT");
    let agreed_path = all["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["state"] == "AGREED")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = resolve(&srv, &c, &ids, &agreed_path, Value::Null, "x").await;
    assert_code(&r, "CONFLICT");

    // Carol (a REVIEWER who did not extract) and the owner resolve.
    let r = resolve(
        &srv,
        &c,
        &ids,
        "sample_size",
        json!(ss),
        "Table 1 gives the total",
    )
    .await;
    let v = ok(&r, "resolveValue");
    assert_eq!(
        (&v["value"], &v["state"], &v["source"]),
        (&json!(ss), &json!("RESOLVED"), &json!("ADJUDICATOR"))
    );
    let r = resolve(
        &srv,
        &owner,
        &ids,
        "blinding",
        json!(masking),
        "both people read the methods",
    )
    .await;
    ok(&r, "resolveValue");
    let r = resolve(&srv, &owner, &ids, &added, Value::Null, "not an arm").await;
    assert_eq!(ok(&r, "resolveValue")["value"], Value::Null);
    let done = review(&srv, &owner, &ids).await;
    assert_eq!(done["status"], "OPEN");
    let last = value(&done, "sample_size")["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["verdict"], "RESOLVE");
    assert_eq!(last["note"], "Table 1 gives the total");
    assert_eq!(last["reviewer"]["email"], json!(c.email));

    // Complete, then locked.
    let r = srv
        .op(Some(&owner.token), "CompleteReview", ids.clone())
        .await;
    assert_eq!(ok(&r, "completeReview")["status"], "COMPLETE");
    let r = resolve(&srv, &owner, &ids, "sample_size", json!(1), "late").await;
    assert_code(&r, "CONFLICT");

    // Document 2: both submit only the masking and the sample size, which
    // they agree on and disagree on respectively.
    let r = submit(
        &srv,
        &a,
        &ids2,
        json!({ "blinding": "open-label", "sample_size": 50 }),
        true,
    )
    .await;
    ok(&r, "submitReviewerValues");
    let r = submit(
        &srv,
        &b,
        &ids2,
        json!({ "blinding": "double-blind", "sample_size": 50 }),
        true,
    )
    .await;
    ok(&r, "submitReviewerValues");
    let second = review(&srv, &owner, &ids2).await;
    let disputed2 = second["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["state"] == "DISPUTED")
        .count();
    let agreed2 = second["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["state"] == "AGREED")
        .count();

    // Agreement between the people, worked by hand. Masking: (single, single)
    // and (open, double): pₒ = ½; Alice open ½ / other ½, Bob double ½ /
    // other ½ → pₑ = ¼; κ = (½ − ¼) / (1 − ¼) = ⅓. Sample size: one pair of
    // two agrees; an INTEGER has no kappa.
    let r = srv
        .op(
            Some(&viewer.token),
            "ReviewSummary",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let summary = ok(&r, "reviewSummary");
    assert_eq!(summary["documents"], 2);
    assert_eq!(summary["complete"], 1);
    assert_eq!(summary["disputed"], json!(disputed2));
    let field = |path: &str| {
        summary["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap()
            .clone()
    };
    let masking_f = field("blinding");
    assert_eq!(masking_f["agreement"], json!(0.5));
    assert!(
        (masking_f["kappa"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{masking_f}"
    );
    let ss_f = field("sample_size");
    assert_eq!(ss_f["agreement"], json!(0.5));
    assert_eq!(ss_f["kappa"], Value::Null);

    // The disclosure states the mode and the same figures.
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
    assert!(
        md.contains("independent extraction by 2 people per document"),
        "{md}"
    );
    let agreed_total = agreed_here + agreed2;
    assert!(
        md.contains(&format!(
            "All extractions agreed on {agreed_total} value(s); an adjudicator resolved 3 \
             disputed value(s), and {disputed2} still await adjudication."
        )),
        "{md}"
    );
    assert!(md.contains("| `blinding` |"), "{md}");
    assert!(md.contains("| 0.50 | 0.33 |"), "{md}");

    // The final dataset: adjudicated values with their adjudicator.
    let rows = export_long(&srv, &owner.token, &project, &version, "FINAL").await;
    let row = |doc: &str, path: &str| {
        rows.iter()
            .find(|r| r["document_id"] == doc && r["path"] == path)
            .unwrap_or_else(|| panic!("no row {doc} {path}"))
            .clone()
    };
    let s = row(&docs[0], "sample_size");
    assert_eq!(
        (
            s["value"].as_str(),
            s["state"].as_str(),
            s["source"].as_str(),
            s["reviewer"].as_str()
        ),
        (
            ss.to_string().as_str(),
            "RESOLVED",
            "ADJUDICATOR",
            c.email.as_str()
        )
    );
    let agreed_row = row(&docs[0], &agreed_path);
    assert_eq!(agreed_row["state"], "AGREED");
    assert_eq!(agreed_row["reviewer"], format!("{}; {}", a.email, b.email));

    // The JSON export carries each value's history.
    let r = srv
        .op(
            Some(&owner.token),
            "ExportReviewed",
            json!({ "projectId": project, "formVersionId": version,
                    "format": "JSON", "values": "FINAL" }),
        )
        .await;
    let url = ok(&r, "exportResults")["url"].as_str().unwrap().to_owned();
    let exported: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let doc = exported["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == json!(docs[0]))
        .unwrap();
    let history = &value(doc, "sample_size")["history"];
    assert_eq!(
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["kind"].as_str().unwrap(), h["reviewer"].clone()))
            .collect::<Vec<_>>(),
        [
            ("EXTRACT", json!(a.email)),
            ("EXTRACT", json!(a.email)),
            ("EXTRACT", json!(b.email)),
            ("EXTRACT", json!(b.email)),
            ("RESOLVE", json!(c.email)),
        ],
        "{history}"
    );
    assert_eq!(history[4]["note"], "Table 1 gives the total");
    assert_eq!(history[4]["value"], json!(ss));

    // Settings are fixed once decisions exist.
    assert_code(&configure("SINGLE", None).await, "CONFLICT");
    assert_code(&configure("DUAL", Some(3)).await, "CONFLICT");
    ok(&configure("DUAL", Some(2)).await, "configureReview");

    srv.stop().await;
    tdb.drop_db().await;
}

evistream_tests::dual_db_test!(
    reviewers_racing_for_a_full_document_get_exactly_its_places,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Race").await;
        let docs = srv
            .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
            .await;
        let version = srv.approved_version(&owner.token, &project, fields()).await;
        let r = srv
            .op(
                Some(&owner.token),
                "ConfigureReview",
                json!({ "projectId": project, "mode": "DUAL", "reviewersPerDocument": 2 }),
            )
            .await;
        ok(&r, "configureReview");
        let mut people = Vec::new();
        for i in 0..5 {
            people.push(member(&srv, &owner, &format!("r{i}"), "REVIEWER").await);
        }
        let ids = json!({ "documentId": docs[0], "formVersionId": version });
        // Five at once, each submitting a whole extraction.
        let calls = people
            .iter()
            .enumerate()
            .map(|(i, p)| submit(&srv, p, &ids, json!({ "sample_size": 100 + i }), true));
        let results = futures::future::join_all(calls).await;
        let won: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.get("errors").is_none())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(won.len(), 2, "{results:?}");
        for r in results.iter().filter(|r| r.get("errors").is_some()) {
            assert_code(r, "CONFLICT");
        }
        // Exactly the winners' values are on record.
        let all = review(&srv, &owner, &ids).await;
        let mut recorded: Vec<i64> = value(&all, "sample_size")["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["verdict"] == "EXTRACT")
            .map(|d| d["value"].as_i64().unwrap())
            .collect();
        recorded.sort();
        assert_eq!(
            recorded,
            won.iter().map(|i| 100 + *i as i64).collect::<Vec<_>>()
        );
        srv.stop().await;
        tdb.drop_db().await;
    }
);
