//! The LLM gateway in front of every adapter call an extraction makes:
//!
//! - a response cache per organization, keyed by the sha256 of (adapter
//!   component, binding configuration with the model, canonical request):
//!   re-running a program on a document makes no provider call;
//! - per-project concurrency (a semaphore) and an optional requests-per-
//!   minute pace; per-organization concurrency, so one tenant cannot hold
//!   every adapter slot of the node and starve the others;
//! - retries of rate-limited and transient failures with exponential
//!   backoff, honouring the provider's Retry-After;
//! - accounting: one `llm_calls` row per call with tokens, cost (prices per
//!   model from configuration), attempts, latency and whether the cache
//!   answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Semaphore};

use crate::app::App;
use crate::db::entities::{llm_cache, llm_call};
use crate::db::{new_id, now_ms};
use crate::error::ServiceError;
use crate::forms::program::canonical_json;
use crate::plugins::llm::{CallStats, Completion, CompletionRequest, LlmError, LlmFailure};
use crate::registry::binding::Binding;

/// Per-project limits, created on first use.
#[derive(Default)]
pub struct Gateway {
    projects: Mutex<HashMap<String, Arc<ProjectLimits>>>,
    organizations: Mutex<HashMap<String, Arc<Semaphore>>>,
}

struct ProjectLimits {
    in_flight: Semaphore,
    next_start: Mutex<Instant>,
}

