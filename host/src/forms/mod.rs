//! Extraction forms: typed fields, immutable versions, and the review of
//! each version's compiled extraction program.
//!
//! Every change makes a new version. A version is compiled (offline,
//! deterministically) into a program at creation: GENERATING →
//! AWAITING_REVIEW within the request. A reviewer approves it (ACTIVE; the
//! form's previous ACTIVE version becomes SUPERSEDED) or asks for a
//! regeneration with feedback (a new version that records the feedback and
//! carries it into the program's instructions). Extraction runs only ACTIVE
//! versions.

pub mod fields;
pub mod program;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{form, form_version, project};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::projects;
use crate::tenancy::Access;
use crate::validate;
pub use fields::{Field, FieldType};

crate::db::types::stored_enum!(
    /// Review state of a form version.
    FormVersionStatus {
        /// The program is being generated.
        Generating = "generating",
        /// Waiting for a reviewer.
        AwaitingReview = "awaiting_review",
        /// Approved: extraction runs this version.
        Active = "active",
        /// Generation failed.
        Failed = "failed",
        /// Was active; a later version was approved.
        Superseded = "superseded",
    }
);

/// Longest reviewer feedback.
const MAX_FEEDBACK: usize = 4000;

/// Loads a form the caller can see, checking `min` role.
pub async fn get(app: &App, access: &Access, id: &str, min: Role) -> ServiceResult<form::Model> {
    let f = crate::tenancy::load::<form::Entity, _>(&app.db, access, id, min).await?;
    Ok(f)
}

/// Loads a form version the caller can see, checking `min` role.
pub async fn get_version(
    app: &App,
    access: &Access,
    id: &str,
    min: Role,
) -> ServiceResult<form_version::Model> {
    let v = crate::tenancy::load::<form_version::Entity, _>(&app.db, access, id, min).await?;
    Ok(v)
}

/// The versions of a form, oldest first.
pub async fn versions(app: &App, f: &form::Model) -> ServiceResult<Vec<form_version::Model>> {
    Ok(
        crate::tenancy::scoped::<form_version::Entity>(crate::tenancy::Scope::Organization(
            f.organization_id.as_str(),
        ))
        .filter(form_version::Column::FormId.eq(f.id.as_str()))
        .order_by_asc(form_version::Column::Number)
        .all(&app.db)
        .await?,
    )
}

/// The newest version of a form.
pub async fn latest_version(
    app: &App,
    f: &form::Model,
) -> ServiceResult<Option<form_version::Model>> {
    Ok(versions(app, f).await?.pop())
}

/// The form a version belongs to (same organization).
pub async fn form_of(app: &App, v: &form_version::Model) -> ServiceResult<form::Model> {
    form::Entity::find_by_id(v.form_id.as_str())
        .filter(form::Column::OrganizationId.eq(v.organization_id.as_str()))
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("form"))
}

/// The fields of a version.
pub fn version_fields(v: &form_version::Model) -> ServiceResult<Vec<Field>> {
    serde_json::from_str(&v.fields).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "stored fields of form version {}: {e}",
            v.id
        ))
    })
}

/// The compiled program of a version, if generated.
pub fn version_program(v: &form_version::Model) -> ServiceResult<Option<program::Program>> {
    v.program
        .as_deref()
        .map(|p| {
            serde_json::from_str(p).map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!(
                    "stored program of form version {}: {e}",
                    v.id
                ))
            })
        })
        .transpose()
}

fn checked_fields(fields: &[Field]) -> ServiceResult<Vec<Field>> {
    fields::validate(fields).map_err(|e| ServiceError::bad_input(e.0))
}

