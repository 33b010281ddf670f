//! Projects and what hangs off them (documents, forms), always through the
//! caller's [`Access`].

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{document, document_text, form, form_version, project, project_plugins};
use crate::db::{new_id, now_ms};
use crate::error::ServiceResult;
use crate::pagination::{self, Page, PageArgs};
use crate::tenancy::Access;
use crate::validate;

/// Loads a project the caller can see, checking `min` role.
pub async fn get(app: &App, access: &Access, id: &str, min: Role) -> ServiceResult<project::Model> {
    let p = crate::tenancy::load::<project::Entity, _>(&app.db, access, id, min).await?;
    Ok(p)
}

/// Creates a project. ADMIN or OWNER.
pub async fn create(
    app: &App,
    access: &Access,
    organization_id: &str,
    name: &str,
    description: Option<&str>,
) -> ServiceResult<project::Model> {
    access.require(organization_id, Role::Admin, "organization")?;
    let name = validate::name(name, "name")?;
    let description = validate::description(description)?;
    let now = now_ms();
    let txn = crate::db::write_txn(&app.db).await?;
    let p = project::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization_id.to_owned()),
        name: Set(name),
        description: Set(description),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "project.create", "project", &p.id),
    )
    .await?;
    txn.commit().await?;
    Ok(p)
}

/// Renames or re-describes a project; absent fields stay. ADMIN or OWNER.
pub async fn update(
    app: &App,
    access: &Access,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
) -> ServiceResult<project::Model> {
    let p = get(app, access, id, Role::Admin).await?;
    let name = name.map(|n| validate::name(n, "name")).transpose()?;
    let description = match description {
        Some(d) => Some(validate::description(Some(d))?),
        None => None,
    };
    let org = p.organization_id.clone();
    let txn = crate::db::write_txn(&app.db).await?;
    let mut am: project::ActiveModel = p.into();
    if let Some(n) = name {
        am.name = Set(n);
    }
    if let Some(d) = description {
        am.description = Set(d);
    }
    am.updated_at = Set(now_ms());
    let p = am.update(&txn).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&org, "project.update", "project", &p.id),
    )
    .await?;
    txn.commit().await?;
    Ok(p)
}

/// Deletes a project and everything in it. ADMIN or OWNER.
pub async fn delete(app: &App, access: &Access, id: &str) -> ServiceResult<()> {
    let p = get(app, access, id, Role::Admin).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    // Explicit child deletes: foreign-key cascades are not relied on, so the
    // same code is correct on every backend and visible in one place.
    let docs = document::Entity::find()
        .filter(document::Column::ProjectId.eq(p.id.as_str()))
        .all(&txn)
        .await?;
    document_text::Entity::delete_many()
        .filter(document_text::Column::DocumentId.is_in(docs.iter().map(|d| d.id.clone())))
        .exec(&txn)
        .await?;
    crate::studies::delete_project(&txn, &p).await?;
    document::Entity::delete_many()
        .filter(document::Column::ProjectId.eq(p.id.as_str()))
        .exec(&txn)
        .await?;
    form_version::Entity::delete_many()
        .filter(form_version::Column::ProjectId.eq(p.id.as_str()))
        .exec(&txn)
        .await?;
    form::Entity::delete_many()
        .filter(form::Column::ProjectId.eq(p.id.as_str()))
        .exec(&txn)
        .await?;
    project_plugins::Entity::delete_by_id(p.id.as_str())
        .exec(&txn)
        .await?;
    project::Entity::delete_by_id(p.id.as_str())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&p.organization_id, "project.delete", "project", &p.id)
            .details(serde_json::json!({ "name": p.name, "documents": docs.len() })),
    )
    .await?;
    txn.commit().await?;
    // Blobs after the commit: a failed delete leaves an orphan, never a
    // document without its PDF.
    for d in &docs {
        crate::documents::remove_blobs(app, d).await;
    }
    Ok(())
}

/// Projects of an organization, a page at a time.
pub async fn list(
    app: &App,
    access: &Access,
    organization_id: &str,
    args: &PageArgs,
) -> ServiceResult<Page<project::Model>> {
    access.require(organization_id, Role::Viewer, "organization")?;
    let q = crate::tenancy::scoped::<project::Entity>(crate::tenancy::Scope::Organization(
        organization_id,
    ));
    pagination::page(&app.db, q, project::Column::Id, args).await
}

/// Documents of a project the caller already loaded through [`get`].
pub async fn documents(
    app: &App,
    project: &project::Model,
    args: &PageArgs,
) -> ServiceResult<Page<document::Model>> {
    let q = crate::tenancy::scoped::<document::Entity>(crate::tenancy::Scope::Organization(
        project.organization_id.as_str(),
    ))
    .filter(document::Column::ProjectId.eq(project.id.as_str()));
    pagination::page(&app.db, q, document::Column::Id, args).await
}

/// Forms of a project the caller already loaded through [`get`].
pub async fn forms(app: &App, project: &project::Model) -> ServiceResult<Vec<form::Model>> {
    Ok(
        crate::tenancy::scoped::<form::Entity>(crate::tenancy::Scope::Organization(
            project.organization_id.as_str(),
        ))
        .filter(form::Column::ProjectId.eq(project.id.as_str()))
        .order_by_asc(form::Column::Id)
        .all(&app.db)
        .await?,
    )
}
