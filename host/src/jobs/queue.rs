//! The queue's state transitions, each one conditional SQL so concurrent
//! workers, API nodes and crashed processes can never double-apply one.
//!
//! ```text
//! queued ──claim──▶ running ──ok──────────▶ succeeded
//!    ▲                 │ ├──error, attempts left──▶ queued (run_at = now + backoff)
//!    │                 │ ├──error, none left / permanent──▶ failed
//!    └──lease expired──┘ └──cancel requested──▶ cancelled
//! queued ──cancel──▶ cancelled
//! ```

use std::time::Duration;

use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set,
    Statement, Value,
};

use super::{JobState, QueueTimings};
use crate::db::entities::job;
use crate::db::{new_id, now_ms};
use crate::error::ServiceResult;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Tenant.
    pub organization_id: String,
    /// Project, when the job belongs to one.
    pub project_id: Option<String>,
    /// Parent job (units of a larger job).
    pub parent_id: Option<String>,
    /// Handler kind.
    pub kind: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Maximum attempts (≥ 1).
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `payload`'s kind in `organization_id`, with up to `max_attempts`.
    pub fn of<P: super::JobPayload>(organization_id: &str, payload: &P, max_attempts: i32) -> Self {
        Self {
            organization_id: organization_id.to_owned(),
            project_id: None,
            parent_id: None,
            kind: P::KIND.to_owned(),
            // A payload is plain data: serializing it cannot fail.
            payload: serde_json::to_value(payload).unwrap_or_default(),
            max_attempts,
        }
    }
}

/// Inserts a queued job, runnable now.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, new: NewJob) -> ServiceResult<job::Model> {
    let now = now_ms();
    Ok(job::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(new.organization_id),
        project_id: Set(new.project_id),
        parent_id: Set(new.parent_id),
        kind: Set(new.kind),
        payload: Set(new.payload.to_string()),
        state: Set(JobState::Queued),
        attempts: Set(0),
        max_attempts: Set(Ord::max(new.max_attempts, 1)),
        run_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        lease_token: Set(0),
        progress: Set(0.0),
        error: Set(None),
        cancel_requested: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
    }
    .insert(conn)
    .await?)
}

/// Claims the next runnable job of one of `kinds` for `worker`: a queued job
/// whose `run_at` has come, or a running job whose lease expired (its worker
/// died). PostgreSQL: `FOR UPDATE SKIP LOCKED`. SQLite: the single UPDATE
/// statement takes the write lock before it reads, so it is atomic.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    worker: &str,
    kinds: &[String],
    lease: Duration,
) -> ServiceResult<Option<job::Model>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let expires = now + lease.as_millis() as i64;
    let backend = conn.get_database_backend();
    let pg = backend == DbBackend::Postgres;
    let ph = |i: usize| if pg { format!("${i}") } else { "?".to_owned() };
    let kind_list: Vec<String> = (0..kinds.len()).map(|i| ph(i + 5)).collect();
    let sql = format!(
        "UPDATE jobs SET state = 'running', lease_owner = {p1}, lease_expires_at = {p2}, \
         attempts = attempts + 1, lease_token = lease_token + 1, started_at = COALESCE(started_at, {p3}), updated_at = {p4} \
         WHERE id = (SELECT id FROM jobs WHERE \
           ((state = 'queued' AND run_at <= {p3}) OR (state = 'running' AND lease_expires_at < {p3})) \
           AND kind IN ({kinds}) ORDER BY run_at, id LIMIT 1{lock}) \
         RETURNING *",
        p1 = ph(1),
        p2 = ph(2),
        p3 = ph(3),
        p4 = ph(4),
        kinds = kind_list.join(", "),
        lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" },
    );
    // PostgreSQL numbers its parameters ($3 is reused); SQLite's `?` are
    // positional, so `now` is bound once per use there.
    let mut values: Vec<Value> = if pg {
        vec![worker.into(), expires.into(), now.into(), now.into()]
    } else {
        vec![
            worker.into(),
            expires.into(),
            now.into(),
            now.into(),
            now.into(),
            now.into(),
        ]
    };
    values.extend(kinds.iter().map(|k| Value::from(k.as_str())));
    let stmt = Statement::from_sql_and_values(backend, sql, values);
    Ok(job::Entity::find().from_raw_sql(stmt).one(conn).await?)
}

