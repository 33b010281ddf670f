//! One document of a run: the run's extractor over the document's text,
//! the host's grounding of every quote, the values stored. Idempotent: a
//! re-run replaces the (run, document) result and its values in one
//! transaction.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::Serialize;

use super::grounding::{Grounder, Verdict};
use crate::db::entities::{
    document, document_text, extraction_result, extraction_run, extraction_value, form_version,
};
use crate::db::{new_id, now_ms};
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::llm::gateway::{self, CallFor, GatewayError};
use crate::plugins::adapter::{Completion, CompletionRequest, LlmFailure};
use crate::plugins::extractor::{
    ExtractedValue, ExtractorImports, LlmBackend, SourceText, ValueStatus,
};
use crate::registry;

/// Handler of [`super::UNIT_JOB`].
pub struct UnitHandler;

/// An evidence item as stored: the extractor's quote and the host's verdict.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StoredEvidence {
    /// The quote as the extractor gave it.
    pub quote: String,
    /// The page, from the host's location (else the extractor's claim).
    pub page: Option<u32>,
    /// Code-point span in the text, when found.
    pub start: Option<u32>,
    /// End of the span.
    pub end: Option<u32>,
    /// EXACT, FUZZY or NOT_FOUND.
    pub grounding: Verdict,
    /// Word-level similarity of the match.
    pub similarity: f64,
}

