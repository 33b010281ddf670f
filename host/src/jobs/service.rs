//! Jobs as the API sees them: tenant-scoped reads and cancellation.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{JobState, announce, queue};
use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::job;
use crate::error::{ServiceError, ServiceResult};
use crate::tenancy::Access;

/// Enqueues a job and wakes workers (on every node) that handle its kind.
/// Callers have already checked the caller's right to start it.
pub async fn submit(app: &App, new: queue::NewJob) -> ServiceResult<job::Model> {
    let j = queue::enqueue(&app.db, new).await?;
    announce(&app.bus, &j).await;
    Ok(j)
}

/// A job the caller can see.
pub async fn get(app: &App, access: &Access, id: &str) -> ServiceResult<job::Model> {
    let j = crate::tenancy::load::<job::Entity, _>(&app.db, access, id, Role::Viewer).await?;
    Ok(j)
}

/// Requests cancellation (REVIEWER or above). Idempotent; terminal jobs are returned unchanged.
pub async fn cancel(app: &App, access: &Access, id: &str) -> ServiceResult<job::Model> {
    let j = get(app, access, id).await?;
    access.require(&j.organization_id, Role::Reviewer, "job")?;
    if j.state.is_terminal() {
        return Ok(j);
    }
    let after = queue::request_cancel(&app.db, &j.id)
        .await?
        .ok_or(ServiceError::NotFound("job"))?;
    // A parent stops by stopping its units.
    super::family::cancel_children(app, &j.id).await?;
    let after = reload(app, &after.id, &after.organization_id).await?;
    audit::record(
        &app.db,
        Some(&access.principal),
        AuditRecord::new(&j.organization_id, "job.cancel", "job", &j.id),
    )
    .await?;
    announce(&app.bus, &after).await;
    Ok(after)
}

/// Re-queues the failed units of a parent job, or a failed job itself
/// (REVIEWER+). Returns the job after.
pub async fn retry(app: &App, access: &Access, id: &str) -> ServiceResult<job::Model> {
    let j = get(app, access, id).await?;
    access.require(&j.organization_id, Role::Reviewer, "job")?;
    let kids = super::family::children(&app.db, &j.id).await?;
    if kids.is_empty() {
        if !matches!(j.state, JobState::Failed | JobState::Cancelled) {
            return Err(ServiceError::Conflict(format!(
                "only a failed or cancelled job can be retried; this one is {}",
                j.state.as_str().to_uppercase()
            )));
        }
        queue::requeue(&app.db, &j.id).await?;
    } else if super::family::retry_failed(app, &j.id).await? == 0 {
        return Err(ServiceError::Conflict("no unit of this job failed".into()));
    }
    let after = reload(app, &j.id, &j.organization_id).await?;
    audit::record(
        &app.db,
        Some(&access.principal),
        AuditRecord::new(&j.organization_id, "job.retry", "job", &j.id),
    )
    .await?;
    announce(&app.bus, &after).await;
    Ok(after)
}

/// Reads a job again by id without a scope; for subscriptions that already
/// checked access once and follow the same row.
pub(crate) async fn reload(
    app: &App,
    id: &str,
    organization_id: &str,
) -> ServiceResult<job::Model> {
    job::Entity::find_by_id(id)
        .filter(job::Column::OrganizationId.eq(organization_id))
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("job"))
}
