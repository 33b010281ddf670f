//! Extraction: an ACTIVE form version's program run over a project's
//! converted documents by the project's extractor plugin, as a parent job
//! with one unit per document; every value stored with its evidence, the
//! host's grounding verdict and its provenance.

pub mod grounding;
pub mod pipeline;
pub mod unit;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{
    document, extraction_result, extraction_run, extraction_value, form_version, job,
};
use crate::db::{new_id, now_ms};
use crate::documents::DocumentStatus;
use crate::error::{ServiceError, ServiceResult};
use crate::forms;
use crate::jobs::queue::{self, NewJob};
use crate::jobs::{announce, family};
use crate::pagination::{Page, PageArgs};
use crate::plugins::builtin;
use crate::projects;
use crate::registry::{self, PluginInfo};
use crate::tenancy::Access;

/// Kind of the parent job of a run.
pub const RUN_JOB: &str = "extraction.run";
/// Kind of a run's per-document unit.
pub const UNIT_JOB: &str = "extraction.document";

/// The payload of a run's parent job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunJob {
    /// The run.
    pub run_id: String,
    /// The form version it extracts.
    pub form_version_id: String,
}

impl crate::jobs::JobPayload for RunJob {
    const KIND: &'static str = RUN_JOB;
}

/// The payload of one document of a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnitJob {
    /// The run.
    pub run_id: String,
    /// The document.
    pub document_id: String,
}

impl crate::jobs::JobPayload for UnitJob {
    const KIND: &'static str = UNIT_JOB;
}

/// Attempts of a unit (transient failures: database, blob store, LLM).
const UNIT_ATTEMPTS: i32 = 3;

/// The extractor a project's extraction uses: the bound one, else the
/// built-in `llm-extractor` when an LLM adapter is bound, else the built-in
/// offline `lexical-extractor`.
pub async fn extractor_for(
    app: &App,
    binding: &registry::binding::Binding,
) -> ServiceResult<PluginInfo> {
    if let Some(x) = &binding.extractor {
        return Ok(x.clone());
    }
    let id = if binding.llm_adapter.is_some() {
        builtin::LLM_EXTRACTOR
    } else {
        builtin::DEFAULT_EXTRACTOR
    };
    registry::find(app, &binding.organization_id, id, None)
        .await?
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("no built-in extractor")))
}

