//! The conversion job: the project's converter plugin turns the stored PDF
//! into text with page ranges. Idempotent: a re-run replaces the document's
//! one text row and rewrites the same columns.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::status;
use crate::db::entities::{document, document_text};
use crate::db::now_ms;
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::plugins::converter::ConvertedDocument;

/// Handler of [`super::CONVERT_JOB`].
pub struct ConvertHandler;

#[async_trait::async_trait]
impl JobHandler for ConvertHandler {
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let result = convert(&ctx).await;
        // Whatever ends the job for good also ends the document: it never
        // stays PROCESSING behind a failed or cancelled job.
        let final_failure = match &result {
            Err(JobError::Permanent(m)) => Some(m.clone()),
            Err(JobError::Retryable(m)) if ctx.job.attempts >= ctx.job.max_attempts => {
                Some(m.clone())
            }
            Err(JobError::Cancelled) => Some("conversion cancelled".to_owned()),
            _ => None,
        };
        let payload = ctx.payload();
        if let Some(msg) = final_failure
            && let Some(doc_id) = payload["document_id"].as_str()
        {
            let found = document::Entity::find_by_id(doc_id)
                .filter(document::Column::OrganizationId.eq(ctx.job.organization_id.as_str()))
                .one(&ctx.db)
                .await
                .map_err(|e| JobError::Retryable(format!("database: {e}")))?;
            if let Some(doc) = found {
                set_status(&ctx, &doc, status::FAILED, Some(&msg)).await?;
            }
        }
        result
    }
}

async fn convert(ctx: &JobContext) -> Result<(), JobError> {
    let doc_id = ctx.payload()["document_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| JobError::Permanent("payload has no document_id".into()))?;
    let app = ctx.app.clone();
    let db_err = |e: sea_orm::DbErr| JobError::Retryable(format!("database: {e}"));
    let Some(doc) = document::Entity::find_by_id(doc_id.as_str())
        .filter(document::Column::OrganizationId.eq(ctx.job.organization_id.as_str()))
        .one(&app.db)
        .await
        .map_err(db_err)?
    else {
        return Err(JobError::Permanent("the document was deleted".into()));
    };
    set_status(ctx, &doc, status::PROCESSING, None).await?;
    let bytes = app
        .blobs
        .operator()
        .read(&doc.blob_key)
        .await
        .map_err(|e| JobError::Retryable(format!("reading the PDF from the blob store: {e}")))?
        .to_vec();
    ctx.set_progress(0.1).await;
    ctx.check_cancelled()?;
    let project = crate::db::entities::project::Entity::find_by_id(doc.project_id.as_str())
        .one(&app.db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| JobError::Permanent("the project was deleted".into()))?;
    let binding = crate::registry::binding::load(&app, &project)
        .await
        .map_err(|e| JobError::Retryable(format!("loading the project's plugins: {e}")))?;
    let info = &binding.converter;
    let manifest = info.manifest.clone();
    let converter = app
        .plugins
        .converter(&info.sha256, crate::registry::bytes(&app, info))
        .await
        .map_err(|e| {
            JobError::Permanent(format!(
                "converter {} {} cannot be loaded ({}): {e}",
                manifest.id,
                manifest.version,
                e.kind()
            ))
        })?;
    let limits = app.plugins.convert_limits(&manifest);
    let outcome = converter
        .convert(&app.plugins.runtime, bytes, Vec::new(), limits)
        .await;
    let converted = match outcome {
        Ok(Ok(d)) => d,
        Ok(Err(failure)) => return Err(JobError::Permanent(failure.to_string())),
        Err(e) => {
            tracing::warn!(
                plugin = %manifest.id, version = %manifest.version, sha256 = %converter.sha256,
                kind = e.kind(), error = %e, "converter plugin failed"
            );
            return Err(JobError::Permanent(format!(
                "converter {} {} failed ({}): {e}",
                manifest.id,
                manifest.version,
                e.kind()
            )));
        }
    };
    ctx.set_progress(0.9).await;
    store(
        ctx,
        &doc,
        &converted,
        &manifest.id,
        &manifest.version,
        &converter.sha256,
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn set_status(
    ctx: &JobContext,
    doc: &document::Model,
    to: &str,
    error: Option<&str>,
) -> Result<(), JobError> {
    let mut am: document::ActiveModel = doc.clone().into();
    am.status = Set(to.into());
    am.error = Set(error.map(str::to_owned));
    am.updated_at = Set(now_ms());
    am.update(&ctx.db)
        .await
        .map(|_| ())
        .map_err(|e| JobError::Retryable(format!("database: {e}")))
}

async fn store(
    ctx: &JobContext,
    doc: &document::Model,
    c: &ConvertedDocument,
    converter_id: &str,
    converter_version: &str,
    converter_sha: &str,
) -> Result<(), sea_orm::DbErr> {
    let txn = crate::db::write_txn(&ctx.db).await?;
    document_text::Entity::delete_by_id(doc.id.as_str())
        .exec(&txn)
        .await?;
    document_text::ActiveModel {
        document_id: Set(doc.id.clone()),
        organization_id: Set(doc.organization_id.clone()),
        markdown: Set(c.markdown.clone()),
        pages: Set(serde_json::to_string(&c.pages).unwrap_or_else(|_| "[]".into())),
        warnings: Set(serde_json::to_string(&c.warnings).unwrap_or_else(|_| "[]".into())),
        converter_id: Set(converter_id.to_owned()),
        converter_version: Set(converter_version.to_owned()),
        converter_sha256: Set(converter_sha.to_owned()),
        created_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    let mut am: document::ActiveModel = doc.clone().into();
    am.status = Set(status::COMPLETED.into());
    am.error = Set(None);
    am.page_count = Set(Some(c.page_count as i32));
    am.title = Set(c.title.clone());
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    txn.commit().await
}