fn retry(what: &str) -> impl Fn(sea_orm::DbErr) -> JobError + '_ {
    move |e| JobError::Retryable(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl JobHandler for UnitHandler {
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let payload = ctx.payload();
        let (Some(run_id), Some(doc_id)) = (
            payload["run_id"].as_str().map(str::to_owned),
            payload["document_id"].as_str().map(str::to_owned),
        ) else {
            return Err(JobError::Permanent(
                "payload without run_id/document_id".into(),
            ));
        };
        let app = ctx.app.clone();
        let org = ctx.job.organization_id.clone();
        let run = extraction_run::Entity::find_by_id(run_id.as_str())
            .filter(extraction_run::Column::OrganizationId.eq(org.as_str()))
            .one(&app.db)
            .await
            .map_err(retry("database"))?
            .ok_or_else(|| JobError::Permanent("the run is gone".into()))?;
        let doc = document::Entity::find_by_id(doc_id.as_str())
            .filter(document::Column::OrganizationId.eq(org.as_str()))
            .one(&app.db)
            .await
            .map_err(retry("database"))?
            .ok_or_else(|| JobError::Permanent("the document was deleted".into()))?;
        let text = document_text::Entity::find_by_id(doc.id.as_str())
            .one(&app.db)
            .await
            .map_err(retry("database"))?
            .ok_or_else(|| JobError::Permanent("the document has no converted text".into()))?;
        let version = form_version::Entity::find_by_id(run.form_version_id.as_str())
            .filter(form_version::Column::OrganizationId.eq(org.as_str()))
            .one(&app.db)
            .await
            .map_err(retry("database"))?
            .ok_or_else(|| JobError::Permanent("the form version is gone".into()))?;
        let program = version
            .program
            .clone()
            .ok_or_else(|| JobError::Permanent("the form version has no program".into()))?;
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
            .extractor(&info.sha256, registry::bytes(&app, &info))
            .await
            .map_err(|e| JobError::Permanent(format!("loading the extractor: {e}")))?;
        let pages = crate::documents::pages(&text);

        // The project's LLM, exactly as the run recorded it.
        let project = crate::db::entities::project::Entity::find_by_id(run.project_id.as_str())
            .filter(crate::db::entities::project::Column::OrganizationId.eq(org.as_str()))
            .one(&app.db)
            .await
            .map_err(retry("database"))?
            .ok_or_else(|| JobError::Permanent("the project was deleted".into()))?;
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
        let limits = app.plugins.extract_limits(&info.manifest);
        let llm_budget = Duration::from_secs(app.plugins.config().http_timeout_secs)
            * app.plugins.config().http_max_requests.max(1);
        let call = extractor.extract(
            &app.plugins.runtime,
            &program,
            SourceText {
                text: &text.markdown,
                pages: &pages,
            },
            limits,
            llm_budget,
            imports,
        );
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(f) = rx.recv() => ctx.set_progress(0.05 + 0.85 * f64::from(f)).await,
                _ = ctx.cancelled() => return Err(JobError::Cancelled),
            }
        };
        let extraction = match outcome {
            Ok(Ok(x)) => x,
            Ok(Err(failure)) => return Err(JobError::Permanent(failure.to_string())),
            Err(e) => {
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
        };
        ctx.set_progress(0.92).await;

        // Grounding is CPU work: done on a blocking thread, before (never
        // inside) the write transaction.
        let (extraction, grounded) = {
            let markdown = text.markdown.clone();
            let pages = pages.clone();
            tokio::task::spawn_blocking(move || {
                let mut extraction = extraction;
                let grounder = Grounder::new(&markdown, &pages);
                let mut warnings = Vec::new();
                let grounded: Vec<_> = extraction
                    .values
                    .iter()
                    .map(|v| ground(&grounder, v, &mut warnings))
                    .collect();
                extraction.warnings.extend(warnings);
                (extraction, grounded)
            })
            .await
            .map_err(|e| JobError::Permanent(format!("grounding failed: {e}")))?
        };
        let converter = super::plugin_ref(
            &text.converter_id,
            &text.converter_version,
            &text.converter_sha256,
        );
        let txn = crate::db::write_txn(&ctx.db)
            .await
            .map_err(retry("database"))?;
        // Replace this (run, document)'s earlier result, if a retry.
        if let Some(old) = extraction_result::Entity::find()
            .filter(extraction_result::Column::RunId.eq(run.id.as_str()))
            .filter(extraction_result::Column::DocumentId.eq(doc.id.as_str()))
            .one(&txn)
            .await
            .map_err(retry("database"))?
        {
            extraction_value::Entity::delete_many()
                .filter(extraction_value::Column::ResultId.eq(old.id.as_str()))
                .exec(&txn)
                .await
                .map_err(retry("database"))?;
            extraction_result::Entity::delete_by_id(old.id.as_str())
                .exec(&txn)
                .await
                .map_err(retry("database"))?;
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
            models: Set(serde_json::to_string(&extraction.models).unwrap_or_else(|_| "[]".into())),
            warnings: Set(
                serde_json::to_string(&extraction.warnings).unwrap_or_else(|_| "[]".into())
            ),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(retry("database"))?;
        for (i, (v, (evidence, verdict))) in extraction.values.iter().zip(grounded).enumerate() {
            extraction_value::ActiveModel {
                id: Set(new_id()),
                organization_id: Set(org.clone()),
                result_id: Set(result.id.clone()),
                ordinal: Set(i as i32),
                path: Set(v.path.clone()),
                value: Set(v.value.to_string()),
                status: Set(status_str(v.status).into()),
                confidence: Set(f64::from(v.confidence)),
                evidence: Set(serde_json::to_string(&evidence).unwrap_or_else(|_| "[]".into())),
                grounding: Set(verdict.into()),
                author_user_id: Set(None),
                created_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(retry("database"))?;
        }
        txn.commit().await.map_err(retry("database"))?;
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

fn status_str(s: ValueStatus) -> &'static str {
    match s {
        ValueStatus::Found => "found",
        ValueStatus::NotReported => "not_reported",
        ValueStatus::NotApplicable => "not_applicable",
        ValueStatus::Unclear => "unclear",
    }
}

/// Grounds every quote of `v`; the value's verdict is its best one
/// (`none` when it offered no evidence). Quotes longer than
/// [`MAX_QUOTE_WORDS`](super::grounding::MAX_QUOTE_WORDS) are cut, with a
/// warning in `warnings`.
pub fn ground(
    g: &Grounder<'_>,
    v: &ExtractedValue,
    warnings: &mut Vec<String>,
) -> (Vec<StoredEvidence>, &'static str) {
    let mut best: Option<Verdict> = None;
    let mut out = Vec::new();
    for e in v.evidence.iter().filter(|e| !e.quote.trim().is_empty()) {
        let (quote, cut) = super::grounding::cap_quote(&e.quote);
        if cut {
            warnings.push(format!(
                "{}: a quote longer than {} words was cut to its first {}",
                v.path,
                super::grounding::MAX_QUOTE_WORDS,
                super::grounding::MAX_QUOTE_WORDS
            ));
        }
        let l = g.locate(quote, e.page);
        best = Some(match (best, l.verdict) {
            (Some(Verdict::Exact), _) | (_, Verdict::Exact) => Verdict::Exact,
            (Some(Verdict::Fuzzy), _) | (_, Verdict::Fuzzy) => Verdict::Fuzzy,
            _ => Verdict::NotFound,
        });
        out.push(StoredEvidence {
            quote: quote.chars().take(2000).collect(),
            page: l.page.or(e.page),
            start: l.start,
            end: l.end,
            grounding: l.verdict,
            similarity: l.similarity,
        });
    }
    let verdict = match best {
        None => "none",
        Some(Verdict::Exact) => "exact",
        Some(Verdict::Fuzzy) => "fuzzy",
        Some(Verdict::NotFound) => "not_found",
    };
    (out, verdict)
}
