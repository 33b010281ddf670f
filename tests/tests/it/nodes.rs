//! The node lifecycle of a scaled-out deployment, in-process (the real
//! processes are in `host/tests/scale.rs`), on SQLite and PostgreSQL:
//!
//! - migrations run under a database-wide lock: four at once on an empty
//!   database all succeed;
//! - a worker that lost its lease (another claimed the job, bumping the
//!   fencing token) writes nothing: its fenced transaction is refused and
//!   its outcome discarded;
//! - one node leads (a row lease), another takes over when it stops;
//! - a unit whose lease expired is `orphaned` (and its run counts it), and
//!   the leader announces it to subscribers;
//! - retention prunes old units and conversions but keeps the run and its
//!   LLM usage;
//! - a worker-only node serves `/livez`, `/readyz` and `/metrics`;
//! - the WebSocket sends keepalive pings;
//! - the same bytes uploaded under a new name say `alreadyUploaded`.

use std::sync::Arc;
use std::time::Duration;

use evistream::jobs::maintenance;
use evistream::jobs::queue::{self, Lease, NewJob};
use evistream::jobs::{JobContext, JobError, JobHandler, JobRegistry};
use evistream::server::{self, Roles};
use evistream_tests::llm::FakeLlm;
use evistream_tests::ws::{Subscription, WsConn};
use evistream_tests::{TestDb, TestServer, corpus_pdf, dual_db_test, eventually, ok, ops};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::json;

dual_db_test!(
    four_migrations_at_once_on_an_empty_database_all_succeed,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let migrations = (0..4).map(|_| {
            let url = tdb.url.clone();
            tokio::spawn(async move {
                let conn = evistream::db::connect(&url, 2).await?;
                evistream::db::migrate(&conn).await?;
                conn.close().await
            })
        });
        for m in futures::future::join_all(migrations).await {
            m.unwrap().expect("a concurrent migration failed");
        }
        let conn = evistream::db::connect(&tdb.url, 1).await.unwrap();
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT COUNT(*) AS n, COUNT(DISTINCT version) AS d FROM seaql_migrations",
            ))
            .await
            .unwrap()
            .unwrap();
        let (n, d): (i64, i64) = (row.try_get("", "n").unwrap(), row.try_get("", "d").unwrap());
        assert_eq!(n, d, "each migration recorded once");
        assert!(n >= 11, "all migrations applied: {n}");
        conn.close().await.unwrap();
        tdb.drop_db().await;
    }
);

/// A handler that waits for the test, then writes through its fence.
struct Fenced {
    go: Arc<tokio::sync::Notify>,
    wrote: Arc<std::sync::atomic::AtomicBool>,
    refused: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl JobHandler for Fenced {
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        self.go.notified().await;
        let txn = evistream::db::write_txn(&ctx.db).await?;
        if let Err(e) = ctx.fence(&txn).await {
            self.refused
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(e);
        }
        self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
        txn.commit().await?;
        Ok(())
    }
}

