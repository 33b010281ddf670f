//! One document of a run: the run's extractor over the document's text
//! through [`pipeline::run_document`], the values stored. Idempotent: a
//! re-run replaces the (run, document) result and its values in one
//! transaction.

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::UnitJob;
use super::pipeline::{self, DocumentInput, PipelineError};
use crate::db::entities::{
    document, document_text, extraction_result, extraction_run, extraction_value, form_version,
    project,
};
use crate::db::{new_id, now_ms};
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::llm::gateway::{self, CallFor, GatewayError};
use crate::plugins::extractor::{ExtractorImports, LlmBackend};
use crate::plugins::llm::{Completion, CompletionRequest, LlmFailure};
use crate::registry;
use crate::tenancy::{Scope, find_scoped};

/// Handler of [`super::UNIT_JOB`].
pub struct UnitHandler;

fn gone(what: &str) -> JobError {
    JobError::Permanent(what.to_owned())
}

#[async_trait::async_trait]
impl JobHandler for UnitHandler {
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let job: UnitJob = ctx.payload()?;
        let app = ctx.app.clone();
        let org = ctx.job.organization_id.clone();
        let scope = Scope::Organization(&org);
        let run = find_scoped::<extraction_run::Entity, _>(&app.db, scope, &job.run_id)
            .await?
            .ok_or_else(|| gone("the run is gone"))?;
        let doc = find_scoped::<document::Entity, _>(&app.db, scope, &job.document_id)
            .await?
            .ok_or_else(|| gone("the document was deleted"))?;
        let text = find_scoped::<document_text::Entity, _>(&app.db, scope, &doc.id)
            .await?
            .ok_or_else(|| gone("the document has no converted text"))?;
        let version = find_scoped::<form_version::Entity, _>(&app.db, scope, &run.form_version_id)
            .await?
            .ok_or_else(|| gone("the form version is gone"))?;
        let program = version
            .program
            .clone()
            .ok_or_else(|| gone("the form version has no program"))?;
        ctx.check_cancelled()?;

