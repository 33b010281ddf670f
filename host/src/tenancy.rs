//! The one tenant-scoped path. A request's [`Access`] knows the
//! organizations the caller may see; every lookup of a tenant-owned row goes
//! through [`Access::require`] after loading the row *filtered by those
//! organizations*, so an id from another organization is indistinguishable
//! from an id that does not exist (both: NOT_FOUND).

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::auth::{Principal, Role};
use crate::db::entities::membership;
use crate::error::{ServiceError, ServiceResult};

/// The caller and its role in every organization it can see.
#[derive(Debug, Clone)]
pub struct Access {
    /// Who is calling.
    pub principal: Principal,
    roles: HashMap<String, Role>,
}

impl Access {
    /// Loads the caller's memberships (API keys see exactly their organization).
    pub async fn load(db: &DatabaseConnection, principal: Principal) -> ServiceResult<Self> {
        let roles = match &principal {
            Principal::User { user_id } => membership::Entity::find()
                .filter(membership::Column::UserId.eq(user_id.as_str()))
                .all(db)
                .await?
                .into_iter()
                .filter_map(|m| Role::parse(&m.role).map(|r| (m.organization_id, r)))
                .collect(),
            Principal::ApiKey {
                organization_id,
                role,
                ..
            } => HashMap::from([(organization_id.clone(), *role)]),
        };
        Ok(Self { principal, roles })
    }

    /// Organizations the caller can see.
    pub fn organization_ids(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The caller's role in `org`, if it can see it.
    pub fn role_in(&self, org: &str) -> Option<Role> {
        self.roles.get(org).copied()
    }

    /// Checks that the caller sees `org` (else NOT_FOUND of `what`) and holds
    /// at least `min` there (else FORBIDDEN). Returns the caller's role.
    pub fn require(&self, org: &str, min: Role, what: &'static str) -> ServiceResult<Role> {
        let role = self.role_in(org).ok_or(ServiceError::NotFound(what))?;
        if role.at_least(min) {
            Ok(role)
        } else {
            Err(ServiceError::Forbidden(format!(
                "this needs the {} role or higher; you have {}",
                min.as_str(),
                role.as_str()
            )))
        }
    }

    /// The user id, or FORBIDDEN for API keys (which act for no person).
    pub fn user_id(&self) -> ServiceResult<&str> {
        self.principal
            .user_id()
            .ok_or_else(|| ServiceError::forbidden("API keys cannot do this; log in as a user"))
    }
}
