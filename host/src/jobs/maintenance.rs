//! Work that one node of a deployment does for all of them, and what every
//! node says about itself.
//!
//! The **leader** holds a row lease in `node_leases` (renewed every
//! [`TICK`], lost [`LEADER_TTL`] after its holder stops renewing it; any
//! node may take it then). It needs no extra connection and works on
//! SQLite and PostgreSQL alike. The leader alone:
//!
//! - reports the queue depth on `/metrics` (`evistream_queue_jobs`), so a
//!   sum over every pod's scrape counts each job once;
//! - announces units whose worker stopped renewing its lease (orphans:
//!   they wait for another worker to claim them), so subscribers see it;
//! - prunes finished jobs older than `jobs.retention_days`, and export
//!   snapshots older than `limits.export_ttl_hours`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};
use tokio_util::sync::CancellationToken;

use super::{JobState, announce};
use crate::app::App;
use crate::db::entities::{document, extraction_run, job, llm_call};
use crate::db::now_ms;
use crate::error::ServiceResult;

/// Name of the leader's lease.
pub const LEADER: &str = "maintenance";
/// How often a node tries to take or renew leadership.
pub const TICK: Duration = Duration::from_secs(5);
/// How long leadership lasts without renewal.
pub const LEADER_TTL: Duration = Duration::from_secs(15);
/// How often the leader prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// A worker loop that has not turned for this long is reported dead by `/livez`.
const WORKER_STALL: Duration = Duration::from_secs(60);
/// Rows one pruning statement touches (short transactions, bounded IN lists).
const PRUNE_BATCH: u64 = 500;

/// This node: its name, whether it leads, whether its worker loop turns.
pub struct Node {
    /// Unique per process: `<hostname>-<8 hex>`; job leases name it.
    pub id: String,
    leader: AtomicBool,
    /// Last turn of the worker loop (ms since the epoch); 0 = no workers here.
    worker_tick: AtomicI64,
}

impl Node {
    /// A node named after the host.
    pub fn new() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            id: format!("{host}-{}", suffix.get(..8).unwrap_or("n")),
            leader: AtomicBool::new(false),
            worker_tick: AtomicI64::new(0),
        }
    }

    /// True while this node holds the leader's lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// The worker loop calls this on every turn.
    pub fn worker_turned(&self) {
        self.worker_tick.store(now_ms(), Ordering::SeqCst);
    }

    /// `Some(false)` when this node runs workers whose loop stopped turning.
    pub fn workers_alive(&self) -> Option<bool> {
        match self.worker_tick.load(Ordering::SeqCst) {
            0 => None,
            t => Some(now_ms() - t < WORKER_STALL.as_millis() as i64),
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes or renews the lease `name` for `owner` until `ttl` from now;
/// true when `owner` holds it afterwards.
pub async fn try_lead<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> ServiceResult<bool> {
    let backend = conn.get_database_backend();
    let now = now_ms();
    let until = now + ttl.as_millis() as i64;
    let pg = backend == DbBackend::Postgres;
    let ph = |i: usize| if pg { format!("${i}") } else { "?".to_owned() };
    let renew = Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE node_leases SET owner = {}, expires_at = {} \
             WHERE name = {} AND (owner = {} OR expires_at < {})",
            ph(1),
            ph(2),
            ph(3),
            ph(4),
            ph(5)
        ),
        [
            Value::from(owner),
            until.into(),
            name.into(),
            owner.into(),
            now.into(),
        ],
    );
    if conn.execute_raw(renew).await?.rows_affected() == 1 {
        return Ok(true);
    }
    let insert = Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO node_leases (name, owner, expires_at) VALUES ({}, {}, {}) \
             ON CONFLICT (name) DO NOTHING",
            ph(1),
            ph(2),
            ph(3)
        ),
        [Value::from(name), owner.into(), until.into()],
    );
    Ok(conn.execute_raw(insert).await?.rows_affected() == 1)
}

/// Gives the lease up (on shutdown), so another node leads at once.
pub async fn resign<C: ConnectionTrait>(conn: &C, name: &str, owner: &str) -> ServiceResult<()> {
    let backend = conn.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let sql = if pg {
        "DELETE FROM node_leases WHERE name = $1 AND owner = $2"
    } else {
        "DELETE FROM node_leases WHERE name = ? AND owner = ?"
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(name), owner.into()],
    ))
    .await?;
    Ok(())
}

