//! The server's side of the plugins: the runtime plus loaded components,
//! compiled once per content hash and shared by every call, and the limits
//! and network policy each call runs under.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use tokio::sync::Mutex;

use super::adapter::Adapter;
use super::converter::Converter;
use super::extractor::Extractor;
use super::manifest::{Manifest, PluginKind};
use super::outbound::{OutboundPolicy, host_matches};
use super::{CallLimits, PluginError, PluginRuntime, builtin};
use crate::config::PluginsConfig;

/// Components of one world, loaded once per content hash.
struct Loaded<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> Loaded<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    /// The component `sha`, loaded by `load` the first time.
    async fn get_or_load<F>(&self, sha: &str, load: F) -> Result<Arc<T>, PluginError>
    where
        F: Future<Output = Result<T, PluginError>>,
    {
        let mut loaded = self.0.lock().await;
        if let Some(c) = loaded.get(sha) {
            return Ok(c.clone());
        }
        let c = Arc::new(load.await?);
        loaded.insert(sha.to_owned(), c.clone());
        Ok(c)
    }
}

/// Plugins of this node.
pub struct PluginHost {
    /// The runtime.
    pub runtime: PluginRuntime,
    config: PluginsConfig,
    converters: Loaded<Converter>,
    adapters: Loaded<Adapter>,
    extractors: Loaded<Extractor>,
}

impl PluginHost {
    /// A host over `runtime` with the configured limits.
    pub fn new(runtime: PluginRuntime, config: PluginsConfig) -> Self {
        Self {
            runtime,
            config,
            converters: Loaded::new(),
            adapters: Loaded::new(),
            extractors: Loaded::new(),
        }
    }

    /// The operator's plugin settings.
    pub fn config(&self) -> &PluginsConfig {
        &self.config
    }

    /// The built-in converter `id`, loaded once.
    pub async fn builtin_converter(
        &self,
        id: &str,
    ) -> Result<(Manifest, Arc<Converter>), PluginError> {
        let b = builtin::get(id)
            .ok_or_else(|| PluginError::Incompatible(format!("no built-in converter `{id}`")))?;
        let sha = super::cache::sha256_hex(b.wasm);
        let wasm = b.wasm;
        let c = self
            .converter(&sha, async move { Ok(Arc::new(wasm.to_vec())) })
            .await?;
        Ok((b.manifest, c))
    }

    /// The converter with content hash `sha`, loaded once; `bytes` is only
    /// awaited when it is not loaded yet.
    pub async fn converter(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<Converter>, PluginError> {
        self.converters
            .get_or_load(sha, async {
                Converter::load(&self.runtime, bytes.await?).await
            })
            .await
    }

    /// The adapter with content hash `sha`, loaded once.
    pub async fn adapter(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<Adapter>, PluginError> {
        self.adapters
            .get_or_load(sha, async {
                Adapter::load(&self.runtime, bytes.await?).await
            })
            .await
    }

    /// The extractor with content hash `sha`, loaded once.
    pub async fn extractor(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<Extractor>, PluginError> {
        self.extractors
            .get_or_load(sha, async {
                Extractor::load(&self.runtime, bytes.await?).await
            })
            .await
    }

    /// Limits of an extraction (its own time; LLM calls are extra).
    pub fn extract_limits(&self, m: &Manifest) -> CallLimits {
        CallLimits {
            memory_bytes: (m.limits.memory_mb.min(self.config.max_memory_mb)) << 20,
            timeout: Duration::from_millis(m.limits.timeout_ms)
                .min(Duration::from_secs(self.config.extract_timeout_secs)),
            max_output_bytes: self.config.max_output_mb << 20,
        }
    }

    /// Checks that `bytes` is a component of `manifest`'s world that imports
    /// nothing its kind may not have, by compiling and linking it.
    pub async fn validate(
        &self,
        manifest: &Manifest,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), PluginError> {
        let sha = super::cache::sha256_hex(&bytes);
        let (component, _) = self
            .runtime
            .cache
            .load(self.runtime.engine, bytes.clone())
            .await?;
        check_imports(&self.runtime, &component, manifest.kind)?;
        match manifest.kind {
            PluginKind::PdfConverter => {
                self.converter(&sha, async { Ok(bytes) }).await?;
            }
            PluginKind::LlmAdapter => {
                self.adapter(&sha, async { Ok(bytes) }).await?;
            }
            PluginKind::FormExtractor => {
                self.extractor(&sha, async { Ok(bytes) }).await?;
            }
        }
        Ok(())
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
            &super::engine::EngineSettings {
                pooling: p.pooling,
                pool_instances: p.pool_instances,
                max_memory_bytes: p.max_memory_mb << 20,
            },
            &cache_dir,
        )?;
        Ok(Self::new(runtime, p.clone()))
    }

    /// Limits of a conversion: the manifest's, capped by the operator's.
    pub fn convert_limits(&self, m: &Manifest) -> CallLimits {
        let mem = (m.limits.memory_mb.min(self.config.max_memory_mb)) << 20;
        let timeout = Duration::from_millis(m.limits.timeout_ms)
            .min(Duration::from_secs(self.config.convert_timeout_secs));
        CallLimits {
            memory_bytes: mem,
            timeout,
            max_output_bytes: self.config.max_output_mb << 20,
        }
    }

    /// Limits of an adapter call (its own time; network waits are extra).
    pub fn adapter_limits(&self, m: &Manifest) -> CallLimits {
        CallLimits {
            memory_bytes: (m.limits.memory_mb.min(self.config.max_memory_mb)) << 20,
            timeout: Duration::from_millis(m.limits.timeout_ms)
                .min(Duration::from_secs(self.config.adapter_timeout_secs)),
            max_output_bytes: self.config.http_max_response_mb << 20,
        }
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

/// Interfaces every kind may import: what a Rust `std` guest links (with
/// nothing behind it: no preopens, no environment) and the contract's own.
const BASE_IMPORTS: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "evistream:plugin/",
];

fn check_imports(
    rt: &PluginRuntime,
    c: &wasmtime::component::Component,
    kind: PluginKind,
) -> Result<(), PluginError> {
    let ty = c.component_type();
    for (name, _) in ty.imports(&rt.engine.engine) {
        let base = BASE_IMPORTS.iter().any(|p| name.starts_with(p));
        let http = kind == PluginKind::LlmAdapter && name.starts_with("wasi:http/");
        if !(base || http) {
            return Err(PluginError::CapabilityDenied(format!(
                "the component imports `{name}`, which a {} may not use",
                kind.world()
            )));
        }
    }
    Ok(())
}
