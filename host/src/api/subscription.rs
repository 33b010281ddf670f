//! Subscription root.

use std::time::Duration;

use async_graphql::{Context, ID, Subscription};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::review::ReviewState;
use super::types::Job;
use super::{access, app};
use crate::error::ServiceError;
use crate::events::Event;
use crate::jobs;
use crate::tenancy::Access;

/// How often a subscription re-reads its row even without events (backstop
/// for missed notifications).
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// Live updates.
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The job's current state first, then every change; completes after a
    /// terminal state (SUCCEEDED, FAILED, CANCELLED).
    async fn job_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Job> + use<>> {
        let acc = access(ctx).await?;
        let app = app(ctx);
        // Subscribe before the first read so no change falls between them.
        let mut rx = app.bus.subscribe();
        let first = jobs::service::get(app, acc, &id).await?;
        let app = ctx
            .data_unchecked::<std::sync::Arc<crate::app::App>>()
            .clone();
        let principal = acc.principal.clone();
        Ok(async_stream::stream! {
            let terminal = |j: &crate::db::entities::job::Model| {
                j.state.is_terminal()
            };
            let mut last = first.clone();
            yield Job(first.clone());
            if terminal(&first) {
                return;
            }
            loop {
                let look = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(Event::JobChanged { job_id, .. }) => job_id == last.id,
                        Ok(Event::ReviewChanged { .. }) => false,
                        Ok(Event::Resync) | Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => break,
                    },
                    () = tokio::time::sleep(RESYNC_EVERY) => true,
                    // Server shutting down: end the stream cleanly.
                    () = app.shutdown.cancelled() => break,
                };
                if !look {
                    continue;
                }
                // Read as the caller is now: a member removed from the
                // organization stops seeing the job, like a deleted one.
                let now = match Access::load(&app.db, principal.clone()).await {
                    Ok(acc) => jobs::service::get(&app, &acc, &last.id).await,
                    Err(e) => Err(e),
                };
                let now = match now {
                    Ok(j) => j,
                    // Deleted, or no longer visible: nothing more will come.
                    Err(ServiceError::NotFound(_)) => break,
                    // A database blip: the next event or resync tries again.
                    Err(e) => {
                        tracing::warn!(job_id = %last.id, error = %e, "subscription reload failed");
                        continue;
                    }
                };
                if now.state != last.state || now.progress != last.progress || now.error != last.error {
                    yield Job(now.clone());
                }
                let done = terminal(&now);
                last = now;
                if done {
                    break;
                }
            }
        })
    }

    /// Every change of a review in the project (a decision, completion,
    /// reopening), as it stands after the change, for as long as the
    /// caller can see the project.
    async fn review_updated(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ReviewState> + use<>> {
        let acc = access(ctx).await?;
        let app = app(ctx);
        let mut rx = app.bus.subscribe();
        let project = crate::review::of_project(app, acc, &project_id).await?;
        let app = ctx
            .data_unchecked::<std::sync::Arc<crate::app::App>>()
            .clone();
        let principal = acc.principal.clone();
        Ok(async_stream::stream! {
            loop {
                let review_id = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(Event::ReviewChanged { review_id, project_id, .. }) if project_id == project.id => review_id,
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => break,
                    },
                    () = app.shutdown.cancelled() => break,
                };
                // Read as the caller is now: a member removed from the
                // organization stops receiving the project's reviews.
                let acc = match Access::load(&app.db, principal.clone()).await {
                    Ok(acc) => acc,
                    Err(e) => {
                        tracing::warn!(error = %e, "subscription access reload failed");
                        continue;
                    }
                };
                if crate::review::of_project(&app, &acc, &project.id).await.is_err() {
                    break;
                }
                match crate::review::by_id(&app, &acc, &project, &review_id).await {
                    Ok(r) => yield ReviewState(r),
                    Err(e) => tracing::warn!(%review_id, error = %e, "review reload failed"),
                }
            }
        })
    }
}