/// The leader's loop, on every node: lead when nobody else does, and do
/// the leader's duties while leading. Ends at `shutdown`, resigning.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let mut announced: HashSet<(String, i64)> = HashSet::new();
    let mut last_prune: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let leads = match try_lead(&app.db, LEADER, &app.node.id, LEADER_TTL).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "leader lease not renewed");
                false
            }
        };
        if leads != app.node.is_leader() {
            tracing::info!(node = %app.node.id, leader = leads, "leadership changed");
        }
        app.node.leader.store(leads, Ordering::SeqCst);
        if !leads {
            announced.clear();
            continue;
        }
        if let Err(e) = announce_orphans(&app, &mut announced).await {
            tracing::warn!(error = %e, "orphaned units not checked");
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            let days = app.config.jobs.retention_days;
            if days > 0 {
                match prune(&app.db, days).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, days, "pruned finished jobs"),
                    Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed"),
                }
            }
            match crate::export::prune_expired(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed expired export snapshots"),
                Err(e) => tracing::warn!(error = %e, "removing expired exports failed"),
            }
        }
    }
    if app.node.is_leader() {
        app.node.leader.store(false, Ordering::SeqCst);
        if let Err(e) = resign(&app.db, LEADER, &app.node.id).await {
            tracing::debug!(error = %e, "leader lease not given up");
        }
    }
}

/// Running units whose lease expired: their worker died or froze, and
/// they wait for another worker to claim them.
pub async fn orphans(db: &DatabaseConnection) -> ServiceResult<Vec<job::Model>> {
    Ok(job::Entity::find()
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .filter(job::Column::LeaseOwner.is_not_null())
        .filter(job::Column::LeaseExpiresAt.lt(now_ms()))
        .limit(1000)
        .all(db)
        .await?)
}

/// True for a running job whose worker stopped renewing its lease.
pub fn is_orphaned(j: &job::Model, now: i64) -> bool {
    j.state == JobState::Running
        && j.lease_owner.is_some()
        && j.lease_expires_at.is_some_and(|t| t < now)
}

/// Announces each newly orphaned unit (and its parent) once per claim, so
/// that a subscriber re-reads it and sees `orphaned`.
async fn announce_orphans(app: &App, announced: &mut HashSet<(String, i64)>) -> ServiceResult<()> {
    let now_orphaned = orphans(&app.db).await?;
    let current: HashSet<(String, i64)> = now_orphaned
        .iter()
        .map(|j| (j.id.clone(), j.lease_token))
        .collect();
    announced.retain(|k| current.contains(k));
    let mut parents = HashSet::new();
    for j in &now_orphaned {
        if announced.insert((j.id.clone(), j.lease_token)) {
            tracing::warn!(job_id = %j.id, kind = %j.kind, owner = ?j.lease_owner, "unit orphaned: its worker stopped renewing the lease; it runs again when a worker claims it");
            announce(&app.bus, j).await;
            if let Some(p) = &j.parent_id {
                parents.insert(p.clone());
            }
        }
    }
    for p in parents {
        if let Some(parent) = job::Entity::find_by_id(p).one(&app.db).await? {
            announce(&app.bus, &parent).await;
        }
    }
    Ok(())
}

