//! Scale-out with real processes of this package's binary, on PostgreSQL
//! and an S3-compatible server (moto), as an operator runs it:
//!
//! - four `evistream migrate` started at once on an empty database all
//!   succeed (the migrations' advisory lock);
//! - two API nodes and two workers started at the same moment on an empty
//!   database all come up (they migrate on start, under the same lock);
//! - an extraction through a slow LLM survives a `kill -9` of one worker
//!   and a SIGSTOP past its lease (then SIGCONT) of another: the run
//!   succeeds, every document has exactly one result, the frozen worker
//!   writes nothing after it lost its lease, nothing is written after the
//!   run SUCCEEDED, and every unit's state change reaches a subscriber on
//!   the other API node;
//! - an API node stopped with SIGTERM closes its subscription with 1001 and
//!   exits; its client carries on through the other node;
//! - metrics add up across the nodes: one leader reports the queue, and
//!   the workers' job counts match the units each of them finished.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use evistream_tests::llm::FakeLlm;
use evistream_tests::process::{Deployment, NodeProcess, NodeRole, run_once};
use evistream_tests::s3::S3Server;
use evistream_tests::ws::{Subscription, WsConn};
use evistream_tests::{Client, DbKind, TestDb, corpus_pdf, eventually, ok, ops};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_evistream");

/// Lease of the test deployment: short, so the faults play out in seconds.
const LEASE_MS: u64 = 2_000;