impl Gateway {
    async fn limits(&self, project: &str, permits: usize) -> Arc<ProjectLimits> {
        let mut m = self.projects.lock().await;
        m.entry(project.to_owned())
            .or_insert_with(|| {
                Arc::new(ProjectLimits {
                    in_flight: Semaphore::new(permits.max(1)),
                    next_start: Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    async fn organization(&self, org: &str, permits: usize) -> Arc<Semaphore> {
        let mut m = self.organizations.lock().await;
        m.entry(org.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(permits.max(1))))
            .clone()
    }
}

/// Adapter calls one organization may have in flight on this node: the
/// configured figure, and never more than half the adapter slots (a quarter
/// of the instance pool), so another organization always finds room.
fn per_organization(app: &App) -> usize {
    let slots_half = (app.config.plugins.pool_instances as usize / 4).max(1);
    (app.config.llm.max_concurrency_per_organization as usize).clamp(1, slots_half)
}

/// Who a call is for.
#[derive(Debug, Clone)]
pub struct CallFor<'a> {
    /// The project's binding (adapter, configuration, secrets).
    pub binding: &'a Binding,
    /// The job making the call, for accounting.
    pub job_id: Option<&'a str>,
    /// A connection check: never answered from the cache nor stored in it.
    pub check: bool,
}

/// How a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The provider's verdict, after retries.
    #[error("{0}")]
    Provider(LlmFailure),
    /// The adapter or the host failed.
    #[error("{0}")]
    Host(ServiceError),
}

/// The cache key of a request through a binding.
pub fn cache_key(binding: &Binding, adapter_sha: &str, request: &CompletionRequest) -> String {
    let v = serde_json::json!({
        "organization": binding.organization_id,
        "adapter": adapter_sha,
        "config": binding.llm_config,
        "request": request,
    });
    hex::encode(Sha256::digest(canonical_json(&v).as_bytes()))
}

fn cost(app: &App, model: &str, c: &Completion) -> f64 {
    app.config
        .llm
        .prices
        .get(model)
        .map(|p| {
            (f64::from(c.input_tokens) * p.input_per_mtok
                + f64::from(c.output_tokens) * p.output_per_mtok)
                / 1e6
        })
        .unwrap_or(0.0)
}

/// One completion through the gateway.
pub async fn complete(
    app: &App,
    call: CallFor<'_>,
    request: &CompletionRequest,
) -> Result<Completion, GatewayError> {
    complete_with_stats(app, call, request)
        .await
        .map(|(c, _)| c)
}

/// One completion through the gateway, with what the host measured of the
/// last attempt (nothing for a cache hit).
pub async fn complete_with_stats(
    app: &App,
    call: CallFor<'_>,
    request: &CompletionRequest,
) -> Result<(Completion, CallStats), GatewayError> {
    let b = call.binding;
    let info = b.llm_adapter.as_ref().ok_or_else(|| {
        GatewayError::Host(ServiceError::bad_input(
            "the project has no LLM adapter bound",
        ))
    })?;
    let adapter = format!("{}@{}", info.manifest.id, info.manifest.version);
    let model = b.llm_config.get("model").cloned().unwrap_or_default();
    let cfg = &app.config.llm;
    let key = cache_key(b, &info.sha256, request);
    let started = Instant::now();
    let record = |c: Option<&Completion>, cached: bool, attempts: u32, outcome: &str| {
        llm_call::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(b.organization_id.clone()),
            project_id: Set(b.project_id.clone()),
            job_id: Set(call.job_id.map(str::to_owned)),
            adapter: Set(adapter.clone()),
            model: Set(c
                .map(|c| c.model.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| model.clone())),
            input_tokens: Set(c.map(|c| i64::from(c.input_tokens)).unwrap_or(0)),
            output_tokens: Set(c.map(|c| i64::from(c.output_tokens)).unwrap_or(0)),
            cost_usd: Set(match c {
                Some(c) if !cached => cost(app, &model, c),
                _ => 0.0,
            }),
            cached: Set(cached),
            attempts: Set(attempts as i32),
            latency_ms: Set(started.elapsed().as_millis() as i64),
            outcome: Set(outcome.to_owned()),
            created_at: Set(now_ms()),
        }
    };
    let host = |e: sea_orm::DbErr| GatewayError::Host(e.into());
    let use_cache = cfg.cache && !call.check;
    if use_cache
        && let Some(hit) = llm_cache::Entity::find_by_id(key.as_str())
            .filter(llm_cache::Column::OrganizationId.eq(b.organization_id.as_str()))
            .one(&app.db)
            .await
            .map_err(host)?
        && let Ok(c) = serde_json::from_str::<Completion>(&hit.response)
    {
        record(Some(&c), true, 0, "cached")
            .insert(&app.db)
            .await
            .map_err(host)?;
        return Ok((c, CallStats::default()));
    }

    let limits = app
        .llm
        .limits(&b.project_id, cfg.max_concurrency_per_project as usize)
        .await;
    let _permit = limits
        .in_flight
        .acquire()
        .await
        .map_err(|e| GatewayError::Host(ServiceError::Internal(e.into())))?;
    let organization = app
        .llm
        .organization(&b.organization_id, per_organization(app))
        .await;
    let mut attempts = 0u32;
    loop {
        if cfg.requests_per_minute > 0 {
            let gap = Duration::from_millis(60_000 / u64::from(cfg.requests_per_minute));
            let wait = {
                let mut next = limits.next_start.lock().await;
                let now = Instant::now();
                let at = (*next).max(now);
                *next = at + gap;
                at - now
            };
            tokio::time::sleep(wait).await;
        }
        attempts += 1;
        // Held for the attempt only, not across retry waits.
        let attempt = {
            let _turn = organization
                .acquire()
                .await
                .map_err(|e| GatewayError::Host(ServiceError::Internal(e.into())))?;
            super::complete(app, b, request).await
        };
        match attempt {
            Ok((c, stats)) => {
                if use_cache {
                    let row = llm_cache::ActiveModel {
                        key: Set(key.clone()),
                        organization_id: Set(b.organization_id.clone()),
                        response: Set(serde_json::to_string(&c).unwrap_or_default()),
                        created_at: Set(now_ms()),
                    };
                    // Two identical calls at once both miss; the second insert loses harmlessly.
                    if let Err(e) = row.insert(&app.db).await {
                        tracing::debug!(error = %e, "LLM cache entry not stored");
                    }
                }
                record(Some(&c), false, attempts, "ok")
                    .insert(&app.db)
                    .await
                    .map_err(host)?;
                return Ok((c, stats));
            }
            Err(super::CallError::Adapter(LlmError::Provider(f))) => {
                // A connection check reports the provider's verdict as it is.
                let retry = (!call.check)
                    .then(|| RetryPolicy::from(cfg).delay(&f, attempts))
                    .flatten();
                match retry {
                    Some(d) => {
                        tracing::info!(project = %b.project_id, attempt = attempts, delay_ms = d.as_millis() as u64, failure = %f, "LLM call will be retried");
                        tokio::time::sleep(d).await;
                    }
                    None => {
                        let outcome = f.kind().to_lowercase();
                        record(None, false, attempts, &outcome)
                            .insert(&app.db)
                            .await
                            .map_err(host)?;
                        return Err(GatewayError::Provider(f));
                    }
                }
            }
            Err(e) => {
                let outcome = match &e {
                    super::CallError::Adapter(a) => a.kind().to_lowercase(),
                    super::CallError::Host(ServiceError::Plugin(p)) => p.kind().to_lowercase(),
                    super::CallError::Host(_) => "error".into(),
                };
                record(None, false, attempts, &outcome)
                    .insert(&app.db)
                    .await
                    .map_err(host)?;
                return Err(GatewayError::Host(e.into()));
            }
        }
    }
}

/// When a failed LLM call is tried again: rate-limited and transient
/// failures only, after the provider's Retry-After or an exponential
/// backoff, up to `max_attempts` and never after a wait longer than `max`.
/// The gateway and `evistream extract` share it.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt.
    pub base: Duration,
    /// The longest wait worth making.
    pub max: Duration,
}

