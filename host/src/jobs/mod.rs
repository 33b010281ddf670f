//! Durable background jobs: rows in the `jobs` table, claimed by workers
//! under a lease, retried with backoff, cancellable, with progress.
//!
//! # The idempotency rule for handlers
//!
//! A job may run more than once: a worker can crash after doing the work but
//! before recording success, and the job runs again after its lease expires.
//! Every handler must therefore make its effects keyed by something stable —
//! the job id, or the natural key of what it writes (document id + form
//! version + field path) — and write with upserts or "insert if absent", or
//! delete-then-insert inside one transaction. A handler never appends rows
//! blindly. Side effects outside the database (blobs) use content-addressed
//! or job-keyed names so a second write overwrites the first.

pub mod family;
pub mod maintenance;
pub mod queue;
pub mod service;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::db::entities::job;
use crate::events::EventBus;

crate::db::types::stored_enum!(
    /// Job states as stored.
    JobState {
        /// Waiting for a worker (possibly until `run_at`, for retries).
        Queued = "queued",
        /// Leased by a worker.
        Running = "running",
        /// Done.
        Succeeded = "succeeded",
        /// Gave up; `error` says why.
        Failed = "failed",
        /// Stopped on request.
        Cancelled = "cancelled",
    }
);

impl JobState {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// True for states a job never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// How a handler run ended, when not successfully.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (until max attempts).
    #[error("{0}")]
    Retryable(String),
    /// Will never succeed; fail now.
    #[error("{0}")]
    Permanent(String),
    /// The handler noticed cancellation and stopped.
    #[error("cancelled")]
    Cancelled,
    /// The worker no longer holds the job's lease (it was frozen or cut
    /// off past its expiry and another worker took the job over): the
    /// handler wrote nothing and its outcome is discarded.
    #[error("the lease on this job was lost; nothing was written")]
    LeaseLost,
}

impl From<sea_orm::DbErr> for JobError {
    /// A database error is worth another attempt.
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Retryable(format!("database: {e}"))
    }
}

/// A job kind's payload: what a handler reads with [`JobContext::payload`]
/// and what [`queue::NewJob::of`] writes.
pub trait JobPayload: serde::Serialize + serde::de::DeserializeOwned {
    /// The job kind this payload belongs to.
    const KIND: &'static str;
}

/// What a handler gets: its job row and the means to report and to notice cancellation.
#[derive(Clone)]
pub struct JobContext {
    /// The job as claimed (attempts already counts this run).
    pub job: job::Model,
    /// Database handle for the handler's own effects.
    pub db: DatabaseConnection,
    /// The application (blob store, plugins, bus) for built-in handlers.
    pub app: Arc<crate::app::App>,
    pub(crate) progress: Arc<worker::ProgressReporter>,
    /// The lease this run holds; [`JobContext::fence`] checks it.
    pub lease: queue::Lease,
    /// Lease length, for the extension a fence grants.
    lease_length: Duration,
    cancel: CancellationToken,
}

impl JobContext {
    /// The payload, typed: a payload that does not parse fails the job for
    /// good (no attempt could read it either).
    pub fn payload<P: JobPayload>(&self) -> Result<P, JobError> {
        serde_json::from_str(&self.job.payload).map_err(|e| {
            JobError::Permanent(format!(
                "the payload of this {} job is unreadable: {e}",
                P::KIND
            ))
        })
    }

    /// Reports progress in 0..=1 (throttled before it reaches the database and subscribers).
    pub async fn set_progress(&self, fraction: f64) {
        self.progress.report(fraction).await;
    }

    /// True once cancellation (or shutdown) was requested; check it between units of work.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when cancellation (or shutdown) is requested.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The fence of this run's effects: call it inside the transaction that
    /// writes them, before committing. `Err(JobError::LeaseLost)` when the
    /// lease was lost (roll back: the job belongs to another worker now).
    pub async fn fence<C: sea_orm::ConnectionTrait>(&self, txn: &C) -> Result<(), JobError> {
        match queue::fence(txn, &self.lease, self.lease_length).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(JobError::LeaseLost),
            Err(e) => Err(JobError::Retryable(format!(
                "checking the job's lease: {e}"
            ))),
        }
    }

    /// `Err(JobError::Cancelled)` when cancellation was requested.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A job kind's implementation. It must follow the idempotency rule above.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt of the job.
    async fn run(&self, ctx: JobContext) -> Result<(), JobError>;
}

/// Handlers by job kind. A worker only claims kinds it has a handler for.
#[derive(Clone, Default)]
pub struct JobRegistry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` (replacing any earlier one).
    pub fn register(&mut self, kind: &str, handler: impl JobHandler) -> &mut Self {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    /// The handler for `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// Every registered kind.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.handlers.keys().cloned().collect();
        k.sort();
        k
    }
}

/// Timings of the queue, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct QueueTimings {
    /// Lease length.
    pub lease: Duration,
    /// Base retry delay.
    pub retry_base: Duration,
    /// Retry delay cap.
    pub retry_max: Duration,
}

/// Publishes a job's change on the bus.
pub(crate) async fn announce(bus: &EventBus, j: &job::Model) {
    bus.publish(crate::events::Event::JobChanged {
        job_id: j.id.clone(),
        organization_id: j.organization_id.clone(),
        kind: j.kind.clone(),
        state: j.state.as_str().to_owned(),
        cancel_requested: j.cancel_requested,
    })
    .await;
}
