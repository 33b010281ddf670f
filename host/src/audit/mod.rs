//! The audit log: who did what to which object, when. Entries are written
//! in the same transaction as the change they describe.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use crate::auth::Principal;
use crate::db::entities::audit_entry;
use crate::db::{new_id, now_ms};
use crate::error::ServiceResult;

/// One thing to record.
pub struct AuditRecord<'a> {
    /// Tenant the object belongs to, if any.
    pub organization_id: Option<&'a str>,
    /// Dotted action name, e.g. `project.create`.
    pub action: &'a str,
    /// Kind of object.
    pub object_type: &'a str,
    /// Its id.
    pub object_id: &'a str,
    /// Extra JSON details (never secrets).
    pub details: Option<serde_json::Value>,
}

impl<'a> AuditRecord<'a> {
    /// `action` on the object `object_type`/`object_id` of organization `organization_id`.
    pub fn new(
        organization_id: &'a str,
        action: &'a str,
        object_type: &'a str,
        object_id: &'a str,
    ) -> Self {
        Self {
            organization_id: Some(organization_id),
            action,
            object_type,
            object_id,
            details: None,
        }
    }

    /// `action` on an object of no organization (an account, a token family).
    pub fn global(action: &'a str, object_type: &'a str, object_id: &'a str) -> Self {
        Self {
            organization_id: None,
            action,
            object_type,
            object_id,
            details: None,
        }
    }

    /// With extra JSON details (never secrets).
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Writes an audit entry for `actor` on `conn` (a transaction or the pool).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Principal>,
    rec: AuditRecord<'_>,
) -> ServiceResult<()> {
    audit_entry::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(rec.organization_id.map(str::to_owned)),
        actor_user_id: Set(actor.and_then(|p| p.user_id()).map(str::to_owned)),
        actor_api_key_id: Set(actor.and_then(|p| p.api_key_id()).map(str::to_owned)),
        action: Set(rec.action.to_owned()),
        object_type: Set(rec.object_type.to_owned()),
        object_id: Set(rec.object_id.to_owned()),
        details: Set(rec.details.map(|d| d.to_string())),
        created_at: Set(now_ms()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
