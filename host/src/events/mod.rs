//! The event bus: state pointers ("job X changed"), never data. Subscribers
//! re-read the database. In-process broadcast by default; on PostgreSQL,
//! LISTEN/NOTIFY so a subscriber on one node hears about jobs run on another.
//!
//! Delivery is at-most-once. After a lag or a lost LISTEN connection the bus
//! emits [`Event::Resync`], on which subscribers re-read everything they watch.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Channel name for PostgreSQL NOTIFY.
const CHANNEL: &str = "evistream_events";

/// Something changed; go and look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A job's row changed (state, progress, cancel request).
    JobChanged {
        /// The job.
        job_id: String,
        /// Its organization.
        organization_id: String,
        /// Its kind (workers wake on new work of kinds they handle).
        kind: String,
        /// The state written.
        state: String,
        /// Whether a cancel was requested (running jobs stop cooperatively).
        cancel_requested: bool,
    },
    /// A review changed (a decision, completion, reopening).
    ReviewChanged {
        /// The review.
        review_id: String,
        /// Its organization.
        organization_id: String,
        /// Its project.
        project_id: String,
    },
    /// Events may have been missed; re-read from the database.
    Resync,
}

/// Publishes and fans out events.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    pg: Option<DatabaseConnection>,
}

impl EventBus {
    /// An in-process bus.
    pub fn in_process() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx, pg: None }
    }

    /// A bus over PostgreSQL LISTEN/NOTIFY. One dedicated listening connection
    /// forwards notifications (including this node's own) to local subscribers.
    pub async fn postgres(
        db: DatabaseConnection,
        shutdown: CancellationToken,
    ) -> Result<Self, sea_orm::DbErr> {
        let (tx, _) = broadcast::channel(1024);
        let pool = db.get_postgres_connection_pool().clone();
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(&pool)
            .await
            .map_err(|e| sea_orm::DbErr::Custom(format!("LISTEN connection: {e}")))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| sea_orm::DbErr::Custom(format!("LISTEN: {e}")))?;
        let fwd = tx.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => break,
                    n = listener.try_recv() => n,
                };
                match next {
                    Ok(Some(n)) => match serde_json::from_str::<Event>(n.payload()) {
                        Ok(ev) => {
                            let _ = fwd.send(ev);
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable event payload"),
                    },
                    // The connection was lost and is re-established on the next
                    // call: anything sent meanwhile is gone.
                    Ok(None) => {
                        tracing::warn!("event listener reconnecting; subscribers resync");
                        let _ = fwd.send(Event::Resync);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener error; retrying");
                        let _ = fwd.send(Event::Resync);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Self { tx, pg: Some(db) })
    }

    /// Sends an event to every subscriber on every node. Failures are logged,
    /// not returned: the database row is the truth and subscribers poll as a backstop.
    pub async fn publish(&self, event: Event) {
        match &self.pg {
            None => {
                let _ = self.tx.send(event);
            }
            Some(db) => {
                let payload = match serde_json::to_string(&event) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "event not serialisable");
                        return;
                    }
                };
                let stmt = Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), payload.into()],
                );
                if let Err(e) = db.execute_raw(stmt).await {
                    tracing::warn!(error = %e, "NOTIFY failed; delivering locally only");
                    let _ = self.tx.send(event);
                }
            }
        }
    }

    /// A new subscription to every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// Shared handle.
pub type SharedBus = Arc<EventBus>;