/// Creates a form and its first version (REVIEWER+).
pub async fn create(
    app: &App,
    access: &Access,
    project_id: &str,
    name: &str,
    description: Option<&str>,
    fields: &[Field],
) -> ServiceResult<(form::Model, form_version::Model)> {
    let p = projects::get(app, access, project_id, Role::Reviewer).await?;
    let name = validate::name(name, "name")?;
    let description = validate::description(description)?;
    let fields = checked_fields(fields)?;
    let txn = crate::db::write_txn(&app.db).await?;
    let f = form::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(p.organization_id.clone()),
        project_id: Set(p.id.clone()),
        name: Set(name),
        description: Set(description),
        created_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    let v = new_version(&txn, access, &p, &f, 1, &fields, &[], None).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&p.organization_id, "form.create", "form", &f.id)
            .details(serde_json::json!({ "version": v.id, "programHash": v.program_hash })),
    )
    .await?;
    txn.commit().await?;
    Ok((f, v))
}

/// Changes a form's fields (and name/description): a new version (REVIEWER+).
pub async fn update(
    app: &App,
    access: &Access,
    form_id: &str,
    name: Option<&str>,
    description: Option<&str>,
    fields: &[Field],
) -> ServiceResult<(form::Model, form_version::Model)> {
    let f = get(app, access, form_id, Role::Reviewer).await?;
    let p = projects::get(app, access, &f.project_id, Role::Reviewer).await?;
    let fields = checked_fields(fields)?;
    let name = name.map(|n| validate::name(n, "name")).transpose()?;
    let description = description
        .map(|d| validate::description(Some(d)))
        .transpose()?;
    let txn = crate::db::write_txn(&app.db).await?;
    let mut am: form::ActiveModel = f.clone().into();
    if let Some(n) = name {
        am.name = Set(n);
    }
    if let Some(d) = description {
        am.description = Set(d);
    }
    let f = am.update(&txn).await?;
    let number = next_number(&txn, &f).await?;
    let v = new_version(&txn, access, &p, &f, number, &fields, &[], None).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&f.organization_id, "form.update", "form", &f.id)
            .details(serde_json::json!({ "version": v.id, "number": number })),
    )
    .await?;
    txn.commit().await?;
    Ok((f, v))
}

/// Approves a version awaiting review (REVIEWER+): it becomes ACTIVE and
/// the form's previously active version SUPERSEDED.
pub async fn approve(
    app: &App,
    access: &Access,
    version_id: &str,
) -> ServiceResult<form_version::Model> {
    let v = get_version(app, access, version_id, Role::Reviewer).await?;
    if v.status != FormVersionStatus::AwaitingReview {
        return Err(ServiceError::Conflict(format!(
            "version {} is {}, only a version awaiting review can be approved",
            v.number,
            sea_orm::ActiveEnum::to_value(&v.status).to_uppercase()
        )));
    }
    let txn = crate::db::write_txn(&app.db).await?;
    form_version::Entity::update_many()
        .col_expr(
            form_version::Column::Status,
            sea_orm::sea_query::Expr::value(FormVersionStatus::Superseded),
        )
        .filter(form_version::Column::FormId.eq(v.form_id.as_str()))
        .filter(form_version::Column::Status.eq(FormVersionStatus::Active))
        .exec(&txn)
        .await?;
    // Conditional: of two concurrent approvals of the same version, one wins.
    let res = form_version::Entity::update_many()
        .col_expr(
            form_version::Column::Status,
            sea_orm::sea_query::Expr::value(FormVersionStatus::Active),
        )
        .col_expr(
            form_version::Column::ReviewedBy,
            sea_orm::sea_query::Expr::value(access.principal.user_id().map(str::to_owned)),
        )
        .col_expr(
            form_version::Column::ReviewedAt,
            sea_orm::sea_query::Expr::value(now_ms()),
        )
        .filter(form_version::Column::Id.eq(v.id.as_str()))
        .filter(form_version::Column::Status.eq(FormVersionStatus::AwaitingReview))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(ServiceError::Conflict(
            "the version was reviewed concurrently".into(),
        ));
    }
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&v.organization_id, "form.approve", "form_version", &v.id)
            .details(serde_json::json!({ "programHash": v.program_hash })),
    )
    .await?;
    txn.commit().await?;
    form_version::Entity::find_by_id(v.id.as_str())
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("form version"))
}

