//! The conversion job: the project's converter plugin turns the stored PDF
//! into text with page ranges. Idempotent: a re-run replaces the document's
//! one text row and rewrites the same columns.

use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use super::{ConvertJob, DocumentStatus};
use crate::db::entities::{document, document_text, project};
use crate::db::now_ms;
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::plugins::converter::{ConvertError, ConvertedDocument};
use crate::tenancy::{Scope, find_scoped};

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
        if let Some(msg) = final_failure
            && let Ok(job) = ctx.payload::<ConvertJob>()
        {
            let scope = Scope::Organization(&ctx.job.organization_id);
            let found =
                find_scoped::<document::Entity, _>(&ctx.db, scope, &job.document_id).await?;
            if let Some(doc) = found {
                set_status(&ctx, &doc, DocumentStatus::Failed, Some(&msg)).await?;
            }
        }
        result
    }
}

async fn convert(ctx: &JobContext) -> Result<(), JobError> {
    let job: ConvertJob = ctx.payload()?;
    let app = ctx.app.clone();
    let scope = Scope::Organization(&ctx.job.organization_id);
    let Some(doc) = find_scoped::<document::Entity, _>(&app.db, scope, &job.document_id).await?
    else {
        return Err(JobError::Permanent("the document was deleted".into()));
    };
    set_status(ctx, &doc, DocumentStatus::Processing, None).await?;
    let bytes = app
        .blobs
        .operator()
        .read(&doc.blob_key)
        .await
        .map_err(|e| JobError::Retryable(format!("reading the PDF from the blob store: {e}")))?
        .to_vec();
    ctx.set_progress(0.1).await;
    ctx.check_cancelled()?;
    let project = find_scoped::<project::Entity, _>(&app.db, scope, &doc.project_id)
        .await?
        .ok_or_else(|| JobError::Permanent("the project was deleted".into()))?;
    let binding = crate::registry::binding::load(&app, &project)
        .await
        .map_err(|e| JobError::Retryable(format!("loading the project's plugins: {e}")))?;
    let manifest = binding.converter.manifest.clone();
    let converter = binding.converter(&app).await.map_err(|e| {
        JobError::Permanent(format!(
            "converter {} {} cannot be loaded ({}): {e}",
            manifest.id,
            manifest.version,
            e.kind()
        ))
    })?;
    let converted = match converter.convert(bytes, Vec::new()).await {
        Ok(d) => d,
        Err(ConvertError::Plugin(e)) => {
            tracing::warn!(
                plugin = %manifest.id, version = %manifest.version, sha256 = %converter.sha256(),
                kind = e.kind(), error = %e, "converter plugin failed"
            );
            return Err(JobError::Permanent(format!(
                "converter {} {} failed ({}): {e}",
                manifest.id,
                manifest.version,
                e.kind()
            )));
        }
        // The converter's own verdict on the PDF.
        Err(refused) => return Err(JobError::Permanent(refused.to_string())),
    };
    ctx.set_progress(0.9).await;
    // The layout goes to the blob store first: a text row never names a
    // layout that is not there.
    let layout_key = match &converted.layout {
        Some(l) => Some(
            super::layout::write(&app, &doc.organization_id, &doc.id, l)
                .await
                .map_err(|e| JobError::Retryable(format!("storing the layout: {e}")))?,
        ),
        None => None,
    };
    let previous = document_text::Entity::find_by_id(doc.id.as_str())
        .one(&ctx.db)
        .await?
        .and_then(|t| t.layout_key);
    let stored = store(
        ctx,
        &doc,
        &converted,
        &manifest.id,
        &manifest.version,
        converter.sha256(),
        layout_key.clone(),
    )
    .await;
    // Whichever layout no row names any more goes.
    let orphan = if stored.is_ok() { previous } else { layout_key };
    if let Some(k) = orphan {
        app.blobs.remove(&k).await;
    }
    stored?;
    Ok(())
}

/// Sets the document's status, fenced by the job's lease (a worker that
/// lost the job must not mark the document behind the new owner's back).
async fn set_status(
    ctx: &JobContext,
    doc: &document::Model,
    to: DocumentStatus,
    error: Option<&str>,
) -> Result<(), JobError> {
    let txn = crate::db::write_txn(&ctx.db).await?;
    ctx.fence(&txn).await?;
    let mut am: document::ActiveModel = doc.clone().into();
    am.status = Set(to);
    am.error = Set(error.map(str::to_owned));
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

async fn store(
    ctx: &JobContext,
    doc: &document::Model,
    c: &ConvertedDocument,
    converter_id: &str,
    converter_version: &str,
    converter_sha: &str,
    layout_key: Option<String>,
) -> Result<(), JobError> {
    let txn = crate::db::write_txn(&ctx.db).await?;
    ctx.fence(&txn).await?;
    document_text::Entity::delete_by_id(doc.id.as_str())
        .exec(&txn)
        .await?;
    document_text::ActiveModel {
        document_id: Set(doc.id.clone()),
        organization_id: Set(doc.organization_id.clone()),
        markdown: Set(c.markdown.clone()),
        pages: Set(c.pages.clone().into()),
        warnings: Set(c.warnings.clone().into()),
        converter_id: Set(converter_id.to_owned()),
        converter_version: Set(converter_version.to_owned()),
        converter_sha256: Set(converter_sha.to_owned()),
        created_at: Set(now_ms()),
        layout_key: Set(layout_key),
    }
    .insert(&txn)
    .await?;
    let mut am: document::ActiveModel = doc.clone().into();
    am.status = Set(DocumentStatus::Completed);
    am.error = Set(None);
    am.page_count = Set(Some(c.page_count as i32));
    am.title = Set(c.title.clone());
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}
