//! The results table with its reviews: one page of 48 documents (the 12
//! corpus papers, each uploaded four times with a distinct trailing PDF
//! comment) extracted offline, a third of their values accepted by a
//! reviewer; median of 20 of
//!
//! - the page with its values only (baseline),
//! - the page with each document's review, as the dashboard's results table
//!   asks for it (the page's reviews are read together),
//! - the same reviews asked for one document at a time (`Review` × 48, what
//!   a page would cost if each review were read on its own),
//!
//! each as a ratio to the baseline. Run:
//! `cargo bench -p evistream-tests --bench results [-- postgres]`.

use std::time::{Duration, Instant};

use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, corpus_pdf, ok};
use serde_json::json;

const COPIES: usize = 4;
const RUNS: usize = 20;

const VALUES_ONLY: &str = "query($p: ID!, $v: ID!) { results(projectId: $p, formVersionId: $v, first: 50) {
  edges { node { id document { id filename } values { path value status confidence grounding ungrounded } } } } }";
const WITH_REVIEWS: &str = "query($p: ID!, $v: ID!) { results(projectId: $p, formVersionId: $v, first: 50) {
  edges { node { id document { id filename } values { path value status confidence grounding ungrounded }
  review { status values { path value state source } } } } } }";
const ONE_REVIEW: &str = "query($d: ID!, $v: ID!) { review(documentId: $d, formVersionId: $v) {
  status values { path value state source } } }";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let kind = DbKind::from_args();
    let tdb = TestDb::new(kind).await.expect("db");
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .expect("node");
    let owner = srv.register("owner").await;
    let t = Some(owner.token.as_str());
    let project = srv.project(&owner.token, &owner.org_id, "Results").await;

    let dir = evistream_tests::ops::repo_root().join("../shared/corpus/rct/pdf");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    names.sort();
    let mut docs = Vec::new();
    for copy in 0..COPIES {
        for name in &names {
            // A comment after %%EOF changes the bytes (a new document), not
            // the paper.
            let mut pdf = corpus_pdf(name);
            pdf.extend_from_slice(format!("\n%copy {copy}\n").as_bytes());
            let r = srv.upload(t, &project, name, pdf).await;
            docs.push(ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned());
        }
    }
    for (id, name) in docs.iter().zip(names.iter().cycle()) {
        srv.wait_converted(&owner.token, id, name).await;
    }
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([
                { "name": "sample_size", "type": "INTEGER", "description": "Total number of participants randomised" },
                { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"] },
                { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
            ]),
        )
        .await;
    srv.run_extraction(&owner.token, &project, &version).await;

    // A reviewer accepts the values of every third document.
    let vars = json!({ "p": project, "v": version });
    let page = srv.gql(t, VALUES_ONLY, vars.clone()).await;
    let edges = page["data"]["results"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), docs.len(), "{page}");
    let mut decisions = 0;
    for e in edges.iter().step_by(3) {
        for v in e["node"]["values"].as_array().unwrap() {
            let vars = json!({ "documentId": e["node"]["document"]["id"], "formVersionId": version,
                               "path": v["path"], "verdict": "ACCEPT" });
            ok(&srv.op(t, "VerifyValue", vars).await, "verifyValue");
            decisions += 1;
        }
    }

    let timed = |q: &'static str| {
        let vars = vars.clone();
        let srv = &srv;
        async move {
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let start = Instant::now();
                let r = srv.gql(t, q, vars.clone()).await;
                times.push(start.elapsed());
                assert!(r.get("errors").is_none(), "{r}");
            }
            median(times)
        }
    };
    let base = timed(VALUES_ONLY).await;
    let together = timed(WITH_REVIEWS).await;
    let mut one_by_one = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        for d in &docs {
            let r = srv
                .gql(t, ONE_REVIEW, json!({ "d": d, "v": version }))
                .await;
            assert!(r.get("errors").is_none(), "{r}");
        }
        one_by_one.push(start.elapsed());
    }
    let one_by_one = median(one_by_one);

    println!(
        "== results page of {} documents, {decisions} review decisions, {kind:?}",
        docs.len()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |d: Duration| d.as_secs_f64() / base.as_secs_f64();
    println!("values only (baseline)        {:>8.1} ms", ms(base));
    println!(
        "with reviews, read together   {:>8.1} ms  {:.2}x baseline",
        ms(together),
        ratio(together)
    );
    println!(
        "Review x {} one at a time     {:>8.1} ms  {:.2}x baseline",
        docs.len(),
        ms(one_by_one),
        ratio(one_by_one)
    );
    srv.stop().await;
    tdb.drop_db().await;
}
