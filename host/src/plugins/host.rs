//! The server's side of the plugins: the runtime, and the limits and
//! network policy each call runs under. It hands out plugin faces
//! ([`PdfConverter`], [`FormExtractor`], [`LlmAdapter`]); what implements
//! them is the runtime's business.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};

use super::converter::PdfConverter;
use super::extractor::FormExtractor;
use super::llm::LlmAdapter;
use super::manifest::{Manifest, PluginKind};
use super::policy::{OutboundPolicy, host_matches};
use super::runtime::PluginRuntime;
use super::runtime::engine::EngineSettings;
use super::{CallLimits, PluginError, builtin, sha256_hex};
use crate::config::PluginsConfig;

/// Plugins of this node.
pub struct PluginHost {
    /// The runtime.
    pub runtime: PluginRuntime,
    config: PluginsConfig,
}

impl PluginHost {
    /// A host over `runtime` with the configured limits.
    pub fn new(runtime: PluginRuntime, config: PluginsConfig) -> Self {
        Self { runtime, config }
    }

    /// The operator's plugin settings.
    pub fn config(&self) -> &PluginsConfig {
        &self.config
    }

    /// The built-in converter `id`.
    pub async fn builtin_converter(
        &self,
        id: &str,
    ) -> Result<(Manifest, Arc<dyn PdfConverter>), PluginError> {
        let b = builtin::get(id)
            .filter(|b| b.manifest.kind == PluginKind::PdfConverter)
            .ok_or_else(|| PluginError::Incompatible(format!("no built-in converter `{id}`")))?;
        let wasm = b.wasm;
        let c = self
            .converter(&b.manifest, &sha256_hex(wasm), async move {
                Ok(Arc::new(wasm.to_vec()))
            })
            .await?;
        Ok((b.manifest, c))
    }

    /// The converter `manifest` describes, with content hash `sha`.
    pub async fn converter(
        &self,
        manifest: &Manifest,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<dyn PdfConverter>, PluginError> {
        self.runtime
            .converter(sha, bytes, self.limits(manifest))
            .await
    }

    /// The extractor `manifest` describes, with content hash `sha`; its
    /// `llm` calls may add up to the LLM budget of
    /// `plugins.http_timeout_secs` × `plugins.http_max_requests`.
    pub async fn extractor(
        &self,
        manifest: &Manifest,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<dyn FormExtractor>, PluginError> {
        let llm_budget = Duration::from_secs(self.config.http_timeout_secs)
            * self.config.http_max_requests.max(1);
        self.runtime
            .extractor(sha, bytes, self.limits(manifest), llm_budget)
            .await
    }

    /// The adapter `manifest` describes, with content hash `sha`.
    pub async fn adapter(
        &self,
        manifest: &Manifest,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<dyn LlmAdapter>, PluginError> {
        self.runtime
            .adapter(sha, bytes, self.limits(manifest))
            .await
    }

    /// Limits of a call of the plugin `m` describes: the manifest's memory
    /// and time, capped by the operator's for its kind (an extractor's time
    /// and an adapter's exclude their LLM calls and network waits).
    pub fn limits(&self, m: &Manifest) -> CallLimits {
        let c = &self.config;
        let (timeout_secs, output_mb) = match m.kind {
            PluginKind::PdfConverter => (c.convert_timeout_secs, c.max_output_mb),
            PluginKind::FormExtractor => (c.extract_timeout_secs, c.max_output_mb),
            PluginKind::LlmAdapter => (c.adapter_timeout_secs, c.http_max_response_mb),
        };
        CallLimits {
            memory_bytes: (m.limits.memory_mb.min(c.max_memory_mb)) << 20,
            timeout: Duration::from_millis(m.limits.timeout_ms)
                .min(Duration::from_secs(timeout_secs)),
            max_output_bytes: output_mb << 20,
            document: c.document_bounds(),
        }
    }

    /// Checks that `bytes` is a component of `manifest`'s world and
    /// contract version that imports nothing its kind may not have, by
    /// compiling and linking it.
    pub async fn validate(
        &self,
        manifest: &Manifest,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), super::runtime::Invalid> {
        self.runtime
            .validate(manifest.kind, &manifest.wit, bytes)
            .await
    }

    /// The host the configuration describes: engine settings, compile cache
    /// dir (default `<data_dir>/plugin-cache`) and call limits.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, PluginError> {
        let p = &config.plugins;
        let cache_dir = if p.cache_dir.is_empty() {
            config.data_dir.join("plugin-cache")
        } else {
            p.cache_dir.clone().into()
        };
        let runtime = PluginRuntime::new(
            &EngineSettings {
                pooling: p.pooling,
                pool_instances: p.pool_instances,
                max_memory_bytes: p.max_memory_mb << 20,
            },
            &cache_dir,
        )?;
        Ok(Self::new(runtime, p.clone()))
    }

    /// The network policy of an adapter call: the hosts the binding granted
    /// that the manifest requested, the operator's private-network switch,
    /// and the manifest's secret headers filled from `secrets`, sent only
    /// toward `credential_hosts`.
    pub fn outbound_policy(
        &self,
        m: &Manifest,
        granted: &[String],
        credential_hosts: &[String],
        secrets: &HashMap<String, String>,
    ) -> Result<OutboundPolicy, PluginError> {
        let allowed_hosts = granted
            .iter()
            .filter(|h| requested(m, h))
            .cloned()
            .collect();
        let mut inject = Vec::new();
        for spec in &m.capabilities.secrets {
            let Some(value) = secrets.get(&spec.name) else {
                continue;
            };
            let name = HeaderName::try_from(spec.header.as_str()).map_err(|_| {
                PluginError::Incompatible(format!(
                    "secret header `{}` is not a header name",
                    spec.header
                ))
            })?;
            let mut v =
                HeaderValue::try_from(spec.format.replace("{secret}", value)).map_err(|_| {
                    PluginError::CapabilityDenied(format!(
                        "secret `{}` contains characters that cannot go into a header",
                        spec.name
                    ))
                })?;
            v.set_sensitive(true);
            inject.push((name, v));
        }
        Ok(OutboundPolicy {
            allowed_hosts,
            allow_private: self.config.allow_private_networks,
            inject,
            credential_hosts: credential_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            request_timeout: Duration::from_secs(self.config.http_timeout_secs),
            max_requests: self.config.http_max_requests,
            max_request_bytes: self.config.http_max_request_mb << 20,
            max_response_bytes: self.config.http_max_response_mb << 20,
        })
    }
}

/// Whether manifest `m` requests `host` (a concrete host name).
pub fn requested(m: &Manifest, host: &str) -> bool {
    m.capabilities
        .outbound_hosts
        .iter()
        .any(|p| host_matches(p, host))
}
