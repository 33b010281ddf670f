//! Organizations: members, API keys and the audit log.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::{Role, secrets};
use crate::db::entities::{api_key, audit_entry, membership, organization, user};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::pagination::{self, Page, PageArgs};
use crate::tenancy::Access;
use crate::validate;

/// A user's memberships with their organizations.
pub async fn memberships_of(
    app: &App,
    user_id: &str,
) -> ServiceResult<Vec<(membership::Model, organization::Model)>> {
    let ms = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(&app.db)
        .await?;
    let orgs: std::collections::HashMap<String, organization::Model> = organization::Entity::find()
        .filter(organization::Column::Id.is_in(ms.iter().map(|m| m.organization_id.clone())))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    Ok(ms
        .into_iter()
        .filter_map(|m| orgs.get(&m.organization_id).cloned().map(|o| (m, o)))
        .collect())
}

/// The organization `id`, if the caller sees it.
pub async fn get(app: &App, access: &Access, id: &str) -> ServiceResult<organization::Model> {
    access.require(id, Role::Viewer, "organization")?;
    organization::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("organization"))
}

/// The organization's members with their users (VIEWER+), oldest first.
pub async fn members(
    app: &App,
    access: &Access,
    organization_id: &str,
) -> ServiceResult<Vec<(membership::Model, user::Model)>> {
    access.require(organization_id, Role::Viewer, "organization")?;
    let ms = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .order_by_asc(membership::Column::CreatedAt)
        .all(&app.db)
        .await?;
    let users: std::collections::HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(ms.iter().map(|m| m.user_id.clone())))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    Ok(ms
        .into_iter()
        .filter_map(|m| users.get(&m.user_id).cloned().map(|u| (m, u)))
        .collect())
}

/// The organization's API keys, revoked ones included (ADMIN+), newest first.
pub async fn api_keys(
    app: &App,
    access: &Access,
    organization_id: &str,
) -> ServiceResult<Vec<api_key::Model>> {
    access.require(organization_id, Role::Admin, "organization")?;
    Ok(api_key::Entity::find()
        .filter(api_key::Column::OrganizationId.eq(organization_id))
        .order_by_desc(api_key::Column::CreatedAt)
        .all(&app.db)
        .await?)
}

/// Adds an existing user to an organization (or changes their role).
/// ADMIN or OWNER; only an OWNER grants OWNER.
pub async fn add_member(
    app: &App,
    access: &Access,
    organization_id: &str,
    email: &str,
    role: Role,
) -> ServiceResult<(membership::Model, user::Model)> {
    let mine = access.require(organization_id, Role::Admin, "organization")?;
    if role == Role::Owner && mine != Role::Owner {
        return Err(ServiceError::forbidden("only an OWNER can add an OWNER"));
    }
    let email = validate::email(email)?;
    let target = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    let txn = crate::db::write_txn(&app.db).await?;
    let existing = crate::tenancy::scoped::<membership::Entity>(
        crate::tenancy::Scope::Organization(organization_id),
    )
    .filter(membership::Column::UserId.eq(target.id.as_str()))
    .one(&txn)
    .await?;
    let m = match existing {
        Some(m) => {
            let current = m.role;
            if current == Role::Owner && mine != Role::Owner {
                return Err(ServiceError::forbidden("only an OWNER can change an OWNER"));
            }
            if current == Role::Owner && role != Role::Owner {
                ensure_another_owner(&txn, organization_id, &m.id).await?;
            }
            let mut am: membership::ActiveModel = m.into();
            am.role = Set(role);
            am.update(&txn).await?
        }
        None => {
            membership::ActiveModel {
                id: Set(new_id()),
                organization_id: Set(organization_id.to_owned()),
                user_id: Set(target.id.clone()),
                role: Set(role),
                created_at: Set(now_ms()),
            }
            .insert(&txn)
            .await?
        }
    };
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "member.add", "user", &target.id)
            .details(serde_json::json!({ "role": role.as_str() })),
    )
    .await?;
    txn.commit().await?;
    Ok((m, target))
}

