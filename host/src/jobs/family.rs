//! Parent jobs: a job split into units (one per document) has a parent row
//! that no worker claims. Its state and progress are computed from its
//! children whenever one of them finishes: RUNNING while any child is not
//! done; then SUCCEEDED if at least one child succeeded (the others are
//! named in `error` — one document's failure never fails the rest), FAILED
//! if none did, CANCELLED when the parent was cancelled. Cancelling the
//! parent cancels its children; retrying it re-queues the failed ones.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};

use super::{JobState, announce, queue};
use crate::app::App;
use crate::db::entities::job;
use crate::db::{new_id, now_ms};
use crate::error::ServiceResult;

/// Inserts a parent job: RUNNING from the start, never claimed.
pub async fn create_parent<C: ConnectionTrait>(
    conn: &C,
    new: queue::NewJob,
) -> ServiceResult<job::Model> {
    let now = now_ms();
    Ok(job::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(new.organization_id),
        project_id: Set(new.project_id),
        parent_id: Set(None),
        kind: Set(new.kind),
        payload: Set(new.payload.to_string()),
        state: Set(JobState::Running),
        attempts: Set(0),
        max_attempts: Set(1),
        run_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        lease_token: Set(0),
        progress: Set(0.0),
        error: Set(None),
        cancel_requested: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(None),
    }
    .insert(conn)
    .await?)
}

/// The children of `parent_id`.
pub async fn children<C: ConnectionTrait>(
    conn: &C,
    parent_id: &str,
) -> ServiceResult<Vec<job::Model>> {
    use sea_orm::QueryOrder;
    Ok(job::Entity::find()
        .filter(job::Column::ParentId.eq(parent_id))
        .order_by_asc(job::Column::CreatedAt)
        .order_by_asc(job::Column::Id)
        .all(conn)
        .await?)
}

/// Recomputes the parent's state and progress from its children and
/// announces a change. Serialized per parent (a row lock on PostgreSQL, the
/// write lock on SQLite): two children finishing together must not let the
/// older view of the family overwrite the newer one.
pub async fn aggregate(app: &App, parent_id: &str) -> ServiceResult<()> {
    let txn = crate::db::write_txn(&app.db).await?;
    let mut find = job::Entity::find_by_id(parent_id);
    if crate::db::is_postgres(&app.db) {
        find = find.lock_exclusive();
    }
    let Some(parent) = find.one(&txn).await? else {
        return Ok(());
    };
    let kids = children(&txn, parent_id).await?;
    if kids.is_empty() {
        return Ok(());
    }
    let state = |j: &job::Model| j.state;
    let n = kids.len();
    let done = kids.iter().filter(|j| state(j).is_terminal()).count();
    let succeeded = kids
        .iter()
        .filter(|j| state(j) == JobState::Succeeded)
        .count();
    let failed: Vec<&job::Model> = kids
        .iter()
        .filter(|j| matches!(state(j), JobState::Failed | JobState::Cancelled))
        .collect();
    let progress = kids
        .iter()
        .map(|j| {
            if state(j).is_terminal() {
                1.0
            } else {
                j.progress
            }
        })
        .sum::<f64>()
        / n as f64;
    let (new_state, finished) = if done < n {
        (JobState::Running, None)
    } else if parent.cancel_requested {
        (JobState::Cancelled, Some(now_ms()))
    } else if succeeded > 0 {
        (JobState::Succeeded, Some(now_ms()))
    } else {
        (JobState::Failed, Some(now_ms()))
    };
    let error = (!failed.is_empty()).then(|| {
        let first = failed
            .iter()
            .find_map(|j| j.error.clone())
            .unwrap_or_else(|| "cancelled".into());
        format!(
            "{} of {n} units did not succeed (first: {first})",
            failed.len()
        )
    });
    let unchanged = parent.state == new_state
        && (parent.progress - progress).abs() < 1e-9
        && parent.error == error;
    if unchanged {
        return Ok(());
    }
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(new_state.as_str()))
        .col_expr(job::Column::Progress, Expr::value(progress))
        .col_expr(job::Column::Error, Expr::value(error))
        .col_expr(job::Column::FinishedAt, Expr::value(finished))
        .col_expr(job::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(job::Column::Id.eq(parent_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    if let Some(after) = job::Entity::find_by_id(parent_id).one(&app.db).await? {
        announce(&app.bus, &after).await;
    }
    Ok(())
}

/// Re-aggregates every running parent (parents are the running jobs that
/// no worker leases).
pub async fn reconcile(app: &App) -> ServiceResult<()> {
    let parents = job::Entity::find()
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .filter(job::Column::LeaseOwner.is_null())
        .filter(job::Column::ParentId.is_null())
        .all(&app.db)
        .await?;
    for p in parents {
        aggregate(app, &p.id).await?;
    }
    Ok(())
}

/// Cancels every unfinished child of `parent_id`, then re-aggregates.
pub async fn cancel_children(app: &App, parent_id: &str) -> ServiceResult<()> {
    for kid in children(&app.db, parent_id).await? {
        if kid.state.is_terminal() {
            continue;
        }
        if let Some(after) = queue::request_cancel(&app.db, &kid.id).await? {
            announce(&app.bus, &after).await;
        }
    }
    aggregate(app, parent_id).await
}

/// Re-queues the failed and cancelled children of `parent_id` (fresh
/// attempts); returns how many.
pub async fn retry_failed(app: &App, parent_id: &str) -> ServiceResult<usize> {
    let now = now_ms();
    let res = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Queued.as_str()))
        .col_expr(job::Column::Attempts, Expr::value(0))
        .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(job::Column::CancelRequested, Expr::value(false))
        .col_expr(job::Column::Progress, Expr::value(0.0))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::ParentId.eq(parent_id))
        .filter(job::Column::State.is_in([JobState::Failed.as_str(), JobState::Cancelled.as_str()]))
        .exec(&app.db)
        .await?;
    job::Entity::update_many()
        .col_expr(job::Column::CancelRequested, Expr::value(false))
        .filter(job::Column::Id.eq(parent_id))
        .exec(&app.db)
        .await?;
    aggregate(app, parent_id).await?;
    Ok(res.rows_affected as usize)
}
