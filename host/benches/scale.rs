//! Scale-out throughput with real processes: `cargo bench -p evistream --bench scale`.
//!
//! One PostgreSQL database, an S3-compatible server (moto), two API nodes
//! and 1, 2 or 4 worker processes of this package's binary, each running
//! `jobs.concurrency` 1 or 4 units at once. Each run extracts the same
//! project of generated one-page papers through a fake OpenAI-protocol
//! provider that answers after 200 ms (the LLM cache off, one call per
//! unit), so the provider is the bottleneck. Printed per shape: units per
//! second, the time to drain the queue, and the ratio to one worker at the
//! same concurrency (the baseline, measured in the same command). For the
//! largest shape it also prints how long a unit's state change took to
//! reach a subscriber on the other API node (p50/p95/p99), from the
//! `updatedAt` the worker wrote to the moment the event arrived.
//!
//! `EVISTREAM_BENCH_UNITS` (default 64) sets the number of documents.

use std::path::Path;
use std::time::{Duration, Instant};

use evistream_tests::fixtures::text_pdf;
use evistream_tests::llm::FakeLlm;
use evistream_tests::process::{Deployment, NodeProcess, NodeRole, shared_plugin_cache};
use evistream_tests::s3::S3Server;
use evistream_tests::ws::Subscription;
use evistream_tests::{Client, DbKind, Session, TestDb, eventually, ok};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_evistream");
const LATENCY: Duration = Duration::from_millis(200);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let units: usize = std::env::var("EVISTREAM_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let tdb = TestDb::new(DbKind::Postgres).await.expect("PostgreSQL");
    let s3 = S3Server::start().await.expect("moto_server");
    let llm = FakeLlm::start().await;
    let mut config = tdb.config();
    s3.configure(&mut config);
    let mut d = Deployment::new(&tdb.url, &config.storage);
    d.set("EVISTREAM_JOBS__POLL_INTERVAL_MS", 200)
        .set("EVISTREAM_DATABASE_MAX_CONNECTIONS", 8)
        .set("EVISTREAM_LLM__CACHE", "false")
        .set("EVISTREAM_LLM__MAX_CONCURRENCY_PER_PROJECT", 8)
        .set("EVISTREAM_PLUGINS_ALLOW_PRIVATE_NETWORKS", "true")
        .set(
            "EVISTREAM_PLUGINS__CACHE_DIR",
            shared_plugin_cache().display(),
        )
        .set(
            "RUST_LOG",
            "warn,evistream::cli=info,evistream::jobs::worker=info",
        );
    let bin = Path::new(BIN);
    let api = NodeProcess::start(bin, NodeRole::Api, &d)
        .await
        .expect("API");
    let api2 = NodeProcess::start(bin, NodeRole::Api, &d)
        .await
        .expect("API 2");
    let (c, c2) = (api.client(), api2.client());
    let owner = c.register("bench").await;
    let project = c.project(&owner.token, &owner.org_id, "scale").await;
    c.bind_llm(
        &owner.token,
        &project,
        "openai-compatible",
        &llm.base_url,
        "gpt-bench",
        "sk-bench",
    )
    .await;

    // The papers, converted by four workers.
    let converters = start_workers(bin, &d, 4, 4).await;
    let mut docs = Vec::new();
    for i in 0..units {
        let pdf = text_pdf(&[
            &format!("Trial {i}: a randomised controlled trial of drug {i} against placebo."),
            &format!("We randomised {} participants.", 100 + i),
            "The primary outcome was mortality at 90 days.",
        ]);
        let r = c
            .upload(Some(&owner.token), &project, &format!("paper-{i}.pdf"), pdf)
            .await;
        docs.push(ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in docs.iter().enumerate() {
        c.wait_converted(&owner.token, id, &format!("paper-{i}"))
            .await;
    }
    stop_all(converters).await;
    let version = c
        .approved_version(
            &owner.token,
            &project,
            json!([
                { "name": "sample_size", "type": "INTEGER", "description": "Participants randomised" },
                { "name": "outcome", "type": "TEXT", "description": "Primary outcome" },
            ]),
        )
        .await;
    llm.set_latency(LATENCY);

    println!(
        "{units} units, a {} ms provider, one call per unit; baseline: 1 worker at the same concurrency",
        LATENCY.as_millis()
    );
    println!(
        "workers  concurrency  drain (s)  units/s   × baseline  ideal units/s  worker peak RSS (MiB)"
    );
    let mut latencies = Vec::new();
    for conc in [1usize, 4] {
        let mut baseline = None;
        for workers in [1usize, 2, 4] {
            let nodes = start_workers(bin, &d, workers, conc).await;
            let watch = workers == 4 && conc == 4;
            let (secs, lat) = run_once(&c, &c2, &owner, &project, &version, watch).await;
            let peak = nodes
                .iter()
                .map(NodeProcess::peak_rss_mib)
                .fold(0.0, f64::max);
            stop_all(nodes).await;
            let rate = units as f64 / secs;
            let base = *baseline.get_or_insert(rate);
            let ideal = (workers * conc) as f64 / LATENCY.as_secs_f64();
            println!(
                "{workers:>7}  {conc:>11}  {secs:>9.2}  {rate:>7.2}  {:>10.2}  {ideal:>13.1}  {peak:>21.0}",
                rate / base
            );
            latencies.extend(lat);
        }
    }
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        println!(
            "cross-node event latency over {} events: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            latencies.len(),
            q(0.5),
            q(0.95),
            q(0.99)
        );
    }
    println!(
        "API nodes' peak RSS: {:.0} MiB and {:.0} MiB (they served the uploads and the subscriptions)",
        api.peak_rss_mib(),
        api2.peak_rss_mib()
    );
    drop((api, api2));
    tdb.drop_db().await;
}

async fn start_workers(bin: &Path, d: &Deployment, n: usize, conc: usize) -> Vec<NodeProcess> {
    let mut d = d.clone();
    d.set("EVISTREAM_JOBS__CONCURRENCY", conc);
    let started =
        futures::future::join_all((0..n).map(|_| NodeProcess::start(bin, NodeRole::Worker, &d)))
            .await;
    started.into_iter().map(|w| w.expect("worker")).collect()
}

async fn stop_all(nodes: Vec<NodeProcess>) {
    for mut n in nodes {
        n.signal("TERM");
        let _ = n.wait(Duration::from_secs(20)).await;
    }
}

/// One run over every document: its drain time in seconds and, when
/// `watch`, the cross-node latency (ms) of every unit state change a
/// subscriber on the second API node saw.
async fn run_once(
    c: &Client,
    c2: &Client,
    owner: &Session,
    project: &str,
    version: &str,
    watch: bool,
) -> (f64, Vec<f64>) {
    // The subscriptions start once the run exists, while workers already
    // claim its units: latency is measured on the events that arrive after.
    let started = Instant::now();
    let run = c.start_extraction(&owner.token, project, version).await;
    let mut watchers = Vec::new();
    if watch {
        let r = c
            .gql(
                Some(&owner.token),
                "query($id: ID!) { job(id: $id) { children { id } } }",
                json!({ "id": run }),
            )
            .await;
        for kid in ok(&r, "job")["children"].as_array().unwrap() {
            let id = kid["id"].as_str().unwrap().to_owned();
            let mut sub = Subscription::start(
                &c2.ws_url(),
                Some(&owner.token),
                "subscription($id: ID!) { jobUpdated(id: $id) { state updatedAt } }",
                json!({ "id": id }),
            )
            .await
            .unwrap();
            watchers.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut first = true;
                while let Ok(Some(v)) = sub.next(Duration::from_secs(120)).await {
                    let j = &v["data"]["jobUpdated"];
                    let at = chrono::DateTime::parse_from_rfc3339(j["updatedAt"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis();
                    let now = chrono::Utc::now().timestamp_millis();
                    // The first message is the current state, not an event.
                    if !first {
                        lat.push((now - at) as f64);
                    }
                    first = false;
                    if j["state"] == "SUCCEEDED" || j["state"] == "FAILED" {
                        break;
                    }
                }
                lat
            }));
        }
    }
    let job = eventually(Duration::from_secs(600), || async {
        let r = c.op(Some(&owner.token), "Job", json!({ "id": run })).await;
        let j = ok(&r, "job").clone();
        let s = j["state"].as_str().unwrap_or_default();
        (s != "QUEUED" && s != "RUNNING").then_some(j)
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    let mut lat = Vec::new();
    for w in watchers {
        lat.extend(w.await.unwrap());
    }
    (secs, lat)
}