/// Ends a membership (ADMIN+; an OWNER's only by an OWNER, never the last
/// OWNER's). A user may also leave an organization themselves. It takes
/// effect at once: every request, and every WebSocket operation, loads the
/// caller's memberships anew.
pub async fn remove_member(
    app: &App,
    access: &Access,
    organization_id: &str,
    user_id: &str,
) -> ServiceResult<()> {
    let leaving = access.principal.user_id() == Some(user_id);
    let mine = if leaving {
        access.require(organization_id, Role::Viewer, "organization")?
    } else {
        access.require(organization_id, Role::Admin, "organization")?
    };
    let txn = crate::db::write_txn(&app.db).await?;
    let m = crate::tenancy::scoped::<membership::Entity>(crate::tenancy::Scope::Organization(
        organization_id,
    ))
    .filter(membership::Column::UserId.eq(user_id))
    .one(&txn)
    .await?
    .ok_or(ServiceError::NotFound("member"))?;
    if m.role == Role::Owner {
        if mine != Role::Owner {
            return Err(ServiceError::forbidden("only an OWNER can remove an OWNER"));
        }
        ensure_another_owner(&txn, organization_id, &m.id).await?;
    }
    membership::Entity::delete_by_id(m.id.as_str())
        .exec(&txn)
        .await?;
    // Keys act with their own role: those the member made for this
    // organization would outlive the membership.
    let revoked = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now_ms()))
        .filter(api_key::Column::OrganizationId.eq(organization_id))
        .filter(api_key::Column::CreatedByUserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "member.remove", "user", user_id)
            .details(serde_json::json!({ "role": m.role, "apiKeysRevoked": revoked })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn ensure_another_owner<C: sea_orm::ConnectionTrait>(
    conn: &C,
    org: &str,
    except_membership: &str,
) -> ServiceResult<()> {
    let others =
        crate::tenancy::scoped::<membership::Entity>(crate::tenancy::Scope::Organization(org))
            .filter(membership::Column::Role.eq(Role::Owner.as_str()))
            .filter(membership::Column::Id.ne(except_membership))
            .all(conn)
            .await?;
    if others.is_empty() {
        return Err(ServiceError::bad_input(
            "an organization must keep at least one OWNER",
        ));
    }
    Ok(())
}

/// A new API key; the secret is returned once and only its hash is stored.
/// ADMIN or OWNER; a key never gets a role above its creator's.
pub async fn create_api_key(
    app: &App,
    access: &Access,
    organization_id: &str,
    name: &str,
    role: Role,
) -> ServiceResult<(String, api_key::Model)> {
    let mine = access.require(organization_id, Role::Admin, "organization")?;
    if !mine.at_least(role) {
        return Err(ServiceError::forbidden(
            "an API key cannot have a higher role than its creator",
        ));
    }
    let name = validate::name(name, "name")?;
    let secret = secrets::generate(secrets::API_KEY_PREFIX);
    let txn = crate::db::write_txn(&app.db).await?;
    let key = api_key::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization_id.to_owned()),
        name: Set(name),
        role: Set(role),
        key_hash: Set(secrets::digest(&secret)),
        prefix: Set(secret.chars().take(10).collect()),
        created_by_user_id: Set(access.principal.user_id().map(str::to_owned)),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "api_key.create", "api_key", &key.id)
            .details(serde_json::json!({ "role": role.as_str() })),
    )
    .await?;
    txn.commit().await?;
    Ok((secret, key))
}

/// Revokes an API key of the organization. ADMIN or OWNER.
pub async fn revoke_api_key(app: &App, access: &Access, id: &str) -> ServiceResult<api_key::Model> {
    let key = crate::tenancy::load::<api_key::Entity, _>(&app.db, access, id, Role::Admin).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    let org = key.organization_id.clone();
    let mut am: api_key::ActiveModel = key.into();
    am.revoked_at = Set(Some(now_ms()));
    let key = am.update(&txn).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&org, "api_key.revoke", "api_key", &key.id),
    )
    .await?;
    txn.commit().await?;
    Ok(key)
}

/// The organization's audit log, oldest first. ADMIN or OWNER.
pub async fn audit_log(
    app: &App,
    access: &Access,
    organization_id: &str,
    args: &PageArgs,
) -> ServiceResult<Page<audit_entry::Model>> {
    access.require(organization_id, Role::Admin, "organization")?;
    let q =
        audit_entry::Entity::find().filter(audit_entry::Column::OrganizationId.eq(organization_id));
    pagination::page(&app.db, q, audit_entry::Column::Id, args).await
}