/// What a worker holds while it runs a job: the row, its own name and the
/// fencing token of its claim. Every write on the job's behalf is
/// conditional on all three, so a worker that was frozen past its lease
/// (and whose job another worker claimed, bumping the token) writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: String,
    /// The worker that claimed it.
    pub owner: String,
    /// `lease_token` as the claim left it.
    pub token: i64,
}

impl Lease {
    /// The lease a claim returned.
    pub fn of(claimed: &job::Model) -> Option<Self> {
        Some(Self {
            job_id: claimed.id.clone(),
            owner: claimed.lease_owner.clone()?,
            token: claimed.lease_token,
        })
    }

    /// Restricts an update to the job while this lease holds it.
    fn held(&self, q: sea_orm::UpdateMany<job::Entity>) -> sea_orm::UpdateMany<job::Entity> {
        q.filter(job::Column::Id.eq(self.job_id.as_str()))
            .filter(job::Column::LeaseOwner.eq(self.owner.as_str()))
            .filter(job::Column::LeaseToken.eq(self.token))
            .filter(job::Column::State.eq(JobState::Running.as_str()))
    }
}

/// Extends the lease. `Ok(None)` when the lease was lost (another worker
/// took the job over, or it was finished elsewhere); else whether cancel was requested.
pub async fn heartbeat<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    length: Duration,
) -> ServiceResult<Option<bool>> {
    let now = now_ms();
    let q = job::Entity::update_many()
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(now + length.as_millis() as i64),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now));
    let res = lease.held(q).exec(conn).await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    Ok(job::Entity::find_by_id(lease.job_id.as_str())
        .one(conn)
        .await?
        .map(|j| j.cancel_requested))
}

/// The fence of a unit's effects: inside the transaction that writes them,
/// checks that `lease` still holds the job and has not expired, and
/// extends it. `false`: the lease is gone and the transaction must write
/// nothing. On PostgreSQL the update locks the job row until the
/// transaction ends, so no other worker can claim the job between this
/// check and the commit; on SQLite the write transaction holds the
/// database's write lock, which claims need too.
pub async fn fence<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    length: Duration,
) -> ServiceResult<bool> {
    let now = now_ms();
    let q = job::Entity::update_many()
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(now + length.as_millis() as i64),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::LeaseExpiresAt.gt(now));
    Ok(lease.held(q).exec(conn).await?.rows_affected == 1)
}

/// Writes progress while the worker still holds the lease.
pub async fn set_progress<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    progress: f64,
) -> ServiceResult<bool> {
    let q = job::Entity::update_many()
        .col_expr(job::Column::Progress, Expr::value(progress.clamp(0.0, 1.0)))
        .col_expr(job::Column::UpdatedAt, Expr::value(now_ms()));
    Ok(lease.held(q).exec(conn).await?.rows_affected == 1)
}

/// The end of one run, as the worker decided it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Success.
    Succeeded,
    /// Failure that will be retried at `run_at`.
    Retry {
        /// Error of this attempt.
        error: String,
        /// Delay before the next attempt.
        delay: Duration,
    },
    /// Final failure.
    Failed(String),
    /// Cancelled on request.
    Cancelled,
    /// Worker shutting down: back to the queue, this attempt not counted.
    Released,
}