/// Regenerates a version with reviewer feedback (REVIEWER+): a new version
/// of the same fields whose program follows the feedback (and the feedback
/// of the versions it was regenerated from).
pub async fn regenerate(
    app: &App,
    access: &Access,
    version_id: &str,
    feedback: &str,
) -> ServiceResult<form_version::Model> {
    let v = get_version(app, access, version_id, Role::Reviewer).await?;
    let feedback = feedback.trim();
    if feedback.is_empty() || feedback.chars().count() > MAX_FEEDBACK {
        return Err(ServiceError::bad_input(format!(
            "feedback must be 1-{MAX_FEEDBACK} characters"
        )));
    }
    validate::text(feedback, "feedback", validate::Lines::Many)?;
    let f = form_of(app, &v).await?;
    let p = projects::get(app, access, &f.project_id, Role::Reviewer).await?;
    let fields = version_fields(&v)?;
    let mut all_feedback = version_program(&v)?.map(|p| p.feedback).unwrap_or_default();
    all_feedback.push(feedback.to_owned());
    let txn = crate::db::write_txn(&app.db).await?;
    let number = next_number(&txn, &f).await?;
    let nv = new_version(
        &txn,
        access,
        &p,
        &f,
        number,
        &fields,
        &all_feedback,
        Some((&v.id, feedback)),
    )
    .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(
            &v.organization_id,
            "form.regenerate",
            "form_version",
            &nv.id,
        )
        .details(serde_json::json!({ "from": v.id, "feedback": feedback })),
    )
    .await?;
    txn.commit().await?;
    Ok(nv)
}

async fn next_number(db: &impl ConnectionTrait, f: &form::Model) -> ServiceResult<i32> {
    let last = form_version::Entity::find()
        .filter(form_version::Column::FormId.eq(f.id.as_str()))
        .order_by_desc(form_version::Column::Number)
        .one(db)
        .await?;
    Ok(last.map(|v| v.number + 1).unwrap_or(1))
}

/// Inserts a version and compiles its program (offline, deterministic, so
/// it goes from GENERATING to AWAITING_REVIEW within the transaction).
#[allow(clippy::too_many_arguments)]
async fn new_version(
    db: &impl ConnectionTrait,
    access: &Access,
    p: &project::Model,
    f: &form::Model,
    number: i32,
    fields: &[Field],
    feedback: &[String],
    regenerated_from: Option<(&str, &str)>,
) -> ServiceResult<form_version::Model> {
    let fields_json =
        serde_json::to_string(fields).map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))?;
    let row = form_version::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(p.organization_id.clone()),
        project_id: Set(p.id.clone()),
        form_id: Set(f.id.clone()),
        number: Set(number),
        status: Set(FormVersionStatus::Generating),
        fields: Set(fields_json),
        program: Set(None),
        program_hash: Set(None),
        feedback: Set(regenerated_from.map(|(_, fb)| fb.to_owned())),
        parent_id: Set(regenerated_from.map(|(id, _)| id.to_owned())),
        error: Set(None),
        created_by: Set(access.principal.user_id().map(str::to_owned)),
        created_at: Set(now_ms()),
        reviewed_by: Set(None),
        reviewed_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ServiceError::Conflict("the form was changed concurrently; try again".into())
        }
        _ => e.into(),
    })?;
    let prog = program::compile(&f.name, f.description.as_deref(), fields, feedback);
    let (text, hash) = program::canonical(&prog);
    let mut am: form_version::ActiveModel = row.into();
    am.program = Set(Some(text));
    am.program_hash = Set(Some(hash));
    am.status = Set(FormVersionStatus::AwaitingReview);
    Ok(am.update(db).await?)
}
