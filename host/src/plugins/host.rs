//! The server's side of the plugins: the runtime plus loaded components,
//! compiled once per content hash and shared by every call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::converter::Converter;
use super::manifest::Manifest;
use super::{CallLimits, PluginError, PluginRuntime, builtin};
use crate::config::PluginsConfig;

/// Plugins of this node.
pub struct PluginHost {
    /// The runtime.
    pub runtime: PluginRuntime,
    config: PluginsConfig,
    converters: Mutex<HashMap<String, Arc<Converter>>>,
}

impl PluginHost {
    /// A host over `runtime` with the configured limits.
    pub fn new(runtime: PluginRuntime, config: PluginsConfig) -> Self {
        Self {
            runtime,
            config,
            converters: Mutex::new(HashMap::new()),
        }
    }

    /// The built-in converter `id`, loaded once.
    pub async fn converter(&self, id: &str) -> Result<(Manifest, Arc<Converter>), PluginError> {
        let b = builtin::get(id)
            .ok_or_else(|| PluginError::Incompatible(format!("no built-in converter `{id}`")))?;
        let sha = super::cache::sha256_hex(b.wasm);
        let mut loaded = self.converters.lock().await;
        if let Some(c) = loaded.get(&sha) {
            return Ok((b.manifest, c.clone()));
        }
        let c = Arc::new(Converter::load(&self.runtime, Arc::new(b.wasm.to_vec())).await?);
        loaded.insert(sha, c.clone());
        Ok((b.manifest, c))
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
}
