//! The durable job queue end to end: lifecycle and live progress over the
//! `jobUpdated` subscription, retries with the last error, crash recovery by
//! lease expiry, cooperative cancellation, leases released on shutdown, no
//! job run twice at once by competing workers, and events crossing nodes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use evistream::jobs::queue::NewJob;
use evistream::jobs::{JobContext, JobError, JobHandler, JobRegistry};
use evistream::server::Roles;
use evistream_tests::ws::Subscription;
use evistream_tests::{DbKind, Session, TestDb, TestServer, assert_code, eventually, ops};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Runs a closure as a handler.
struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
{
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        (self.0)(ctx).await
    }
}

fn registry<F, Fut>(kind: &str, f: F) -> JobRegistry
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
{
    let mut r = JobRegistry::new();
    r.register(kind, FnHandler(f));
    r
}

async fn submit(srv: &TestServer, owner: &Session, kind: &str, max_attempts: i32) -> String {
    let j = evistream::jobs::service::submit(
        &srv.node.app,
        NewJob {
            organization_id: owner.org_id.clone(),
            project_id: None,
            parent_id: None,
            kind: kind.into(),
            payload: json!({ "n": 1 }),
            max_attempts,
        },
    )
    .await
    .expect("submit");
    j.id
}

async fn job(srv: &TestServer, token: &str, id: &str) -> Value {
    let r = srv.op(Some(token), "JobDetail", json!({ "id": id })).await;
    assert!(r["errors"].is_null(), "job query failed: {r}");
    r["data"]["job"].clone()
}

async fn wait_state(srv: &TestServer, token: &str, id: &str, state: &str) -> Value {
    eventually(Duration::from_secs(20), || async {
        let j = job(srv, token, id).await;
        (j["state"] == state).then_some(j)
    })
    .await
}