dual_db_test!(
    a_worker_that_lost_its_lease_writes_nothing,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let fenced = Fenced {
            go: Default::default(),
            wrote: Default::default(),
            refused: Default::default(),
        };
        let (go, wrote, refused) = (
            fenced.go.clone(),
            fenced.wrote.clone(),
            fenced.refused.clone(),
        );
        let mut jobs = JobRegistry::new();
        jobs.register("test.fenced", fenced);
        let mut config = tdb.config();
        // Long enough that its own heartbeat does not notice first.
        config.jobs.lease_ms = 60_000;
        let srv = TestServer::start(config, jobs).await.unwrap();
        let owner = srv.register("owner").await;
        let app = srv.node.app.clone();
        let job = evistream::jobs::service::submit(
            &app,
            NewJob {
                organization_id: owner.org_id.clone(),
                project_id: None,
                parent_id: None,
                kind: "test.fenced".into(),
                payload: json!({}),
                max_attempts: 3,
            },
        )
        .await
        .unwrap();
        let held = eventually(Duration::from_secs(10), || async {
            let j = evistream::db::entities::job::Entity::find_by_id(job.id.as_str())
                .one(&app.db)
                .await
                .unwrap()?;
            (j.lease_owner.is_some()).then_some(j)
        })
        .await;
        // As if the worker froze past its lease: the lease expires and
        // another worker claims the job (the claim bumps the token). Tried
        // again if the worker's first heartbeat renewed it meanwhile.
        let thief = eventually(Duration::from_secs(10), || async {
            app.db
                .execute_raw(Statement::from_sql_and_values(
                    app.db.get_database_backend(),
                    if evistream::db::is_postgres(&app.db) {
                        "UPDATE jobs SET lease_expires_at = 0 WHERE id = $1"
                    } else {
                        "UPDATE jobs SET lease_expires_at = 0 WHERE id = ?"
                    },
                    [held.id.clone().into()],
                ))
                .await
                .unwrap();
            queue::claim(
                &app.db,
                "thief",
                &["test.fenced".to_owned()],
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        })
        .await;
        assert_eq!(thief.id, held.id);
        assert_eq!(thief.lease_token, held.lease_token + 1);
        // The first worker resumes: its fence refuses, it writes nothing,
        // and the job stays the thief's.
        go.notify_one();
        eventually(Duration::from_secs(10), || async {
            refused
                .load(std::sync::atomic::Ordering::SeqCst)
                .then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!wrote.load(std::sync::atomic::Ordering::SeqCst));
        let now = evistream::db::entities::job::Entity::find_by_id(job.id.as_str())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.lease_owner.as_deref(), Some("thief"), "{now:?}");
        assert_eq!(now.state, evistream::jobs::JobState::Running);
        // The stale lease can neither fence, beat nor finish.
        let stale = Lease::of(&held).unwrap();
        assert!(
            !queue::fence(&app.db, &stale, Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            queue::heartbeat(&app.db, &stale, Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            queue::finish(&app.db, &stale, queue::Outcome::Succeeded)
                .await
                .unwrap()
                .is_none()
        );
        // The thief's lease does all three.
        let live = Lease::of(&thief).unwrap();
        assert!(
            queue::fence(&app.db, &live, Duration::from_secs(5))
                .await
                .unwrap()
        );
        let done = queue::finish(&app.db, &live, queue::Outcome::Succeeded)
            .await
            .unwrap()
            .expect("the holder finishes");
        assert_eq!(done.state, evistream::jobs::JobState::Succeeded);
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(one_node_leads_and_another_takes_over, |db| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let a = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let b = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let leaders = || (a.node.app.node.is_leader(), b.node.app.node.is_leader());
    let first = eventually(Duration::from_secs(20), || async {
        match leaders() {
            (true, false) => Some('a'),
            (false, true) => Some('b'),
            _ => None,
        }
    })
    .await;
    // A second owner cannot take a live lease.
    assert!(
        !maintenance::try_lead(
            &a.node.app.db,
            maintenance::LEADER,
            "intruder",
            Duration::from_secs(5)
        )
        .await
        .unwrap()
    );
    // The leader stops (resigning its lease); the other leads within a tick.
    let rest = if first == 'a' {
        a.stop().await;
        b
    } else {
        b.stop().await;
        a
    };
    eventually(Duration::from_secs(15), || async {
        rest.node.app.node.is_leader().then_some(())
    })
    .await;
    rest.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(an_orphaned_unit_is_shown_and_announced, |db| async move {
    let tdb = TestDb::new(db).await.unwrap();
    // No worker handles the kind: the unit is claimed by hand below.
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let owner = srv.register("owner").await;
    let app = srv.node.app.clone();
    let parent = evistream::jobs::family::create_parent(
        &app.db,
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
    let unit = queue::enqueue(
        &app.db,
        NewJob {
            organization_id: owner.org_id.clone(),
            project_id: None,
            parent_id: Some(parent.id.clone()),
            kind: "test.orphan".into(),
            payload: json!({}),
            max_attempts: 3,
        },
    )
    .await
    .unwrap();
    let mut sub = Subscription::start(
        &srv.ws_url(),
        Some(&owner.token),
        &ops::operation("JobUpdated"),
        json!({ "id": unit.id }),
    )
    .await
    .unwrap();
    sub.next(Duration::from_secs(10)).await.unwrap().unwrap();
    // A worker claims it with a short lease, then dies.
    queue::claim(
        &app.db,
        "dead-worker",
        &["test.orphan".into()],
        Duration::from_millis(300),
    )
    .await
    .unwrap()
    .expect("claimed");
    let q = "query($id: ID!) { job(id: $id) { state orphaned orphanedUnits } }";
    // Nobody announced the claim: the next event is the leader's.
    let seen = sub.next(Duration::from_secs(20)).await.unwrap().unwrap();
    assert_eq!(seen["data"]["jobUpdated"]["state"], "RUNNING", "{seen}");
    let shown = eventually(Duration::from_secs(10), || async {
        let r = srv
            .gql(Some(&owner.token), q, json!({ "id": unit.id }))
            .await;
        (ok(&r, "job")["orphaned"] == true).then_some(r)
    })
    .await;
    assert_eq!(ok(&shown, "job")["state"], "RUNNING");
    let run = srv
        .gql(Some(&owner.token), q, json!({ "id": parent.id }))
        .await;
    assert_eq!(ok(&run, "job")["orphanedUnits"], 1, "{run}");
    assert_eq!(ok(&run, "job")["orphaned"], false);
    assert!(
        maintenance::orphans(&app.db)
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == unit.id)
    );
    srv.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(
    retention_prunes_old_units_and_keeps_the_run_and_its_usage,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let llm = FakeLlm::start().await;
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "old").await;
        srv.bind_llm(
            &owner.token,
            &project,
            "openai-compatible",
            &llm.base_url,
            "gpt-test",
            "sk-x",
        )
        .await;
        let name = std::fs::read_dir(ops::repo_root().join("../shared/corpus/rct/pdf"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.ends_with(".pdf"))
            .unwrap();
        let docs = srv.converted_papers(&owner.token, &project, &[&name]).await;
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "sample_size", "type": "INTEGER", "description": "Participants" }]),
            )
            .await;
        let run = srv.run_extraction(&owner.token, &project, &version).await;
        let usage = || async {
            let r = srv
                .op(Some(&owner.token), "JobLlmUsage", json!({ "id": run }))
                .await;
            ok(&r, "job")["llmUsage"]["calls"].as_i64().unwrap()
        };
        let calls = usage().await;
        assert!(calls > 0);
        let app = srv.node.app.clone();
        // Nothing is old yet.
        assert_eq!(maintenance::prune(&app.db, 30).await.unwrap(), 0);
        // Forty days pass.
        app.db
            .execute_unprepared(&format!(
                "UPDATE jobs SET finished_at = finished_at - {} WHERE finished_at IS NOT NULL",
                40_i64 * 86_400_000
            ))
            .await
            .unwrap();
        let pruned = maintenance::prune(&app.db, 30).await.unwrap();
        // The unit and the conversion; the run's own row stays.
        assert_eq!(pruned, 2, "one unit and one conversion pruned");
        let r = srv
            .op(Some(&owner.token), "Job", json!({ "id": run }))
            .await;
        assert_eq!(ok(&r, "job")["state"], "SUCCEEDED");
        assert_eq!(usage().await, calls, "the run's LLM usage is whole");
        let d = srv
            .gql(
                Some(&owner.token),
                "query($id: ID!) { document(id: $id) { status job { id } } }",
                json!({ "id": docs[0] }),
            )
            .await;
        assert_eq!(ok(&d, "document")["status"], "COMPLETED");
        assert!(ok(&d, "document")["job"].is_null(), "{d}");
        assert_eq!(maintenance::prune(&app.db, 30).await.unwrap(), 0);
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(
    a_worker_node_serves_its_operations_endpoints,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let node = server::launch(
            tdb.config(),
            JobRegistry::new(),
            None,
            Roles {
                api: false,
                workers: true,
            },
        )
        .await
        .unwrap();
        assert!(node.addr.is_none(), "no API on a worker");
        let ops = node.ops_addr.expect("an operations address");
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("http://{ops}{path}")).send();
        assert_eq!(get("/livez").await.unwrap().status(), 200);
        let ready = get("/readyz").await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["components"]["database"]["status"], "ok");
        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains("# TYPE evistream_leader gauge"),
            "{metrics}"
        );
        // The API is not there.
        assert_eq!(get("/graphql").await.unwrap().status(), 404);
        node.shutdown().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(a_quiet_websocket_gets_keepalive_pings, |db| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    config.limits.ws_keepalive_secs = 1;
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let mut ws = WsConn::connect(&srv.ws_url(), None).await.unwrap();
    let started = std::time::Instant::now();
    assert!(
        ws.pinged(Duration::from_secs(5)).await.unwrap(),
        "a ping frame"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(
        ws.pinged(Duration::from_secs(5)).await.unwrap(),
        "and another"
    );
    srv.stop().await;
    tdb.drop_db().await;
});

dual_db_test!(
    the_same_bytes_under_a_new_name_say_already_uploaded,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "dups").await;
        let name = std::fs::read_dir(ops::repo_root().join("../shared/corpus/rct/pdf"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.ends_with(".pdf"))
            .unwrap();
        let q = "mutation($p: ID!, $f: Upload!) { uploadDocument(projectId: $p, file: $f) { id filename alreadyUploaded } }";
        let up = |filename: &'static str| {
            srv.multipart_query(
                Some(&owner.token),
                q,
                json!({ "p": project }),
                "f",
                filename,
                corpus_pdf(&name),
            )
        };
        let first = up("first.pdf").await;
        let first = ok(&first, "uploadDocument");
        assert_eq!(first["alreadyUploaded"], false);
        let second = up("second.pdf").await;
        let second = ok(&second, "uploadDocument");
        assert_eq!(second["alreadyUploaded"], true);
        assert_eq!(second["id"], first["id"]);
        assert_eq!(
            second["filename"], "first.pdf",
            "the existing document, as it was named"
        );
        srv.stop().await;
        tdb.drop_db().await;
    }
);

