//! GraphQL types of the plugin registry and project bindings.

use async_graphql::{Context, Json, Object, SimpleObject};

use super::app;
use super::types::timestamp;
use crate::plugins::manifest::PluginKind;
use crate::registry::PluginInfo;
use crate::registry::binding::Binding;

/// How the host adds a secret to the adapter's requests.
#[derive(SimpleObject)]
pub struct SecretSpec {
    /// Name in the binding's `llmSecrets`.
    pub name: String,
    /// Header the host sets.
    pub header: String,
}

/// What a plugin may use beyond its world.
#[derive(SimpleObject)]
pub struct PluginCapabilities {
    /// Hosts (or `*.domain` patterns) it asks to reach; a binding grants them.
    pub outbound_hosts: Vec<String>,
    /// Configuration keys it reads.
    pub config_keys: Vec<String>,
    /// Secrets it needs.
    pub secrets: Vec<SecretSpec>,
}

/// A built-in or installed plugin.
pub struct Plugin(pub PluginInfo);

#[Object]
impl Plugin {
    /// Stable id from the manifest (`pdf-text`).
    async fn id(&self) -> &str {
        &self.0.manifest.id
    }
    async fn version(&self) -> &str {
        &self.0.manifest.version
    }
    async fn kind(&self) -> PluginKind {
        self.0.manifest.kind
    }
    /// SPDX licence expression.
    async fn license(&self) -> &str {
        &self.0.manifest.license
    }
    async fn description(&self) -> &str {
        &self.0.manifest.description
    }
    /// Shipped in the server binary.
    async fn built_in(&self) -> bool {
        self.0.built_in()
    }
    /// sha256 of the component: the identity recorded in provenance.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    async fn size_bytes(&self) -> u64 {
        self.0.size_bytes
    }
    /// The installing organization (null for built-ins).
    async fn organization_id(&self) -> Option<async_graphql::ID> {
        self.0.organization_id.clone().map(async_graphql::ID)
    }
    async fn installed_at(&self) -> Option<String> {
        self.0.installed_at.map(timestamp)
    }
    /// WIT package version it implements.
    async fn wit_version(&self) -> &str {
        &self.0.manifest.wit
    }
    async fn capabilities(&self) -> PluginCapabilities {
        let c = &self.0.manifest.capabilities;
        PluginCapabilities {
            outbound_hosts: c.outbound_hosts.clone(),
            config_keys: c.config_keys.clone(),
            secrets: c
                .secrets
                .iter()
                .map(|s| SecretSpec {
                    name: s.name.clone(),
                    header: s.header.clone(),
                })
                .collect(),
        }
    }
}

/// A project's plugins. Secrets are write-only: only their names show.
pub struct ProjectPlugins(pub Binding);

#[Object]
impl ProjectPlugins {
    async fn converter(&self) -> Plugin {
        Plugin(self.0.converter.clone())
    }
    /// Null: the default extractor.
    async fn extractor(&self) -> Option<Plugin> {
        self.0.extractor.clone().map(Plugin)
    }
    /// Null: no LLM (extraction runs offline).
    async fn llm_adapter(&self) -> Option<Plugin> {
        self.0.llm_adapter.clone().map(Plugin)
    }
    /// The adapter's configuration.
    async fn llm_config(&self) -> Json<serde_json::Value> {
        Json(serde_json::to_value(&self.0.llm_config).unwrap_or_default())
    }
    /// Hosts the adapter may reach (granted, plus the host of `baseUrl`).
    async fn llm_allowed_hosts(&self) -> Vec<String> {
        self.0.granted_hosts()
    }
    /// Names of the secrets that are set.
    async fn llm_secret_names(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self.0.secret_names(app(ctx))?)
    }
}

/// The answer of `checkLlmConnection`.
#[derive(SimpleObject)]
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

impl From<crate::llm::LlmCheck> for LlmCheck {
    fn from(c: crate::llm::LlmCheck) -> Self {
        Self {
            text: c.text,
            model: c.model,
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
            latency_ms: c.latency_ms,
            requests: c.requests,
        }
    }
}

/// LLM calls made through the gateway, with tokens and cost.
#[derive(SimpleObject)]
pub struct LlmUsage {
    /// Calls (cache hits included).
    pub calls: u64,
    /// Calls the cache answered (no provider request, no cost).
    pub cached_calls: u64,
    /// Calls that failed after retries.
    pub failed_calls: u64,
    /// Tokens sent to providers.
    pub input_tokens: u64,
    /// Tokens received.
    pub output_tokens: u64,
    /// Cost in US dollars at the configured prices (`llm.prices`).
    pub cost_usd: f64,
}

impl From<crate::llm::gateway::Usage> for LlmUsage {
    fn from(u: crate::llm::gateway::Usage) -> Self {
        Self {
            calls: u.calls,
            cached_calls: u.cached_calls,
            failed_calls: u.failed_calls,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cost_usd: u.cost_usd,
        }
    }
}