const TERMINAL: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// Deletes finished jobs older than `days`: the units of finished runs
/// (their LLM calls are re-attributed to the run first, so its usage
/// stays whole) and finished jobs nothing refers to (conversions: the
/// document forgets its last job). A run's own row stays. Returns how
/// many rows went.
pub async fn prune(db: &DatabaseConnection, days: u32) -> ServiceResult<u64> {
    let cutoff = now_ms() - i64::from(days) * 86_400_000;
    let mut total = 0u64;
    // Units whose run has ended.
    loop {
        let units: Vec<(String, Option<String>)> = job::Entity::find()
            .select_only()
            .column(job::Column::Id)
            .column(job::Column::ParentId)
            .filter(job::Column::ParentId.is_not_null())
            .filter(job::Column::State.is_in(TERMINAL))
            .filter(job::Column::FinishedAt.lt(cutoff))
            .limit(PRUNE_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if units.is_empty() {
            break;
        }
        let txn = crate::db::write_txn(db).await?;
        let mut by_parent: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (id, parent) in &units {
            if let Some(p) = parent {
                by_parent.entry(p.clone()).or_default().push(id.clone());
            }
        }
        for (parent, ids) in &by_parent {
            llm_call::Entity::update_many()
                .col_expr(llm_call::Column::JobId, Expr::value(parent.as_str()))
                .filter(llm_call::Column::JobId.is_in(ids.iter().map(String::as_str)))
                .exec(&txn)
                .await?;
        }
        let ids: Vec<&str> = units.iter().map(|(id, _)| id.as_str()).collect();
        total += job::Entity::delete_many()
            .filter(job::Column::Id.is_in(ids))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
    }
    // Standalone jobs: not a run's record, not a parent.
    let mut last = String::new();
    loop {
        let candidates: Vec<String> = job::Entity::find()
            .select_only()
            .column(job::Column::Id)
            .filter(job::Column::ParentId.is_null())
            .filter(job::Column::LeaseOwner.is_null())
            .filter(job::Column::State.is_in(TERMINAL))
            .filter(job::Column::FinishedAt.lt(cutoff))
            .filter(job::Column::Id.gt(last.as_str()))
            .order_by_asc(job::Column::Id)
            .limit(PRUNE_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        let Some(tail) = candidates.last() else { break };
        last = tail.clone();
        let runs: HashSet<String> = extraction_run::Entity::find()
            .select_only()
            .column(extraction_run::Column::JobId)
            .filter(extraction_run::Column::JobId.is_in(candidates.iter().map(String::as_str)))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        let parents: HashSet<String> = job::Entity::find()
            .select_only()
            .column(job::Column::ParentId)
            .filter(job::Column::ParentId.is_in(candidates.iter().map(String::as_str)))
            .into_tuple::<Option<String>>()
            .all(db)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let gone: Vec<&str> = candidates
            .iter()
            .filter(|id| !runs.contains(*id) && !parents.contains(*id))
            .map(String::as_str)
            .collect();
        if gone.is_empty() {
            continue;
        }
        let txn = crate::db::write_txn(db).await?;
        document::Entity::update_many()
            .col_expr(document::Column::JobId, Expr::value(Option::<String>::None))
            .filter(document::Column::JobId.is_in(gone.iter().copied()))
            .exec(&txn)
            .await?;
        total += job::Entity::delete_many()
            .filter(job::Column::Id.is_in(gone))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
    }
    Ok(total)
}

/// One count of the queue: a kind of job in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    /// Job kind.
    pub kind: String,
    /// `runnable` (queued and due), `scheduled` (queued for a later retry),
    /// `running` (leased), `orphaned` (leased, lease expired).
    pub state: &'static str,
    /// How many.
    pub n: i64,
}

/// The queue by kind and state, units and standalone jobs only (a parent
/// row is no worker's work). Reads the non-terminal rows through the claim
/// index, never the finished history.
pub async fn queue_depth(db: &DatabaseConnection) -> ServiceResult<Vec<Depth>> {
    let backend = db.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let p = if pg { "$1" } else { "?" };
    let sql = format!(
        "SELECT kind, CASE \
           WHEN state = 'queued' AND run_at <= {p} THEN 'runnable' \
           WHEN state = 'queued' THEN 'scheduled' \
           WHEN lease_expires_at < {p} THEN 'orphaned' \
           ELSE 'running' END AS s, COUNT(*) AS n \
         FROM jobs WHERE state = 'queued' OR (state = 'running' AND lease_owner IS NOT NULL) \
         GROUP BY kind, s ORDER BY kind, s"
    );
    let now = now_ms();
    let values: Vec<Value> = if pg {
        vec![now.into()]
    } else {
        vec![now.into(), now.into()]
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let kind: String = r.try_get("", "kind")?;
        let s: String = r.try_get("", "s")?;
        let n: i64 = r.try_get("", "n")?;
        let state = match s.as_str() {
            "runnable" => "runnable",
            "scheduled" => "scheduled",
            "orphaned" => "orphaned",
            _ => "running",
        };
        out.push(Depth { kind, state, n });
    }
    Ok(out)
}

/// The queue depth in Prometheus text, for the leader's `/metrics`.
pub fn render_depth(depth: &[Depth]) -> String {
    let mut out = String::from(
        "# HELP evistream_queue_jobs Jobs waiting or running, by kind and state (runnable, scheduled, running, orphaned); parent rows excluded. Reported by the leader only, so a sum over nodes counts each job once.\n\
         # TYPE evistream_queue_jobs gauge\n",
    );
    for d in depth {
        let _ = writeln!(
            out,
            "evistream_queue_jobs{{kind=\"{}\",state=\"{}\"}} {}",
            d.kind.replace(['\\', '"', '\n'], "_"),
            d.state,
            d.n
        );
    }
    out
}