fn deployment(tdb: &TestDb, s3: &S3Server) -> Deployment {
    let mut config = tdb.config();
    s3.configure(&mut config);
    let mut d = Deployment::new(&tdb.url, &config.storage);
    d.set("EVISTREAM_JOBS__LEASE_MS", LEASE_MS)
        .set("EVISTREAM_JOBS__POLL_INTERVAL_MS", 100)
        .set("EVISTREAM_JOBS__CONCURRENCY", 1)
        .set("EVISTREAM_JOBS__SHUTDOWN_GRACE_MS", 500)
        .set("EVISTREAM_DATABASE_MAX_CONNECTIONS", 4)
        .set("EVISTREAM_PLUGINS_ALLOW_PRIVATE_NETWORKS", "true")
        .set(
            "EVISTREAM_PLUGINS__CACHE_DIR",
            evistream_tests::process::shared_plugin_cache().display(),
        );
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_migrations_at_once_on_an_empty_database_all_succeed() {
    let tdb = TestDb::new(DbKind::Postgres).await.unwrap();
    let d = Deployment::new(&tdb.url, &tdb.config().storage);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let runs = futures::future::join_all(
        dirs.iter()
            .map(|dir| run_once(Path::new(BIN), &["migrate"], &d, dir.path())),
    )
    .await;
    for r in &runs {
        let (code, out) = r.as_ref().expect("migrate ran");
        assert_eq!(*code, Some(0), "a concurrent migrate failed:\n{out}");
    }
    let db = Database::connect(&tdb.url).await.unwrap();
    let applied = scalar(&db, "SELECT COUNT(*) FROM seaql_migrations").await;
    let distinct = scalar(&db, "SELECT COUNT(DISTINCT version) FROM seaql_migrations").await;
    assert_eq!(applied, distinct, "each migration applied once");
    let newest = scalar(
        &db,
        "SELECT COUNT(*) FROM seaql_migrations WHERE version = 'm20261206_000011_job_fencing'",
    )
    .await;
    assert_eq!(newest, 1, "the newest migration is applied");
    db.close().await.unwrap();
    tdb.drop_db().await;
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn rows(db: &DatabaseConnection, sql: String) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
}

/// The sum of the samples of metric `name` with all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels_text, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            labels
                .iter()
                .all(|(k, v)| {
                    labels_text
                        .split(',')
                        .any(|kv| kv == format!("{k}=\"{v}\""))
                })
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn scrape(c: &Client) -> String {
    let r = c
        .http
        .get(format!("{}/metrics", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Units (job ids) a worker says it finished with `outcome`, from its log.
fn finished_by(output: &str, outcome: &str) -> HashSet<String> {
    output
        .lines()
        .filter(|l| {
            l.contains("job finished")
                && l.contains("kind=extraction.document")
                && (l.contains(&format!("outcome={outcome}"))
                    || l.contains(&format!("outcome=\"{outcome}\"")))
        })
        .filter_map(|l| {
            let i = l.find("job_id=")?;
            l[i + 7..].split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_survives_kill_freeze_and_sigterm_of_its_nodes() {
    let tdb = TestDb::new(DbKind::Postgres).await.unwrap();
    let s3 = S3Server::start().await.unwrap();
    let llm = FakeLlm::start().await;
    let d = deployment(&tdb, &s3);
    let bin = Path::new(BIN);

    // Two API nodes and two workers at the same moment, on an empty database.
    let (api1, api2, w1, w2) = tokio::join!(
        NodeProcess::start(bin, NodeRole::Api, &d),
        NodeProcess::start(bin, NodeRole::Api, &d),
        NodeProcess::start(bin, NodeRole::Worker, &d),
        NodeProcess::start(bin, NodeRole::Worker, &d),
    );
    let (mut api1, api2, w1, w2) = (api1.unwrap(), api2.unwrap(), w1.unwrap(), w2.unwrap());
    let (c1, c2) = (api1.client(), api2.client());
    let db = Database::connect(&tdb.url).await.unwrap();

    // A project with the fake provider, and corpus papers uploaded through one node.
    let owner = c1.register("owner").await;
    let project = c1.project(&owner.token, &owner.org_id, "scale").await;
    c1.bind_llm(
        &owner.token,
        &project,
        "openai-compatible",
        &llm.base_url,
        "gpt-test",
        "sk-scale",
    )
    .await;
    let papers = corpus_papers(6);
    let papers: Vec<&str> = papers.iter().map(String::as_str).collect();
    let docs = c1.converted_papers(&owner.token, &project, &papers).await;
    // The same bytes again, under a new name: the existing document, said so.
    let again = c1
        .upload(
            Some(&owner.token),
            &project,
            "renamed.pdf",
            corpus_pdf(papers[0]),
        )
        .await;
    let again = ok(&again, "uploadDocument");
    assert_eq!(again["id"], docs[0].as_str(), "{again}");
    let shown = c1
        .gql(
            Some(&owner.token),
            "query($id: ID!) { document(id: $id) { filename alreadyUploaded } }",
            json!({ "id": docs[0] }),
        )
        .await;
    assert_eq!(ok(&shown, "document")["alreadyUploaded"], false);
    let version = c1
        .approved_version(
            &owner.token,
            &project,
            json!([
                { "name": "sample_size", "type": "INTEGER", "description": "Participants randomised" },
                { "name": "design", "type": "TEXT", "description": "Trial design" },
            ]),
        )
        .await;

    // Slow model: a unit takes a few leases' worth of time.
    llm.set_latency(Duration::from_millis(1_500));
    let run = c1.start_extraction(&owner.token, &project, &version).await;
    let units: Vec<String> = eventually(Duration::from_secs(20), || async {
        let r = c1
            .gql(
                Some(&owner.token),
                "query($id: ID!) { job(id: $id) { children { id } } }",
                json!({ "id": run }),
            )
            .await;
        let kids: Vec<String> = r["data"]["job"]["children"]
            .as_array()?
            .iter()
            .filter_map(|k| k["id"].as_str().map(str::to_owned))
            .collect();
        (kids.len() == docs.len()).then_some(kids)
    })
    .await;

    // Subscribers on the other API node: the run and every unit.
    let mut subs = Vec::new();
    for id in std::iter::once(&run).chain(&units) {
        subs.push((
            id.clone(),
            Subscription::start(
                &c2.ws_url(),
                Some(&owner.token),
                &ops::operation("JobUpdated"),
                json!({ "id": id }),
            )
            .await
            .unwrap(),
        ));
    }
    let collectors: Vec<_> = subs
        .into_iter()
        .map(|(id, mut sub)| {
            tokio::spawn(async move {
                let mut states = Vec::new();
                while let Ok(Some(v)) = sub.next(Duration::from_secs(120)).await {
                    let s = v["data"]["jobUpdated"]["state"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if states.last() != Some(&s) {
                        states.push(s.clone());
                    }
                    if s == "SUCCEEDED" || s == "FAILED" || s == "CANCELLED" {
                        break;
                    }
                }
                (id, states)
            })
        })
        .collect();
    // And one on the node that will be stopped.
    let mut doomed = WsConn::connect(&c1.ws_url(), Some(&owner.token))
        .await
        .unwrap();
    doomed
        .start(&ops::operation("JobUpdated"), json!({ "id": run }))
        .await
        .unwrap();

    // kill -9 the first worker while it holds a unit.
    let held_by = |node: String| {
        let db = db.clone();
        let units = units.clone();
        async move {
            let list = units
                .iter()
                .map(|u| format!("'{u}'"))
                .collect::<Vec<_>>()
                .join(",");
            let r = rows(
                &db,
                format!(
                    "SELECT id, lease_token FROM jobs WHERE id IN ({list}) AND state = 'running' AND lease_owner = '{node}'"
                ),
            )
            .await;
            r.first().map(|row| {
                (
                    row.try_get::<String>("", "id").unwrap(),
                    row.try_get::<i64>("", "lease_token").unwrap(),
                )
            })
        }
    };
    eventually(Duration::from_secs(30), || held_by(w1.node_id.clone())).await;
    w1.signal("KILL");
    let w1_output = w1.output();
    // A replacement comes up, as an orchestrator would start one.
    let w3 = NodeProcess::start(bin, NodeRole::Worker, &d).await.unwrap();

    // Freeze the second worker while it holds a unit, past its lease.
    let (frozen_unit, frozen_token) =
        eventually(Duration::from_secs(60), || held_by(w2.node_id.clone())).await;
    w2.signal("STOP");
    let expires = scalar(
        &db,
        &format!("SELECT lease_expires_at FROM jobs WHERE id = '{frozen_unit}'"),
    )
    .await;
    // Another worker claims the frozen unit once its lease expires.
    eventually(Duration::from_secs(30), || {
        let db = db.clone();
        let unit = frozen_unit.clone();
        async move {
            let r = rows(
                &db,
                format!("SELECT lease_token FROM jobs WHERE id = '{unit}'"),
            )
            .await;
            (r[0].try_get::<i64>("", "lease_token").unwrap() > frozen_token).then_some(())
        }
    })
    .await;
    assert!(
        chrono::Utc::now().timestamp_millis() >= expires,
        "taken over only once the frozen worker's lease expired"
    );

    // Stop an API node with a subscription open on it: it closes the socket
    // as going away and exits; the run goes on.
    api1.signal("TERM");
    assert_eq!(
        doomed.closed(Duration::from_secs(15)).await.unwrap(),
        Some(1001)
    );
    assert_eq!(api1.wait(Duration::from_secs(20)).await.unwrap(), Some(0));

    // The run ends, seen through the remaining API node.
    let job = eventually(Duration::from_secs(120), || async {
        let r = c2.op(Some(&owner.token), "Job", json!({ "id": run })).await;
        let j = r["data"]["job"].clone();
        let s = j["state"].as_str().unwrap_or_default();
        (s != "QUEUED" && s != "RUNNING").then_some(j)
    })
    .await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    // The run's record (its parent job is `run`).
    let run_row = rows(
        &db,
        format!("SELECT id FROM extraction_runs WHERE job_id = '{run}'"),
    )
    .await;
    let run_record: String = run_row[0].try_get("", "id").unwrap();
    let results_sql = format!(
        "SELECT id, document_id, created_at FROM extraction_results WHERE run_id = '{run_record}' ORDER BY document_id"
    );
    let snapshot = |rs: Vec<sea_orm::QueryResult>| -> BTreeMap<String, (String, i64)> {
        rs.into_iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "document_id").unwrap(),
                    (
                        r.try_get::<String>("", "id").unwrap(),
                        r.try_get::<i64>("", "created_at").unwrap(),
                    ),
                )
            })
            .collect()
    };
    let at_success = snapshot(rows(&db, results_sql.clone()).await);
    assert_eq!(
        at_success.keys().cloned().collect::<Vec<_>>(),
        {
            let mut d = docs.clone();
            d.sort();
            d
        },
        "one result per document"
    );
    let per_doc = rows(
        &db,
        format!("SELECT document_id, COUNT(*) AS n FROM extraction_results WHERE run_id = '{run_record}' GROUP BY document_id"),
    )
    .await;
    assert!(
        per_doc
            .iter()
            .all(|r| r.try_get::<i64>("", "n").unwrap() == 1)
    );

    // Thaw the frozen worker: it finds its lease gone and writes nothing.
    w2.signal("CONT");
    eventually(Duration::from_secs(20), || async {
        w2.output().contains("lease lost").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    let finished_at = scalar(
        &db,
        &format!("SELECT finished_at FROM jobs WHERE id = '{run}'"),
    )
    .await;
    let after = snapshot(rows(&db, results_sql).await);
    assert_eq!(after, at_success, "nothing was written after SUCCEEDED");
    assert!(
        after.values().all(|(_, created)| *created <= finished_at),
        "every result predates the run's end"
    );
    assert!(
        !finished_by(&w2.output(), "succeeded").contains(&frozen_unit),
        "the frozen worker did not record the unit it lost"
    );

    // Every unit's end reached the subscriber on the other node.
    for c in collectors {
        let (id, states) = c.await.unwrap();
        assert_eq!(
            states.last().map(String::as_str),
            Some("SUCCEEDED"),
            "job {id} as the other node's subscriber saw it: {states:?}"
        );
    }

    // Metrics add up: exactly one leader among the live nodes, and the
    // workers' counts of finished units match what each logged.
    // (A leader killed with -9 holds its lease until it expires: the
    // others take over within its lifetime and a tick.)
    let live = [&api2, &w2, &w3];
    let texts = eventually(Duration::from_secs(30), || async {
        let mut texts = Vec::new();
        for n in live {
            texts.push(scrape(&n.client()).await);
        }
        let leaders: f64 = texts
            .iter()
            .map(|t| sample(t, "evistream_leader", &[]))
            .sum();
        (leaders == 1.0).then_some(texts)
    })
    .await;
    let reporting = texts
        .iter()
        .filter(|t| t.contains("# TYPE evistream_queue_jobs gauge"))
        .count();
    assert_eq!(reporting, 1, "only the leader reports the queue");
    let mut total = finished_by(&w1_output, "succeeded").len();
    for (n, t) in [(&w2, &texts[1]), (&w3, &texts[2])] {
        let logged = finished_by(&n.output(), "succeeded").len();
        let counted = sample(
            t,
            "evistream_job_duration_seconds_count",
            &[("kind", "extraction.document"), ("outcome", "succeeded")],
        );
        assert_eq!(
            counted as usize,
            logged,
            "worker {} counts what it logged:\n{}",
            n.node_id,
            n.output()
        );
        total += logged;
    }
    assert_eq!(
        total,
        units.len(),
        "each unit succeeded once across the workers"
    );

    db.close().await.unwrap();
    drop((api2, w2, w3));
    tdb.drop_db().await;
}

/// The first `n` PDFs of the corpus, by name.
fn corpus_papers(n: usize) -> Vec<String> {
    let dir = ops::repo_root().join("../shared/corpus/rct/pdf");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    names.sort();
    names.truncate(n);
    assert_eq!(names.len(), n, "the corpus has {n} papers");
    names
}
