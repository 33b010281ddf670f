//! The worker loop: claim, run under a heartbeat-renewed lease, record the
//! outcome. Runs in `serve` (in-process) or `worker` (dedicated node).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::queue::{self, Lease, Outcome};
use super::{JobContext, JobError, JobHandler, JobRegistry, announce};
use crate::app::App;
use crate::db::entities::job;
use crate::events::Event;

/// Minimum time between two progress writes of one job.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Throttles a job's progress before it reaches the database and the bus.
pub struct ProgressReporter {
    app: Arc<App>,
    job: job::Model,
    lease: Lease,
    last: Mutex<Option<Instant>>,
}

impl ProgressReporter {
    pub(crate) async fn report(&self, fraction: f64) {
        if !fraction.is_finite() {
            return;
        }
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) && fraction < 1.0 {
            return;
        }
        *last = Some(Instant::now());
        match queue::set_progress(&self.app.db, &self.lease, fraction).await {
            Ok(true) => announce(&self.app.bus, &self.job).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(job_id = %self.job.id, error = %e, "progress not saved"),
        }
    }
}

/// Longest wait of the loop for a free slot before it turns again.
const TURN: Duration = Duration::from_secs(5);

/// How often a worker re-derives the state of running parent jobs.
const RECONCILE_EVERY: Duration = Duration::from_secs(15);