impl From<&crate::config::LlmConfig> for RetryPolicy {
    fn from(c: &crate::config::LlmConfig) -> Self {
        Self {
            max_attempts: c.max_attempts,
            base: Duration::from_millis(c.retry_base_ms),
            max: Duration::from_millis(c.retry_max_ms),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after `failure`, or
    /// `None` to give up.
    pub fn delay(&self, failure: &LlmFailure, attempt: u32) -> Option<Duration> {
        let backoff = || {
            let base = self.base.as_millis() as u64;
            Duration::from_millis(base.saturating_mul(1 << attempt.saturating_sub(1).min(10)))
        };
        let d = match failure {
            LlmFailure::RateLimited(ms) => ms.map(Duration::from_millis).unwrap_or_else(backoff),
            LlmFailure::Transient(_) => backoff(),
            _ => return None,
        };
        (attempt < self.max_attempts && d <= self.max).then_some(d)
    }
}

/// Token and cost totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Calls made (cached included).
    pub calls: u64,
    /// Calls the cache answered.
    pub cached_calls: u64,
    /// Calls that failed.
    pub failed_calls: u64,
    /// Tokens sent to providers (cache hits not counted).
    pub input_tokens: u64,
    /// Tokens received from providers.
    pub output_tokens: u64,
    /// Cost in US dollars at the configured prices.
    pub cost_usd: f64,
}

/// Totals over calls of a project, or of some jobs of it.
pub async fn usage(
    app: &App,
    organization_id: &str,
    project_id: &str,
    job_ids: Option<Vec<String>>,
) -> Result<Usage, ServiceError> {
    let mut q = crate::tenancy::scoped::<llm_call::Entity>(crate::tenancy::Scope::Organization(
        organization_id,
    ))
    .filter(llm_call::Column::ProjectId.eq(project_id));
    if let Some(ids) = job_ids {
        q = q.filter(llm_call::Column::JobId.is_in(ids));
    }
    let rows = q.all(&app.db).await?;
    let mut u = Usage::default();
    for r in rows {
        u.calls += 1;
        if r.cached {
            u.cached_calls += 1;
            continue;
        }
        if r.outcome != "ok" {
            u.failed_calls += 1;
        }
        u.input_tokens += r.input_tokens.max(0) as u64;
        u.output_tokens += r.output_tokens.max(0) as u64;
        u.cost_usd += r.cost_usd;
    }
    Ok(u)
}