evistream_tests::dual_db_test!(
    lifecycle_is_streamed_to_subscribers,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let gate = Arc::new(tokio::sync::Notify::new());
        let g = gate.clone();
        let reg = registry("test.steps", move |ctx: JobContext| {
            let g = g.clone();
            async move {
                g.notified().await;
                for p in [0.25, 0.5, 0.75] {
                    ctx.set_progress(p).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok(())
            }
        });
        let srv = TestServer::start(tdb.config(), reg).await.unwrap();
        let owner = srv.register("owner").await;
        let id = submit(&srv, &owner, "test.steps", 3).await;
        let mut sub = Subscription::start(
            &srv.ws_url(),
            Some(&owner.token),
            &ops::operation("JobUpdated"),
            json!({ "id": id }),
        )
        .await
        .unwrap();
        let first = sub.next(Duration::from_secs(10)).await.unwrap().unwrap();
        let s = first["data"]["jobUpdated"]["state"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            s == "QUEUED" || s == "RUNNING",
            "first event is the current state: {first}"
        );
        assert_eq!(first["data"]["jobUpdated"]["id"], json!(id));
        gate.notify_one();
        let rest = sub.collect(Duration::from_secs(20)).await.unwrap();
        let states: Vec<&str> = rest
            .iter()
            .map(|v| v["data"]["jobUpdated"]["state"].as_str().unwrap())
            .collect();
        let progress: Vec<f64> = rest
            .iter()
            .map(|v| v["data"]["jobUpdated"]["progress"].as_f64().unwrap())
            .collect();
        assert_eq!(
            states.last(),
            Some(&"SUCCEEDED"),
            "ends SUCCEEDED: {rest:?}"
        );
        assert_eq!(progress.last(), Some(&1.0));
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]),
            "progress never goes back: {progress:?}"
        );
        let intermediate: HashSet<u64> = progress
            .iter()
            .filter(|p| **p > 0.0 && **p < 1.0)
            .map(|p| (p * 100.0) as u64)
            .collect();
        assert!(intermediate.len() >= 2, "live progress seen: {progress:?}");
        let j = job(&srv, &owner.token, &id).await;
        assert_eq!(j["state"], "SUCCEEDED");
        assert_eq!(j["attempts"], 1);
        assert!(j["finishedAt"].is_string());
        // A subscription to a finished job yields its state once and completes.
        let mut late = Subscription::start(
            &srv.ws_url(),
            Some(&owner.token),
            &ops::operation("JobUpdated"),
            json!({ "id": id }),
        )
        .await
        .unwrap();
        let all = late.collect(Duration::from_secs(10)).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["data"]["jobUpdated"]["state"], "SUCCEEDED");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    retries_then_fails_with_the_last_error,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let reg = registry("test.flaky", move |ctx: JobContext| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                Err(JobError::Retryable(format!(
                    "boom on attempt {}",
                    ctx.job.attempts
                )))
            }
        });
        let srv = TestServer::start(tdb.config(), reg).await.unwrap();
        let owner = srv.register("owner").await;
        let id = submit(&srv, &owner, "test.flaky", 3).await;
        let j = wait_state(&srv, &owner.token, &id, "FAILED").await;
        assert_eq!(j["attempts"], 3);
        assert_eq!(j["error"], "boom on attempt 3");
        assert_eq!(runs.load(Ordering::SeqCst), 3);

        // A permanent error fails at once, without retries.
        let perm = registry("test.perm", |_ctx: JobContext| async {
            Err(JobError::Permanent("input can never work".into()))
        });
        srv.stop().await;
        let srv = TestServer::start(tdb.config(), perm).await.unwrap();
        let owner2 = srv.register("owner2").await;
        let id = submit(&srv, &owner2, "test.perm", 5).await;
        let j = wait_state(&srv, &owner2.token, &id, "FAILED").await;
        assert_eq!(j["attempts"], 1);
        assert_eq!(j["error"], "input can never work");

        // A panicking handler is a failed attempt, not a dead worker.
        srv.stop().await;
        let panicky = registry("test.panic", |_ctx: JobContext| async {
            if std::env::var("NEVER_SET_abc").is_err() {
                panic!("handler bug");
            }
            Ok(())
        });
        let srv = TestServer::start(tdb.config(), panicky).await.unwrap();
        let owner3 = srv.register("owner3").await;
        let id = submit(&srv, &owner3, "test.panic", 2).await;
        let j = wait_state(&srv, &owner3.token, &id, "FAILED").await;
        assert_eq!(j["attempts"], 2);
        assert!(j["error"].as_str().unwrap().contains("panicked"), "{j}");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    a_crashed_workers_job_runs_again_after_lease_expiry,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        // The first run hangs (its worker will "crash"); later runs succeed.
        let reg = move || {
            let r = r.clone();
            registry("test.crash", move |_ctx: JobContext| {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) == 0 {
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                }
            })
        };
        let a = TestServer::start(tdb.config(), reg()).await.unwrap();
        let owner = a.register("owner").await;
        let id = submit(&a, &owner, "test.crash", 3).await;
        wait_state(&a, &owner.token, &id, "RUNNING").await;
        eventually(Duration::from_secs(10), || async {
            (runs.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
        a.node.kill();

        let b = TestServer::start(tdb.config(), reg()).await.unwrap();
        let j = wait_state(&b, &owner.token, &id, "SUCCEEDED").await;
        assert_eq!(
            j["attempts"], 2,
            "the lease expired and the job ran again: {j}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        b.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(cancel_stops_a_running_job, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    let s = saw_cancel.clone();
    let reg = registry("test.long", move |ctx: JobContext| {
        let s = s.clone();
        async move {
            for i in 0..600 {
                ctx.set_progress(i as f64 / 600.0).await;
                tokio::select! {
                    () = ctx.cancelled() => {
                        s.fetch_add(1, Ordering::SeqCst);
                        return Err(JobError::Cancelled);
                    }
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            Ok(())
        }
    });
    let mut config = tdb.config();
    // A long lease: the cancel must arrive by event, not by heartbeat.
    config.jobs.lease_ms = 60_000;
    let srv = TestServer::start(config, reg).await.unwrap();
    let owner = srv.register("owner").await;
    let id = submit(&srv, &owner, "test.long", 3).await;
    wait_state(&srv, &owner.token, &id, "RUNNING").await;
    let r = srv
        .op(Some(&owner.token), "CancelJob", json!({ "id": id }))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let st = r["data"]["cancelJob"]["state"].as_str().unwrap();
    assert!(st == "RUNNING" || st == "CANCELLED", "{r}");
    let j = wait_state(&srv, &owner.token, &id, "CANCELLED").await;
    assert_eq!(j["cancelRequested"], true);
    assert_eq!(saw_cancel.load(Ordering::SeqCst), 1);
    assert!(j["progress"].as_f64().unwrap() < 0.5, "stopped early: {j}");
    // Cancelling again is a no-op on a terminal job.
    let again = srv
        .op(Some(&owner.token), "CancelJob", json!({ "id": id }))
        .await;
    assert_eq!(again["data"]["cancelJob"]["state"], "CANCELLED");

    // A queued job (no worker handles its kind) is cancelled at once.
    let queued = submit(&srv, &owner, "test.nobody", 1).await;
    let r = srv
        .op(Some(&owner.token), "CancelJob", json!({ "id": queued }))
        .await;
    assert_eq!(r["data"]["cancelJob"]["state"], "CANCELLED", "{r}");

    // A VIEWER may not cancel.
    let viewer = srv.register("viewer").await;
    let add = srv
        .op(
            Some(&owner.token),
            "AddMember",
            json!({ "organizationId": owner.org_id, "email": viewer.email, "role": "VIEWER" }),
        )
        .await;
    assert!(add["errors"].is_null(), "{add}");
    let other = submit(&srv, &owner, "test.nobody", 1).await;
    let r = srv
        .op(Some(&viewer.token), "CancelJob", json!({ "id": other }))
        .await;
    assert_code(&r, "FORBIDDEN");
    assert_eq!(job(&srv, &owner.token, &other).await["state"], "QUEUED");
    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(shutdown_releases_running_jobs, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let reg = move || {
        let r = r.clone();
        registry("test.release", move |ctx: JobContext| {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Cooperative: stops when the node shuts down.
                    ctx.cancelled().await;
                    return Err(JobError::Cancelled);
                }
                Ok(())
            }
        })
    };
    let mut config = tdb.config();
    config.jobs.lease_ms = 60_000;
    let a = TestServer::start(config.clone(), reg()).await.unwrap();
    let owner = a.register("owner").await;
    let id = submit(&a, &owner, "test.release", 3).await;
    wait_state(&a, &owner.token, &id, "RUNNING").await;
    a.stop().await;
    // Back in the queue at once (not after the 60 s lease), attempt not counted.
    let b = TestServer::start_roles(
        config.clone(),
        JobRegistry::new(),
        Roles {
            api: true,
            workers: false,
        },
    )
    .await
    .unwrap();
    let j = job(&b, &owner.token, &id).await;
    assert_eq!(j["state"], "QUEUED", "{j}");
    assert_eq!(j["attempts"], 0);
    b.stop().await;
    let c = TestServer::start(config, reg()).await.unwrap();
    let j = wait_state(&c, &owner.token, &id, "SUCCEEDED").await;
    assert_eq!(j["attempts"], 1);
    c.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(
    competing_workers_never_run_a_job_twice,
    |db: DbKind| async move {
        const JOBS: usize = 120;
        let tdb = TestDb::new(db).await.unwrap();
        let executions: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let overlaps = Arc::new(AtomicUsize::new(0));
        let reg = || {
            let (e, f, o) = (executions.clone(), in_flight.clone(), overlaps.clone());
            registry("test.count", move |ctx: JobContext| {
                let (e, f, o) = (e.clone(), f.clone(), o.clone());
                async move {
                    if !f.lock().await.insert(ctx.job.id.clone()) {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    *e.lock().await.entry(ctx.job.id.clone()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    f.lock().await.remove(&ctx.job.id);
                    Ok(())
                }
            })
        };
        let mut config = tdb.config();
        config.jobs.concurrency = 4;
        let a = TestServer::start(config.clone(), reg()).await.unwrap();
        let b = TestServer::start(config.clone(), reg()).await.unwrap();
        let c = TestServer::start(config, reg()).await.unwrap();
        let owner = a.register("owner").await;
        let mut ids = Vec::new();
        for _ in 0..JOBS {
            ids.push(submit(&a, &owner, "test.count", 3).await);
        }
        eventually(Duration::from_secs(60), || async {
            let e = executions.lock().await;
            (e.len() == JOBS).then_some(())
        })
        .await;
        for id in &ids {
            wait_state(&a, &owner.token, id, "SUCCEEDED").await;
        }
        let e = executions.lock().await;
        assert!(e.values().all(|n| *n == 1), "every job ran exactly once");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        drop(e);
        a.stop().await;
        b.stop().await;
        c.stop().await;
        tdb.drop_db().await;
    }
);

/// PostgreSQL only: a subscriber on an API node sees live progress of a job
/// run on a separate worker node (LISTEN/NOTIFY, not the 5 s resync poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_on_postgres() {
    let _shared = evistream_tests::shared().await;
    let tdb = TestDb::new(DbKind::Postgres).await.unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let reg = registry("test.steps", move |ctx: JobContext| {
        let g = g.clone();
        async move {
            g.notified().await;
            for p in [0.2, 0.4, 0.6, 0.8] {
                ctx.set_progress(p).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(())
        }
    });
    let api = TestServer::start_roles(
        tdb.config(),
        JobRegistry::new(),
        Roles {
            api: true,
            workers: false,
        },
    )
    .await
    .unwrap();
    let worker = TestServer::start(tdb.config(), reg).await.unwrap();
    let owner = api.register("owner").await;
    let id = submit(&api, &owner, "test.steps", 1).await;
    let mut sub = Subscription::start(
        &api.ws_url(),
        Some(&owner.token),
        &ops::operation("JobUpdated"),
        json!({ "id": id }),
    )
    .await
    .unwrap();
    sub.next(Duration::from_secs(10)).await.unwrap().unwrap();
    gate.notify_one();
    let rest = sub.collect(Duration::from_secs(20)).await.unwrap();
    let progress: Vec<f64> = rest
        .iter()
        .map(|v| v["data"]["jobUpdated"]["progress"].as_f64().unwrap())
        .collect();
    let intermediate = progress.iter().filter(|p| **p > 0.0 && **p < 1.0).count();
    assert!(
        intermediate >= 3,
        "progress from the other node arrived live: {progress:?}"
    );
    assert_eq!(
        rest.last().unwrap()["data"]["jobUpdated"]["state"],
        "SUCCEEDED"
    );
    worker.stop().await;
    api.stop().await;
    tdb.drop_db().await;
}

/// The payload of the `test.unit` jobs.
#[derive(serde::Serialize, serde::Deserialize)]
struct TestUnit {
    fail: bool,
}

impl evistream::jobs::JobPayload for TestUnit {
    const KIND: &'static str = "test.unit";
}

evistream_tests::dual_db_test!(
    a_parent_ends_once_all_its_units_do_even_when_they_finish_together,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.jobs.concurrency = 8;
        config.jobs.poll_interval_ms = 20;
        // Units that finish at the same moment: the parent's aggregation must
        // not let an older view of the family overwrite a newer one.
        let jobs = registry("test.unit", |ctx: JobContext| async move {
            let fail = ctx.payload::<TestUnit>()?.fail;
            // All at once: the units wait for the same instant, then end.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(50 - now % 50)).await;
            if fail {
                Err(JobError::Permanent("unit failed on purpose".into()))
            } else {
                Ok(())
            }
        });
        let srv = TestServer::start(config, jobs).await.unwrap();
        let owner = srv.register("owner").await;
        for round in 0..12 {
            let parent = evistream::jobs::family::create_parent(
                &srv.node.app.db,
                NewJob {
                    organization_id: owner.org_id.clone(),
                    project_id: None,
                    parent_id: None,
                    kind: "test.run".into(),
                    payload: json!({}),
                    max_attempts: 1,
                },
            )
            .await
            .unwrap();
            // All units in one transaction, as an extraction enqueues them: a
            // worker must not finish the first before the last exists (the
            // family would look complete after one unit).
            let txn = evistream::db::write_txn(&srv.node.app.db).await.unwrap();
            for i in 0..8 {
                evistream::jobs::queue::enqueue(
                    &txn,
                    NewJob {
                        parent_id: Some(parent.id.clone()),
                        ..NewJob::of(
                            &owner.org_id,
                            &TestUnit {
                                fail: round % 2 == 1 && i == 3,
                            },
                            1,
                        )
                    },
                )
                .await
                .unwrap();
            }
            txn.commit().await.unwrap();
            let j = eventually(Duration::from_secs(60), || async {
                let j = job(&srv, &owner.token, &parent.id).await;
                (j["state"] == "SUCCEEDED").then_some(j)
            })
            .await;
            assert_eq!(j["progress"], 1.0, "round {round}: {j}");
            if round % 2 == 1 {
                assert!(
                    j["error"].as_str().unwrap().starts_with("1 of 8 units"),
                    "{j}"
                );
            } else {
                assert_eq!(j["error"], Value::Null);
            }
        }
        srv.stop().await;
        tdb.drop_db().await;
    }
);
