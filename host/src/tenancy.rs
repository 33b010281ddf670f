//! The one tenant-scoped path. A request's [`Access`] knows the
//! organizations the caller may see; every lookup of a tenant-owned row
//! goes through [`find_scoped`] / [`get_scoped`] (or a [`scoped`] query),
//! which filter by those organizations, then [`Access::require`] checks the
//! role. An id from another organization is indistinguishable from an id
//! that does not exist (both: NOT_FOUND). Jobs look up within their own
//! organization the same way ([`Scope::Organization`]).

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PrimaryKeyTrait,
    QueryFilter, Select,
};

use crate::auth::{Principal, Role};
use crate::db::entities::{self, membership};
use crate::error::{ServiceError, ServiceResult};

/// A tenant-owned entity: every row names its organization.
pub trait TenantOwned: EntityTrait {
    /// What the entity is called in NOT_FOUND errors.
    const WHAT: &'static str;
    /// The column holding the owning organization.
    fn organization_column() -> Self::Column;
    /// The organization owning `row`.
    fn organization_of(row: &Self::Model) -> &str;
}

macro_rules! tenant_owned {
    ($($module:ident => $what:literal),* $(,)?) => {$(
        impl TenantOwned for entities::$module::Entity {
            const WHAT: &'static str = $what;
            fn organization_column() -> Self::Column {
                entities::$module::Column::OrganizationId
            }
            fn organization_of(row: &Self::Model) -> &str {
                &row.organization_id
            }
        }
    )*};
}

tenant_owned!(
    project => "project",
    plugin => "plugin",
    project_plugins => "project plugins",
    document => "document",
    document_text => "document text",
    form => "form",
    form_version => "form version",
    extraction_run => "extraction run",
    extraction_result => "extraction result",
    extraction_value => "extraction value",
    ground_truth => "ground truth",
    export => "export",
    llm_cache => "LLM cache entry",
    llm_call => "LLM call",
    job => "job",
    api_key => "API key",
    membership => "member",
    review_setting => "review settings",
    review => "review",
    review_decision => "review decision",
    study => "study",
    study_document => "study link",
    analysis_roles => "analysis roles",
);

/// Whose rows a lookup may return.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Any organization the caller can see.
    Caller(&'a Access),
    /// One organization (a job's, or one the caller was already checked in).
    Organization(&'a str),
}

impl<'a> From<&'a Access> for Scope<'a> {
    fn from(a: &'a Access) -> Self {
        Self::Caller(a)
    }
}

/// Every row of `E` within `scope`: the start of any tenant-owned query.
pub fn scoped<'a, E: TenantOwned>(scope: impl Into<Scope<'a>>) -> Select<E> {
    within(E::find(), scope.into())
}

/// `q` narrowed to the rows of `scope`.
fn within<E: TenantOwned>(q: Select<E>, scope: Scope<'_>) -> Select<E> {
    let column = E::organization_column();
    match scope {
        Scope::Caller(a) => q.filter(column.is_in(a.organization_ids())),
        Scope::Organization(org) => q.filter(column.eq(org)),
    }
}

/// The row `id` of `E` within `scope`, if there is one.
pub async fn find_scoped<'a, E, C>(
    db: &C,
    scope: impl Into<Scope<'a>>,
    id: &str,
) -> Result<Option<E::Model>, DbErr>
where
    E: TenantOwned,
    C: ConnectionTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<String>,
{
    within(E::find_by_id(id.to_owned()), scope.into())
        .one(db)
        .await
}

/// The row `id` of `E` among the organizations the caller sees (else
/// NOT_FOUND), where the caller holds at least `min` (else FORBIDDEN).
pub async fn load<E, C>(db: &C, access: &Access, id: &str, min: Role) -> ServiceResult<E::Model>
where
    E: TenantOwned,
    C: ConnectionTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<String>,
{
    let row = get_scoped::<E, C>(db, access, id).await?;
    access.require(E::organization_of(&row), min, E::WHAT)?;
    Ok(row)
}

/// The row `id` of `E` within `scope`, else NOT_FOUND.
pub async fn get_scoped<'a, E, C>(
    db: &C,
    scope: impl Into<Scope<'a>>,
    id: &str,
) -> ServiceResult<E::Model>
where
    E: TenantOwned,
    C: ConnectionTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<String>,
{
    find_scoped::<E, C>(db, scope, id)
        .await?
        .ok_or(ServiceError::NotFound(E::WHAT))
}

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
                .map(|m| (m.organization_id, m.role))
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