/// Runs the worker loop until `shutdown`; then lets running jobs finish
/// within the grace period and releases the leases of the rest.
pub async fn run(
    app: Arc<App>,
    jobs: Arc<JobRegistry>,
    worker_id: String,
    shutdown: CancellationToken,
) {
    let kinds = jobs.kinds();
    if kinds.is_empty() {
        shutdown.cancelled().await;
        return;
    }
    let poll = Duration::from_millis(app.config.jobs.poll_interval_ms.max(10));
    let slots = Arc::new(Semaphore::new(app.config.jobs.concurrency.max(1)));
    let mut events = app.bus.subscribe();
    let mut tasks = JoinSet::new();
    tracing::info!(worker = %worker_id, kinds = ?kinds, "worker started");
    let mut last_reconcile = std::time::Instant::now();
    loop {
        app.node.worker_turned();
        while tasks.try_join_next().is_some() {}
        // The backstop for parents whose last unit ended without updating
        // them (a crash between the two writes).
        if last_reconcile.elapsed() >= RECONCILE_EVERY {
            last_reconcile = std::time::Instant::now();
            if let Err(e) = super::family::reconcile(&app).await {
                tracing::warn!(error = %e, "reconciling parent jobs failed");
            }
        }
        // Biased: once shutdown has begun, no new claim may win the race
        // (a job released by this node would otherwise be claimed again).
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            // Every slot busy: turn anyway, so /livez knows the loop is alive.
            () = tokio::time::sleep(TURN) => continue,
        };
        if shutdown.is_cancelled() {
            break;
        }
        let timings = app.queue_timings();
        match queue::claim(&app.db, &worker_id, &kinds, timings.lease).await {
            Ok(Some(job)) => {
                let (app, worker, shutdown) = (app.clone(), worker_id.clone(), shutdown.clone());
                let handler = jobs.get(&job.kind);
                let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
                tasks.spawn(
                    async move {
                        run_one(app, handler, worker, job, shutdown).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Ok(None) => {
                drop(permit);
                // Sleep until new work may exist: an event about a queued job
                // of a kind we handle, the poll interval (retries come due,
                // leases expire), or shutdown.
                let wake = async {
                    loop {
                        match events.recv().await {
                            Ok(Event::JobChanged { state, kind, .. })
                                if state == "queued" && kinds.contains(&kind) =>
                            {
                                return;
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                };
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(poll) => {}
                    () = wake => {}
                }
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "claim failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(worker = %worker_id, "worker stopped");
}

async fn run_one(
    app: Arc<App>,
    handler: Option<Arc<dyn JobHandler>>,
    worker: String,
    job: job::Model,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let lease = Lease {
        job_id: job.id.clone(),
        owner: worker,
        token: job.lease_token,
    };
    let worker = &lease;

    // A job whose lease expired on its last allowed attempt gives up here.
    if job.attempts > job.max_attempts {
        let err = format!(
            "gave up after {} attempts; last error: {}",
            job.max_attempts,
            job.error.as_deref().unwrap_or("worker lost its lease")
        );
        finish(&app, &job, worker, Outcome::Failed(err), started).await;
        return;
    }
    if job.cancel_requested {
        finish(&app, &job, worker, Outcome::Cancelled, started).await;
        return;
    }
    // Claimed while the node began to stop: hand it straight back.
    if shutdown.is_cancelled() {
        finish(&app, &job, worker, Outcome::Released, started).await;
        return;
    }
    let Some(handler) = handler else {
        let err = format!("no handler for job kind {}", job.kind);
        finish(&app, &job, worker, Outcome::Failed(err), started).await;
        return;
    };
    announce(&app.bus, &job).await;

    let cancel = CancellationToken::new();
    let user_cancelled = Arc::new(AtomicBool::new(false));
    let lease_lost = Arc::new(AtomicBool::new(false));
    let ctx = JobContext {
        job: job.clone(),
        db: app.db.clone(),
        app: app.clone(),
        progress: Arc::new(ProgressReporter {
            app: app.clone(),
            job: job.clone(),
            lease: lease.clone(),
            last: Mutex::new(None),
        }),
        lease: lease.clone(),
        lease_length: app.queue_timings().lease,
        cancel: cancel.clone(),
    };

    // Abort-on-drop: if this task is aborted (node killed), the heartbeat and
    // the handler stop with it, so the lease expires as after a real crash.
    let keeper = AbortOnDropHandle::new(tokio::spawn(keep_lease(
        app.clone(),
        lease.clone(),
        cancel.clone(),
        user_cancelled.clone(),
        lease_lost.clone(),
    )));
    // Own task: a panicking handler becomes an error, not a dead worker.
    let mut handle = AbortOnDropHandle::new(tokio::spawn(async move { handler.run(ctx).await }));
    let mut shutting_down = false;
    let result = tokio::select! {
        biased;
        r = &mut handle => r,
        () = shutdown.cancelled() => {
            shutting_down = true;
            cancel.cancel();
            let grace = Duration::from_millis(app.config.jobs.shutdown_grace_ms);
            match tokio::time::timeout(grace, &mut handle).await {
                Ok(r) => r,
                Err(_) => {
                    handle.abort();
                    Ok(Err(JobError::Cancelled))
                }
            }
        }
    };
    keeper.abort();
    if matches!(result, Ok(Err(JobError::LeaseLost))) {
        metrics::counter!("evistream_job_lease_lost_total", "kind" => job.kind.clone())
            .increment(1);
        tracing::warn!(job_id = %job.id, token = lease.token, "lease lost before the unit's writes; it wrote nothing and its outcome is discarded");
        return;
    }
    if lease_lost.load(Ordering::SeqCst) {
        metrics::counter!("evistream_job_lease_lost_total", "kind" => job.kind.clone())
            .increment(1);
        tracing::warn!(job_id = %job.id, token = lease.token, "lease lost while running; outcome discarded");
        return;
    }
    let timings = app.queue_timings();
    let retry_or_fail = |error: String| {
        if job.attempts < job.max_attempts {
            Outcome::Retry {
                error,
                delay: queue::backoff(&timings, job.attempts),
            }
        } else {
            Outcome::Failed(error)
        }
    };
    let outcome = match result {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(JobError::Cancelled)) if user_cancelled.load(Ordering::SeqCst) => Outcome::Cancelled,
        Ok(Err(_)) | Err(_) if shutting_down => Outcome::Released,
        Ok(Err(JobError::Cancelled)) => retry_or_fail("stopped without a cancel request".into()),
        Ok(Err(JobError::Retryable(e))) => retry_or_fail(e),
        Ok(Err(JobError::Permanent(e))) => Outcome::Failed(e),
        // Handled above; kept for exhaustiveness.
        Ok(Err(JobError::LeaseLost)) => return,
        Err(join) => retry_or_fail(format!("handler panicked: {join}")),
    };
    finish(&app, &job, worker, outcome, started).await;
}

async fn finish(app: &App, job: &job::Model, lease: &Lease, outcome: Outcome, started: Instant) {
    let label = match &outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Retry { .. } => "retry",
        Outcome::Failed(_) => "failed",
        Outcome::Cancelled => "cancelled",
        Outcome::Released => "released",
    };
    metrics::histogram!("evistream_job_duration_seconds", "kind" => job.kind.clone(), "outcome" => label)
        .record(started.elapsed().as_secs_f64());
    match queue::finish(&app.db, lease, outcome.clone()).await {
        Ok(Some(row)) => {
            tracing::info!(job_id = %job.id, kind = %job.kind, outcome = label, "job finished");
            announce(&app.bus, &row).await;
            if let Some(parent) = &row.parent_id
                && let Err(e) = super::family::aggregate(app, parent).await
            {
                tracing::error!(job_id = %parent, error = %e, "parent job not updated");
            }
        }
        Ok(None) => tracing::warn!(job_id = %job.id, "job no longer ours; outcome discarded"),
        Err(e) => tracing::error!(job_id = %job.id, error = %e, "could not record job outcome"),
    }
}

/// Renews the lease every third of its length and turns cancel requests
/// (heard on the bus, or read at a heartbeat as the backstop) into `cancel`.
async fn keep_lease(
    app: Arc<App>,
    lease: Lease,
    cancel: CancellationToken,
    user_cancelled: Arc<AtomicBool>,
    lease_lost: Arc<AtomicBool>,
) {
    let length = app.queue_timings().lease;
    // Subscribe first, then beat at once (the interval's first tick is
    // immediate): a cancel requested between the claim and this point is read
    // from the row, and any later one arrives as an event.
    let mut events = app.bus.subscribe();
    let mut tick = tokio::time::interval(length / 3);
    loop {
        let beat = tokio::select! {
            _ = tick.tick() => true,
            ev = events.recv() => match ev {
                Ok(Event::JobChanged { job_id, cancel_requested, .. }) => {
                    cancel_requested && job_id == lease.job_id
                }
                Ok(Event::ReviewChanged { .. }) => false,
                Ok(Event::Resync) => true,
                Err(_) => true,
            },
        };
        if !beat {
            continue;
        }
        match queue::heartbeat(&app.db, &lease, length).await {
            Ok(Some(true)) => {
                user_cancelled.store(true, Ordering::SeqCst);
                cancel.cancel();
            }
            Ok(Some(false)) => {}
            Ok(None) => {
                lease_lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(job_id = %lease.job_id, error = %e, "heartbeat failed"),
        }
    }
}
