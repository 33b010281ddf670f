//! Meta-analysis inputs from a project's values: analysis roles (which
//! fields hold what), derived means and SDs with their provenance, effect
//! sizes as metafor computes them, and a pooled preview per outcome.
//! Nothing here is written into the extracted values: a derived number
//! lives in the comparison that needed it, marked DERIVED.

pub mod comparisons;
pub mod derive;
pub mod effect;
pub mod pool;
pub mod quantile;
pub mod roles;

use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{analysis_roles, form_version};
use crate::db::now_ms;
use crate::error::{ServiceError, ServiceResult};
use crate::export::ExportValues;
use crate::tenancy::Access;
use comparisons::{Comparison, Measures};
pub use effect::EffectMeasure;
use roles::Roles;

/// The roles of a version: as configured, else as its field names map.
pub async fn roles_of(app: &App, v: &form_version::Model) -> ServiceResult<Roles> {
    let stored = analysis_roles::Entity::find_by_id(v.id.as_str())
        .one(&app.db)
        .await?
        .filter(|r| r.organization_id == v.organization_id);
    match stored {
        Some(r) => {
            let json: serde_json::Value = serde_json::from_str(&r.roles).map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("stored roles of {}: {e}", v.id))
            })?;
            Ok(roles::from_stored(&json))
        }
        None => Ok(roles::auto(&crate::forms::version_fields(v)?)),
    }
}

/// Sets a version's roles (REVIEWER+): `given` over the form's own
/// mapping, checked against its fields.
pub async fn configure(
    app: &App,
    access: &Access,
    form_version_id: &str,
    given: &serde_json::Value,
) -> ServiceResult<(form_version::Model, Roles)> {
    let v = crate::forms::get_version(app, access, form_version_id, Role::Reviewer).await?;
    let roles = roles::configure(&crate::forms::version_fields(&v)?, given)?;
    let text = roles.to_json().to_string();
    let txn = crate::db::write_txn(&app.db).await?;
    analysis_roles::Entity::delete_by_id(v.id.as_str())
        .exec(&txn)
        .await?;
    analysis_roles::ActiveModel {
        form_version_id: Set(v.id.clone()),
        organization_id: Set(v.organization_id.clone()),
        project_id: Set(v.project_id.clone()),
        roles: Set(text),
        updated_by: Set(access.principal.user_id().map(str::to_owned)),
        updated_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(
            &v.organization_id,
            "analysis.configure",
            "form_version",
            &v.id,
        )
        .details(roles.to_json()),
    )
    .await?;
    txn.commit().await?;
    Ok((v, roles))
}

/// A pooled preview of one outcome and measure.
#[derive(Debug, Clone)]
pub struct PooledOutcome {
    /// The outcome as named.
    pub outcome: String,
    /// The measure.
    pub measure: EffectMeasure,
    /// The estimates.
    pub pooled: pool::Pooled,
}

/// The analysis of a version's values.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// One per (study, outcome, intervention, comparator).
    pub comparisons: Vec<Comparison>,
    /// Per outcome and measure, over the comparisons with an effect.
    pub pooled: Vec<PooledOutcome>,
}

/// Pools the comparisons of each outcome (same name, case and spacing
/// aside) and measure.
pub fn pooled(comparisons: &[Comparison]) -> Vec<PooledOutcome> {
    // (normalised outcome, measure), the outcome as first named, (yi, vi) pairs.
    type Group = ((String, EffectMeasure), String, Vec<(f64, f64)>);
    let mut groups: Vec<Group> = Vec::new();
    for c in comparisons {
        let Some(e) = &c.effect else { continue };
        let key = (
            c.outcome
                .to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            e.measure,
        );
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, v)) => v.push((e.yi, e.vi)),
            None => groups.push((key, c.outcome.clone(), vec![(e.yi, e.vi)])),
        }
    }
    groups
        .into_iter()
        .filter_map(|((_, measure), outcome, effects)| {
            pool::pool(&effects).map(|pooled| PooledOutcome {
                outcome,
                measure,
                pooled,
            })
        })
        .collect()
}

/// The comparisons of a project's values for a version (VIEWER+), under
/// its roles; documents the caller sees blind are left out, as in exports.
pub async fn analyse(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    which: ExportValues,
    measure: Option<EffectMeasure>,
) -> ServiceResult<Analysis> {
    let collected = crate::export::collect(app, access, project_id, form_version_id, which).await?;
    let studies = crate::studies::of_documents(app, &collected.project).await?;
    let comparisons = comparisons_of(app, &collected, &studies, Measures::from(measure)).await?;
    Ok(Analysis {
        pooled: pooled(&comparisons),
        comparisons,
    })
}

/// The comparisons of values already collected, with each document's
/// study from [`crate::studies::of_documents`] (for the analysis and the
/// METAFOR_CSV, REVMAN_CSV and JSON exports).
pub async fn comparisons_of(
    app: &App,
    collected: &crate::export::Collected,
    studies: &std::collections::HashMap<String, (String, String)>,
    measures: Measures,
) -> ServiceResult<Vec<Comparison>> {
    let roles = roles_of(app, &collected.version).await?;
    let reports = collected.report_values(studies);
    app.cpu
        .run(&collected.project.organization_id, move || {
            comparisons::build(&roles, &reports, measures)
        })
        .await
}