        // The exact component the run recorded.
        let version_filter = (!run.extractor_builtin).then_some(run.extractor_version.as_str());
        let info = registry::find(&app, &org, &run.extractor_id, version_filter)
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?
            .filter(|i| i.sha256 == run.extractor_sha256)
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "extractor {} {} ({}) is no longer available",
                    run.extractor_id, run.extractor_version, run.extractor_sha256
                ))
            })?;
        let extractor = app
            .plugins
            .extractor(&info.manifest, &info.sha256, registry::bytes(&app, &info))
            .await
            .map_err(|e| JobError::Permanent(format!("loading the extractor: {e}")))?;

        // The project's LLM, exactly as the run recorded it.
        let project = find_scoped::<project::Entity, _>(&app.db, scope, &run.project_id)
            .await?
            .ok_or_else(|| gone("the project was deleted"))?;
        let binding = registry::binding::load(&app, &project)
            .await
            .map_err(|e| JobError::Retryable(format!("loading the project's plugins: {e}")))?;
        let bound_sha = binding.llm_adapter.as_ref().map(|a| a.sha256.clone());
        if bound_sha != run.adapter_sha256 {
            return Err(JobError::Permanent(
                "the project's LLM adapter changed since this run started; start a new run".into(),
            ));
        }
        let llm: Option<Arc<dyn LlmBackend>> = binding.llm_adapter.is_some().then(|| {
            Arc::new(UnitLlm {
                app: app.clone(),
                binding: binding.clone(),
                job_id: ctx.job.id.clone(),
            }) as Arc<dyn LlmBackend>
        });
        // Progress from inside the plugin, forwarded to the job.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f32>();
        let imports = ExtractorImports {
            llm,
            progress: Some(Arc::new(move |f, _m| {
                let _ = tx.send(f);
            })),
            label: format!("{}@{}", info.manifest.id, info.manifest.version),
        };
        // The layout's table cells, for narrowing quotes across a row.
        let cells = match &text.layout_key {
            Some(key) => crate::documents::layout::read(&app, key)
                .await
                .map_err(|e| JobError::Retryable(format!("reading the document's layout: {e}")))?
                .cell_spans(),
            None => Vec::new(),
        };
        let input = DocumentInput::Text {
            markdown: Arc::from(text.markdown.as_str()),
            pages: Arc::from(crate::documents::pages(&text)),
            cells,
        };
        let call = pipeline::run_document(input, &program, extractor.as_ref(), imports);
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(f) = rx.recv() => ctx.set_progress(0.05 + 0.85 * f64::from(f)).await,
                _ = ctx.cancelled() => return Err(JobError::Cancelled),
            }
        };
        let done = match outcome {
            Ok(d) => d,
            Err(PipelineError::Extract(e)) => {
                tracing::warn!(
                    plugin = %info.manifest.id, version = %info.manifest.version, sha256 = %info.sha256,
                    kind = e.kind(), error = %e, "extractor plugin failed"
                );
                return Err(JobError::Permanent(format!(
                    "extractor {} {} failed ({}): {e}",
                    info.manifest.id,
                    info.manifest.version,
                    e.kind()
                )));
            }
            Err(e) => return Err(JobError::Permanent(e.to_string())),
        };
        ctx.set_progress(0.92).await;

        let converter = super::plugin_ref(
            &text.converter_id,
            &text.converter_version,
            &text.converter_sha256,
        );
        let txn = crate::db::write_txn(&ctx.db).await?;
        // Only while this worker still holds the unit: one frozen past its
        // lease, whose unit another worker has run since, writes nothing.
        ctx.fence(&txn).await?;
        // Replace this (run, document)'s earlier result, if a retry.
        if let Some(old) = extraction_result::Entity::find()
            .filter(extraction_result::Column::RunId.eq(run.id.as_str()))
            .filter(extraction_result::Column::DocumentId.eq(doc.id.as_str()))
            .one(&txn)
            .await?
        {
            extraction_value::Entity::delete_many()
                .filter(extraction_value::Column::ResultId.eq(old.id.as_str()))
                .exec(&txn)
                .await?;
            extraction_result::Entity::delete_by_id(old.id.as_str())
                .exec(&txn)
                .await?;
        }
        let now = now_ms();
        let result = extraction_result::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(org.clone()),
            project_id: Set(run.project_id.clone()),
            run_id: Set(run.id.clone()),
            document_id: Set(doc.id.clone()),
            form_version_id: Set(run.form_version_id.clone()),
            converter: Set(converter),
            models: Set(done.models.into()),
            warnings: Set(done.warnings.into()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        for (i, v) in done.values.into_iter().enumerate() {
            extraction_value::ActiveModel {
                id: Set(new_id()),
                organization_id: Set(org.clone()),
                result_id: Set(result.id.clone()),
                ordinal: Set(i as i32),
                path: Set(v.value.path),
                value: Set(v.value.value.to_string()),
                status: Set(v.value.status),
                confidence: Set(f64::from(v.value.confidence)),
                evidence: Set(v.evidence.into()),
                grounding: Set(v.grounding),
                author_user_id: Set(None),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

/// The extractor's `llm` import for one unit: the gateway with the run's binding.
struct UnitLlm {
    app: Arc<crate::app::App>,
    binding: registry::binding::Binding,
    job_id: String,
}

#[async_trait::async_trait]
impl LlmBackend for UnitLlm {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, LlmFailure> {
        let call = CallFor {
            binding: &self.binding,
            job_id: Some(&self.job_id),
            check: false,
        };
        gateway::complete(&self.app, call, &request)
            .await
            .map_err(|e| match e {
                GatewayError::Provider(f) => f,
                GatewayError::Host(e) => {
                    LlmFailure::BadRequest(format!("the project's LLM adapter failed: {e}"))
                }
            })
    }
}
