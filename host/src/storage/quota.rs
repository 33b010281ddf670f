//! The per-organization quota of derived blobs: what the server stores on
//! a tenant's behalf that it made itself (export snapshots, cached page
//! images), as opposed to what the tenant uploaded. Each such blob is a
//! `derived_blobs` row (key, owner, size); the quota is their sum, so it
//! is checked without listing the blob store.
//!
//! Two writes that race may both pass the check and overshoot the quota
//! by what they write; the next one is refused.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use crate::app::App;
use crate::db::entities::derived_blob;
use crate::db::now_ms;
use crate::error::{ServiceError, ServiceResult};

/// Kinds of derived blobs.
pub const EXPORT: &str = "export";
/// A cached page image.
pub const PAGE_IMAGE: &str = "page-image";

/// Bytes of derived blobs `organization_id` holds now.
pub async fn used<C: ConnectionTrait>(conn: &C, organization_id: &str) -> ServiceResult<i64> {
    // PostgreSQL sums bigints as numeric: cast back.
    let sum: Option<i64> = derived_blob::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(bytes), 0) AS BIGINT)"),
            "total",
        )
        .filter(derived_blob::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(sum.unwrap_or(0))
}

/// `Ok` when `bytes` more fit into the organization's quota
/// (`limits.max_derived_storage_mb`); QUOTA_EXCEEDED otherwise.
pub async fn check(app: &App, organization_id: &str, bytes: u64) -> ServiceResult<()> {
    let quota = app.config.limits.max_derived_storage_mb << 20;
    let used = used(&app.db, organization_id).await?.max(0) as u64;
    if used.saturating_add(bytes) > quota {
        return Err(ServiceError::QuotaExceeded(format!(
            "the organization's exports and page images would take {} MiB, more than its quota of {} MiB; \
             old exports expire after {} hours",
            (used + bytes) >> 20,
            quota >> 20,
            app.config.limits.export_ttl_hours
        )));
    }
    Ok(())
}

/// Records that `key` (of `kind`, `bytes` long) is stored for `organization_id`.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    organization_id: &str,
    key: &str,
    kind: &str,
    bytes: u64,
) -> ServiceResult<()> {
    derived_blob::Entity::insert(derived_blob::ActiveModel {
        key: Set(key.to_owned()),
        organization_id: Set(organization_id.to_owned()),
        kind: Set(kind.to_owned()),
        bytes: Set(i64::try_from(bytes).unwrap_or(i64::MAX)),
        created_at: Set(now_ms()),
    })
    .on_conflict(
        OnConflict::column(derived_blob::Column::Key)
            .update_columns([derived_blob::Column::Bytes, derived_blob::Column::CreatedAt])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// Forgets the blobs of `keys` (they were deleted).
pub async fn forget<C: ConnectionTrait>(conn: &C, keys: &[String]) -> ServiceResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    derived_blob::Entity::delete_many()
        .filter(derived_blob::Column::Key.is_in(keys.iter().map(String::as_str)))
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets every blob under `prefix` (a deleted document's folder).
pub async fn forget_folder<C: ConnectionTrait>(conn: &C, prefix: &str) -> ServiceResult<()> {
    derived_blob::Entity::delete_many()
        .filter(derived_blob::Column::Key.starts_with(prefix))
        .exec(conn)
        .await?;
    Ok(())
}