/// Starts a run (REVIEWER+): one unit per document (all COMPLETED
/// documents of the project when `document_ids` is None). Returns the
/// parent job.
pub async fn start(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    document_ids: Option<&[String]>,
) -> ServiceResult<job::Model> {
    let (p, v) = project_version(app, access, project_id, form_version_id, Role::Reviewer).await?;
    if v.status != forms::FormVersionStatus::Active {
        return Err(ServiceError::bad_input(format!(
            "form version {} is {}; only an ACTIVE (approved) version runs",
            v.number,
            sea_orm::ActiveEnum::to_value(&v.status).to_uppercase()
        )));
    }
    let docs = match document_ids {
        Some(ids) => {
            if ids.is_empty() {
                return Err(ServiceError::bad_input("documentIds is empty"));
            }
            let found = crate::tenancy::scoped::<document::Entity>(
                crate::tenancy::Scope::Organization(p.organization_id.as_str()),
            )
            .filter(document::Column::ProjectId.eq(p.id.as_str()))
            .filter(document::Column::Id.is_in(ids.iter().cloned()))
            .all(&app.db)
            .await?;
            if found.len() != ids.iter().collect::<std::collections::HashSet<_>>().len() {
                return Err(ServiceError::NotFound("document"));
            }
            if let Some(d) = found.iter().find(|d| d.status != DocumentStatus::Completed) {
                return Err(ServiceError::bad_input(format!(
                    "document {} ({}) is {}, not converted",
                    d.id,
                    d.filename,
                    sea_orm::ActiveEnum::to_value(&d.status).to_uppercase()
                )));
            }
            found
        }
        None => {
            crate::tenancy::scoped::<document::Entity>(crate::tenancy::Scope::Organization(
                p.organization_id.as_str(),
            ))
            .filter(document::Column::ProjectId.eq(p.id.as_str()))
            .filter(document::Column::Status.eq(DocumentStatus::Completed))
            .order_by_asc(document::Column::Id)
            .all(&app.db)
            .await?
        }
    };
    if docs.is_empty() {
        return Err(ServiceError::bad_input(
            "the project has no converted documents to extract from",
        ));
    }
    let binding = registry::binding::load(app, &p).await?;
    let extractor = extractor_for(app, &binding).await?;
    let adapter = binding.llm_adapter.clone();
    let txn = crate::db::write_txn(&app.db).await?;
    let run_id = new_id();
    let parent = family::create_parent(
        &txn,
        NewJob {
            project_id: Some(p.id.clone()),
            ..NewJob::of(
                &p.organization_id,
                &RunJob {
                    run_id: run_id.clone(),
                    form_version_id: v.id.clone(),
                },
                1,
            )
        },
    )
    .await?;
    extraction_run::ActiveModel {
        id: Set(run_id.clone()),
        organization_id: Set(p.organization_id.clone()),
        project_id: Set(p.id.clone()),
        form_version_id: Set(v.id.clone()),
        job_id: Set(parent.id.clone()),
        program_hash: Set(v.program_hash.clone().unwrap_or_default()),
        extractor_id: Set(extractor.manifest.id.clone()),
        extractor_version: Set(extractor.manifest.version.clone()),
        extractor_sha256: Set(extractor.sha256.clone()),
        extractor_builtin: Set(extractor.built_in()),
        adapter_id: Set(adapter.as_ref().map(|a| a.manifest.id.clone())),
        adapter_version: Set(adapter.as_ref().map(|a| a.manifest.version.clone())),
        adapter_sha256: Set(adapter.as_ref().map(|a| a.sha256.clone())),
        document_count: Set(docs.len() as i32),
        created_by: Set(access.principal.user_id().map(str::to_owned)),
        created_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    for d in &docs {
        queue::enqueue(
            &txn,
            NewJob {
                project_id: Some(p.id.clone()),
                parent_id: Some(parent.id.clone()),
                ..NewJob::of(
                    &p.organization_id,
                    &UnitJob {
                        run_id: run_id.clone(),
                        document_id: d.id.clone(),
                    },
                    UNIT_ATTEMPTS,
                )
            },
        )
        .await?;
    }
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&p.organization_id, "extraction.start", "job", &parent.id).details(
            serde_json::json!({
                "formVersion": v.id, "documents": docs.len(),
                "extractor": format!("{}@{}", extractor.manifest.id, extractor.manifest.version),
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    announce(&app.bus, &parent).await;
    Ok(parent)
}

/// One document's latest result for a form version, with its values.
pub struct ResultRow {
    /// The result.
    pub result: extraction_result::Model,
    /// The run that produced it.
    pub run: extraction_run::Model,
    /// The document.
    pub document: document::Model,
    /// Its values, in the extractor's order.
    pub values: Vec<extraction_value::Model>,
}

/// How provenance names a plugin component: `id@version#sha256`.
pub fn plugin_ref(id: &str, version: &str, sha256: &str) -> String {
    format!("{id}@{version}#{sha256}")
}

/// What produced a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The form version.
    pub form_version_id: String,
    /// sha256 of its program.
    pub program_hash: String,
    /// The extractor ([`plugin_ref`]).
    pub extractor: String,
    /// The converter of the text ([`plugin_ref`]).
    pub converter: String,
    /// The LLM adapter, if one was bound ([`plugin_ref`]).
    pub adapter: Option<String>,
    /// Models that answered.
    pub models: Vec<String>,
    /// The run's parent job.
    pub job_id: String,
}

impl ResultRow {
    /// What produced this result.
    pub fn provenance(&self) -> Provenance {
        let run = &self.run;
        Provenance {
            form_version_id: run.form_version_id.clone(),
            program_hash: run.program_hash.clone(),
            extractor: plugin_ref(
                &run.extractor_id,
                &run.extractor_version,
                &run.extractor_sha256,
            ),
            converter: self.result.converter.clone(),
            adapter: run.adapter_id.as_ref().map(|id| {
                plugin_ref(
                    id,
                    run.adapter_version.as_deref().unwrap_or_default(),
                    run.adapter_sha256.as_deref().unwrap_or_default(),
                )
            }),
            models: self.result.models.0.clone(),
            job_id: run.job_id.clone(),
        }
    }
}

/// The latest result per document of `form_version_id` in a project
/// (VIEWER+); without values for a document the caller sees blind
/// ([`crate::review::Viewer::blind`]).
pub async fn results(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    page: &PageArgs,
) -> ServiceResult<Page<ResultRow>> {
    let (p, v) = project_version(app, access, project_id, form_version_id, Role::Viewer).await?;
    let latest = latest_results(app, &p.organization_id, &v.id).await?;
    let total = latest.len() as u64;
    let first = crate::pagination::page_size(page)? as usize;
    let after = page
        .after
        .as_deref()
        .map(crate::pagination::decode_cursor)
        .transpose()?;
    let start = match after {
        Some(id) => latest
            .iter()
            .position(|r| r.id == id)
            .map(|i| i + 1)
            .ok_or_else(|| ServiceError::bad_input("unknown cursor"))?,
        None => 0,
    };
    let window: Vec<extraction_result::Model> =
        latest.iter().skip(start).take(first).cloned().collect();
    let has_next = start + window.len() < latest.len();
    let mut items = rows(app, &p.organization_id, window).await?;
    // The blind rule of review covers the extractor's values (and its
    // warnings, which may quote them) of a document the caller may still
    // extract.
    let ids: Vec<&str> = items.iter().map(|r| r.document.id.as_str()).collect();
    let blind = crate::review::blind_documents(app, access, &v, &ids).await?;
    for r in items.iter_mut().filter(|r| blind.contains(&r.document.id)) {
        r.values.clear();
        r.result.warnings.0.clear();
    }
    Ok(Page {
        items,
        total,
        has_next,
    })
}

/// The project's runs, newest first (at most `limit`), each with its
/// parent job; for a project the caller already loaded.
pub async fn runs(
    app: &App,
    project: &crate::db::entities::project::Model,
    limit: u64,
) -> ServiceResult<Vec<(extraction_run::Model, job::Model)>> {
    use sea_orm::QuerySelect;
    let runs = extraction_run::Entity::find()
        .filter(extraction_run::Column::OrganizationId.eq(project.organization_id.as_str()))
        .filter(extraction_run::Column::ProjectId.eq(project.id.as_str()))
        .order_by_desc(extraction_run::Column::CreatedAt)
        .order_by_desc(extraction_run::Column::Id)
        .limit(limit)
        .all(&app.db)
        .await?;
    let ids: Vec<&str> = runs.iter().map(|r| r.job_id.as_str()).collect();
    let jobs = job::Entity::find()
        .filter(job::Column::OrganizationId.eq(project.organization_id.as_str()))
        .filter(job::Column::Id.is_in(ids))
        .all(&app.db)
        .await?;
    Ok(runs
        .into_iter()
        .filter_map(|r| {
            let j = jobs.iter().find(|j| j.id == r.job_id)?.clone();
            Some((r, j))
        })
        .collect())
}

/// Every document's latest result (with values) for `v`, for exports and evaluation.
pub async fn all_results(
    app: &App,
    organization_id: &str,
    form_version_id: &str,
) -> ServiceResult<Vec<ResultRow>> {
    let latest = latest_results(app, organization_id, form_version_id).await?;
    rows(app, organization_id, latest).await
}

/// A project and one of its form versions, as the caller may see them.
pub async fn project_version(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    min: Role,
) -> ServiceResult<(crate::db::entities::project::Model, form_version::Model)> {
    let p = projects::get(app, access, project_id, min).await?;
    let v = form_version::Entity::find_by_id(form_version_id)
        .filter(form_version::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(form_version::Column::ProjectId.eq(p.id.as_str()))
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("form version"))?;
    Ok((p, v))
}

/// The newest result of `document` for a form version, if it was extracted.
pub async fn latest_result(
    app: &App,
    document: &document::Model,
    form_version_id: &str,
) -> ServiceResult<Option<extraction_result::Model>> {
    Ok(
        crate::tenancy::scoped::<extraction_result::Entity>(crate::tenancy::Scope::Organization(
            &document.organization_id,
        ))
        .filter(extraction_result::Column::DocumentId.eq(document.id.as_str()))
        .filter(extraction_result::Column::FormVersionId.eq(form_version_id))
        .order_by_desc(extraction_result::Column::CreatedAt)
        .order_by_desc(extraction_result::Column::Id)
        .one(&app.db)
        .await?,
    )
}

/// The newest result per document, ordered by document id.
async fn latest_results(
    app: &App,
    organization_id: &str,
    form_version_id: &str,
) -> ServiceResult<Vec<extraction_result::Model>> {
    let all = crate::tenancy::scoped::<extraction_result::Entity>(
        crate::tenancy::Scope::Organization(organization_id),
    )
    .filter(extraction_result::Column::FormVersionId.eq(form_version_id))
    .order_by_asc(extraction_result::Column::DocumentId)
    .order_by_desc(extraction_result::Column::CreatedAt)
    .order_by_desc(extraction_result::Column::Id)
    .all(&app.db)
    .await?;
    let mut latest: Vec<extraction_result::Model> = Vec::new();
    for r in all {
        if latest.last().is_none_or(|l| l.document_id != r.document_id) {
            latest.push(r);
        }
    }
    Ok(latest)
}

async fn rows(
    app: &App,
    organization_id: &str,
    results: Vec<extraction_result::Model>,
) -> ServiceResult<Vec<ResultRow>> {
    let mut items = Vec::with_capacity(results.len());
    for r in results {
        let run = extraction_run::Entity::find_by_id(r.run_id.as_str())
            .one(&app.db)
            .await?
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("result without run")))?;
        let document = document::Entity::find_by_id(r.document_id.as_str())
            .filter(document::Column::OrganizationId.eq(organization_id))
            .one(&app.db)
            .await?;
        // A deleted document's results are not shown.
        let Some(document) = document else { continue };
        let values = extraction_value::Entity::find()
            .filter(extraction_value::Column::ResultId.eq(r.id.as_str()))
            .order_by_asc(extraction_value::Column::Ordinal)
            .all(&app.db)
            .await?;
        items.push(ResultRow {
            result: r,
            run,
            document,
            values,
        });
    }
    Ok(items)
}
