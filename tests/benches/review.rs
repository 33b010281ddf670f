//! Review under load: 20 reviewers at once on a document with 300
//! extracted values, on a real node (SQLite by default, `postgres` as an
//! argument for PostgreSQL; release build under `cargo bench`). Each of
//! the 20 clients sends its requests back to back; p50 and p95 of
//!
//! - `document { id }` (baseline: authentication, tenancy, one row),
//! - the `Review` query (300 values, their evidence and decisions),
//! - `verifyValue` (ACCEPT of one of the 300 values: a row locked, a
//!   decision appended, the value derived again),
//!
//! with the ratio of each p95 to the baseline's.
//!
//! Run: `cargo bench -p evistream-tests --bench review [-- postgres]`.

use std::time::{Duration, Instant};

use evistream::db::entities::{extraction_result, extraction_value};
use evistream::db::types::EvidenceList;
use evistream::extraction::pipeline::Grounding;
use evistream::jobs::JobRegistry;
use evistream::plugins::extractor::ValueStatus;
use evistream_tests::{DbKind, TestDb, TestServer, ok, ops};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

const REVIEWERS: usize = 20;
const REQUESTS: usize = 25;
const ITEMS: usize = 50;
const FIELDS: [(&str, &str); 6] = [
    ("name", "TEXT"),
    ("n", "INTEGER"),
    ("mean", "NUMBER"),
    ("sd", "NUMBER"),
    ("timepoint", "TEXT"),
    ("events", "INTEGER"),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs `REVIEWERS` clients of `REQUESTS` requests (query text and
/// variables) each; sorted latencies.
async fn load(
    srv: &TestServer,
    tokens: &[String],
    request: impl Fn(usize, usize) -> (String, Value),
) -> Vec<Duration> {
    let runs = tokens.iter().enumerate().map(|(c, token)| {
        let calls: Vec<(String, Value)> = (0..REQUESTS).map(|i| request(c, i)).collect();
        async move {
            let mut times = Vec::with_capacity(REQUESTS);
            for (op, vars) in calls {
                let t = Instant::now();
                let r = srv.gql(Some(token), &op, vars).await;
                times.push(t.elapsed());
                assert!(r.get("errors").is_none(), "{op}: {r}");
            }
            times
        }
    });
    let mut all: Vec<Duration> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort();
    all
}

fn report(name: &str, times: &[Duration], baseline: Option<Duration>) -> Duration {
    let (p50, p95) = (percentile(times, 0.5), percentile(times, 0.95));
    let ratio = baseline.map_or("baseline".to_owned(), |b| {
        format!("p95 {:.1}x baseline", p95.as_secs_f64() / b.as_secs_f64())
    });
    println!(
        "{name:<28} {n:>5} requests  p50 {:>8.2} ms  p95 {:>8.2} ms  {ratio}",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        n = times.len(),
    );
    p95
}

#[tokio::main]
async fn main() {
    let kind = DbKind::from_args();
    let tdb = TestDb::new(kind).await.expect("db");
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .expect("node");
    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "Load").await;
    let doc = srv
        .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
        .await
        .remove(0);
    let fields: Vec<Value> = FIELDS
        .iter()
        .map(|(name, t)| json!({ "name": name, "type": t }))
        .collect();
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([{ "name": "outcomes", "type": "ARRAY", "fields": fields }]),
        )
        .await;
    srv.run_extraction(&owner.token, &project, &version).await;

    // 300 values on the document's result, as a long outcome table gives.
    let db = &srv.node.app.db;
    let result = extraction_result::Entity::find()
        .filter(extraction_result::Column::DocumentId.eq(doc.as_str()))
        .one(db)
        .await
        .unwrap()
        .expect("a result");
    extraction_value::Entity::delete_many()
        .filter(extraction_value::Column::ResultId.eq(result.id.as_str()))
        .exec(db)
        .await
        .unwrap();
    let mut paths = Vec::new();
    for item in 0..ITEMS {
        for (name, t) in FIELDS {
            let path = format!("outcomes[{item}].{name}");
            let value = match t {
                "TEXT" => json!(format!("{name} {item}")),
                _ => json!(item * 3),
            };
            extraction_value::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                organization_id: Set(owner.org_id.clone()),
                result_id: Set(result.id.clone()),
                ordinal: Set(paths.len() as i32),
                path: Set(path.clone()),
                value: Set(value.to_string()),
                status: Set(ValueStatus::Found),
                confidence: Set(0.5),
                evidence: Set(EvidenceList::default()),
                grounding: Set(Grounding::None),
                author_user_id: Set(None),
                created_at: Set(0),
            }
            .insert(db)
            .await
            .unwrap();
            paths.push(path);
        }
    }

    let mut tokens = Vec::new();
    for i in 0..REVIEWERS {
        let s = srv.register(&format!("reviewer{i}")).await;
        let r = srv
            .op(
                Some(&owner.token),
                "AddMember",
                json!({ "organizationId": owner.org_id, "email": s.email, "role": "REVIEWER" }),
            )
            .await;
        ok(&r, "addMember");
        tokens.push(s.token);
    }
    let ids = json!({ "documentId": doc, "formVersionId": version });
    let first = srv.op(Some(&owner.token), "Review", ids.clone()).await;
    assert_eq!(
        ok(&first, "review")["values"].as_array().unwrap().len(),
        ITEMS * FIELDS.len()
    );

    println!(
        "== {REVIEWERS} reviewers x {REQUESTS} requests, one document with {} values, {kind:?}",
        paths.len()
    );
    let document = "query($id: ID!) { document(id: $id) { id filename } }".to_owned();
    let review_q = ops::operation("Review");
    let verify_q = ops::operation("VerifyValue");
    let base = load(&srv, &tokens, |_, _| {
        (document.clone(), json!({ "id": doc }))
    })
    .await;
    let base = report("document { id } (baseline)", &base, None);
    let review = load(&srv, &tokens, |_, _| (review_q.clone(), ids.clone())).await;
    report("Review", &review, Some(base));
    let verify = load(&srv, &tokens, |c, i| {
        let mut v = ids.clone();
        v["path"] = json!(paths[(c * REQUESTS + i) % paths.len()]);
        v["verdict"] = json!("ACCEPT");
        (verify_q.clone(), v)
    })
    .await;
    report("verifyValue", &verify, Some(base));
    let after = load(&srv, &tokens, |_, _| (review_q.clone(), ids.clone())).await;
    report("Review, 500 decisions later", &after, Some(base));

    srv.stop().await;
    tdb.drop_db().await;
}