/// Records `outcome` if `lease` still holds the job; returns the new row.
pub async fn finish<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    outcome: Outcome,
) -> ServiceResult<Option<job::Model>> {
    let now = now_ms();
    let mut q = job::Entity::update_many()
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Option::<i64>::None),
        );
    let terminal = |q: sea_orm::UpdateMany<job::Entity>, state: JobState| {
        q.col_expr(job::Column::State, Expr::value(state.as_str()))
            .col_expr(job::Column::FinishedAt, Expr::value(now))
    };
    q = match &outcome {
        Outcome::Succeeded => terminal(q, JobState::Succeeded)
            .col_expr(job::Column::Progress, Expr::value(1.0))
            .col_expr(job::Column::Error, Expr::value(Option::<String>::None)),
        Outcome::Failed(e) => {
            terminal(q, JobState::Failed).col_expr(job::Column::Error, Expr::value(e.clone()))
        }
        Outcome::Cancelled => terminal(q, JobState::Cancelled),
        Outcome::Retry { error, delay } => q
            .col_expr(job::Column::State, Expr::value(JobState::Queued.as_str()))
            .col_expr(job::Column::Error, Expr::value(error.clone()))
            .col_expr(
                job::Column::RunAt,
                Expr::value(now + delay.as_millis() as i64),
            ),
        Outcome::Released => q
            .col_expr(job::Column::State, Expr::value(JobState::Queued.as_str()))
            .col_expr(job::Column::RunAt, Expr::value(now))
            .col_expr(
                job::Column::Attempts,
                Expr::col(job::Column::Attempts).sub(1),
            ),
    };
    let res = lease.held(q).exec(conn).await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    Ok(job::Entity::find_by_id(lease.job_id.as_str())
        .one(conn)
        .await?)
}

/// Asks a job to stop. A queued job is cancelled at once; a running one gets
/// its `cancel_requested` flag (its worker sees it via the bus or its next
/// heartbeat). Terminal jobs stay as they are. Returns the row after.
pub async fn request_cancel<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> ServiceResult<Option<job::Model>> {
    let now = now_ms();
    job::Entity::update_many()
        .col_expr(
            job::Column::State,
            Expr::value(JobState::Cancelled.as_str()),
        )
        .col_expr(job::Column::CancelRequested, Expr::value(true))
        .col_expr(job::Column::FinishedAt, Expr::value(now))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.eq(JobState::Queued.as_str()))
        .exec(conn)
        .await?;
    job::Entity::update_many()
        .col_expr(job::Column::CancelRequested, Expr::value(true))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .exec(conn)
        .await?;
    Ok(job::Entity::find_by_id(id).one(conn).await?)
}

/// Puts a finished job back in the queue with fresh attempts.
pub async fn requeue<C: ConnectionTrait>(conn: &C, id: &str) -> ServiceResult<()> {
    let now = now_ms();
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Queued.as_str()))
        .col_expr(job::Column::Attempts, Expr::value(0))
        .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(job::Column::CancelRequested, Expr::value(false))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Exponential backoff with full jitter: a random delay in
/// [base·2^(n-1)/2, base·2^(n-1)], capped.
pub fn backoff(t: &QueueTimings, attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 30) as u32 - 1;
    let ceiling = t
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(t.retry_max);
    let ms = ceiling.as_millis() as u64;
    let low = ms / 2;
    Duration::from_millis(if ms > low {
        rand::rng().random_range(low..=ms)
    } else {
        ms
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let t = QueueTimings {
            lease: Duration::from_secs(30),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1_000),
        };
        for _ in 0..200 {
            let d1 = backoff(&t, 1).as_millis();
            assert!((50..=100).contains(&d1), "attempt 1: {d1}");
            let d3 = backoff(&t, 3).as_millis();
            assert!((200..=400).contains(&d3), "attempt 3: {d3}");
            let d20 = backoff(&t, 20).as_millis();
            assert!((500..=1_000).contains(&d20), "capped: {d20}");
        }
        // Jitter: not every delay is the same.
        let distinct: std::collections::HashSet<u128> =
            (0..50).map(|_| backoff(&t, 4).as_millis()).collect();
        assert!(distinct.len() > 5);
    }
}