dual_db_test!(
    an_extraction_unit_that_lost_its_lease_stores_no_result,
    |db| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let llm = FakeLlm::start().await;
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true;
        // The worker's own heartbeat (a third of the lease) must not notice
        // the theft before the unit writes: only the fence stands in the way.
        config.jobs.lease_ms = 120_000;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "fenced").await;
        srv.bind_llm(
            &owner.token,
            &project,
            "openai-compatible",
            &llm.base_url,
            "gpt-test",
            "sk-x",
        )
        .await;
        let name = std::fs::read_dir(ops::repo_root().join("../shared/corpus/rct/pdf"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.ends_with(".pdf"))
            .unwrap();
        srv.converted_papers(&owner.token, &project, &[&name]).await;
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([{ "name": "sample_size", "type": "INTEGER", "description": "Participants" }]),
            )
            .await;
        llm.set_latency(Duration::from_millis(1_500));
        let run = srv.start_extraction(&owner.token, &project, &version).await;
        // The unit is waiting on the model: steal its lease meanwhile.
        eventually(Duration::from_secs(30), || async {
            (llm.request_count() > 0).then_some(())
        })
        .await;
        let app = srv.node.app.clone();
        let kind = evistream::extraction::UNIT_JOB.to_owned();
        let stolen = eventually(Duration::from_secs(10), || async {
            app.db
                .execute_unprepared(&format!(
                    "UPDATE jobs SET lease_expires_at = 0 WHERE parent_id = '{run}' AND state = 'running'"
                ))
                .await
                .unwrap();
            queue::claim(&app.db, "thief", std::slice::from_ref(&kind), Duration::from_secs(120))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(stolen.parent_id.as_deref(), Some(run.as_str()));
        // The model answers; the unit goes on to store its result, and its
        // fence refuses: nothing is stored, the unit stays the thief's.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let results = app
            .db
            .query_one_raw(Statement::from_string(
                app.db.get_database_backend(),
                format!(
                    "SELECT COUNT(*) AS n FROM extraction_results r JOIN extraction_runs x ON x.id = r.run_id WHERE x.job_id = '{run}'"
                ),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(results, 0, "the worker that lost its lease stored nothing");
        let unit = evistream::db::entities::job::Entity::find_by_id(stolen.id.as_str())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unit.lease_owner.as_deref(), Some("thief"));
        assert_eq!(unit.lease_token, stolen.lease_token);
        srv.stop().await;
        tdb.drop_db().await;
    }
);
