//! The project's LLM: the bound adapter called with the binding's
//! configuration, under the network policy its manifest and binding allow,
//! with the binding's secrets injected by the host.

pub mod gateway;

use std::time::Instant;

use crate::app::App;
use crate::auth::Role;
use crate::error::{ServiceError, ServiceResult};
use crate::plugins::llm::{
    CallStats, Completion, CompletionRequest, LlmError, Message, Role as MsgRole,
};
use crate::registry::{self, binding::Binding};
use crate::tenancy::Access;

/// How a call through a binding's adapter failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The adapter answered with a failure, or the sandbox ended it.
    #[error(transparent)]
    Adapter(#[from] LlmError),
    /// The host could not make the call (no adapter bound, secrets, loading).
    #[error(transparent)]
    Host(#[from] ServiceError),
}

impl From<CallError> for ServiceError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Adapter(e) => e.into(),
            CallError::Host(e) => e,
        }
    }
}

/// One completion through a binding's adapter, with what the host measured.
pub async fn complete(
    app: &App,
    binding: &Binding,
    request: &CompletionRequest,
) -> Result<(Completion, CallStats), CallError> {
    let info = binding
        .llm_adapter
        .as_ref()
        .ok_or_else(|| ServiceError::bad_input("the project has no LLM adapter bound"))?;
    let adapter = app
        .plugins
        .adapter(&info.manifest, &info.sha256, registry::bytes(app, info))
        .await
        .map_err(ServiceError::from)?;
    let secrets = binding.secrets(app)?;
    let policy = app
        .plugins
        .outbound_policy(
            &info.manifest,
            &binding.granted_hosts(),
            &binding.credential_targets(),
            &secrets,
        )
        .map_err(ServiceError::from)?;
    let config = binding
        .llm_config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (result, stats) = adapter.complete(config, request, policy).await;
    match result {
        Ok(c) => Ok((c, stats)),
        Err(LlmError::Provider(f)) => Err(LlmError::Provider(f).into()),
        Err(e) => {
            tracing::warn!(
                plugin = %info.manifest.id, version = %info.manifest.version, sha256 = %info.sha256,
                kind = e.kind(), error = %e, "LLM adapter failed"
            );
            Err(e.into())
        }
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone)]
pub struct LlmCheck {
    /// What the model answered.
    pub text: String,
    /// The model that answered.
    pub model: String,
    /// Tokens sent.
    pub input_tokens: u32,
    /// Tokens received.
    pub output_tokens: u32,
    /// Wall time of the call.
    pub latency_ms: u64,
    /// Outbound requests the adapter made.
    pub requests: u32,
}

/// Sends a tiny completion through the project's adapter (ADMIN+): checks
/// configuration, secrets and network access in one call. It goes through
/// the gateway like an extraction's calls (per-project and per-organization
/// limits, accounting), but never through its cache.
pub async fn check(app: &App, access: &Access, project_id: &str) -> ServiceResult<LlmCheck> {
    let p = crate::projects::get(app, access, project_id, Role::Admin).await?;
    let binding = registry::binding::load(app, &p).await?;
    let request = CompletionRequest {
        messages: vec![Message {
            role: MsgRole::User,
            content: "Reply with the single word OK.".into(),
        }],
        max_tokens: Some(5),
        temperature: Some(0.0),
        ..Default::default()
    };
    let started = Instant::now();
    let call = gateway::CallFor {
        binding: &binding,
        job_id: None,
        check: true,
    };
    let (c, stats) = gateway::complete_with_stats(app, call, &request)
        .await
        .map_err(|e| match e {
            gateway::GatewayError::Provider(f) => ServiceError::Llm(f),
            gateway::GatewayError::Host(e) => e,
        })?;
    Ok(LlmCheck {
        text: c.text,
        model: c.model,
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
        latency_ms: started.elapsed().as_millis() as u64,
        requests: stats.requests,
    })
}
