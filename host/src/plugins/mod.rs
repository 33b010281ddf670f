//! The plugin runtime: WebAssembly components (wasmtime, component model)
//! implementing the worlds of `wit/`, run sandboxed per call.
//!
//! A plugin can fail its call; it can never take the server down or see
//! another tenant's data: a fresh store per call, memory and time caps,
//! no capabilities beyond its world's, every failure a typed [`PluginError`].

pub mod adapter;
pub mod builtin;
pub mod cache;
pub mod converter;
pub mod engine;
pub mod error;
pub mod extractor;
pub mod host;
pub mod manifest;
pub mod outbound;
pub mod sandbox;

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{InstancePre, Linker};

pub use error::PluginError;
pub use sandbox::CallLimits;

use cache::CompileCache;
use engine::{EngineSettings, SharedEngine};

/// Entry point of the runtime: the shared engine and the compile cache.
#[derive(Clone)]
pub struct PluginRuntime {
    /// The process-wide engine.
    pub engine: &'static SharedEngine,
    /// Compiled-artifact cache.
    pub cache: CompileCache,
}

impl PluginRuntime {
    /// A runtime on the process-wide engine, caching compiled components under `cache_dir`.
    pub fn new(settings: &EngineSettings, cache_dir: &Path) -> Result<Self, PluginError> {
        let engine = engine::shared(settings).map_err(PluginError::Internal)?;
        Ok(Self::with_engine(engine, cache_dir))
    }

    /// A runtime on a given engine (benchmarks compare engine settings).
    pub fn with_engine(engine: &'static SharedEngine, cache_dir: &Path) -> Self {
        Self {
            engine,
            cache: CompileCache::new(cache_dir),
        }
    }

    /// Compiles `bytes` (or loads them from the cache) and links them with
    /// WASI (nothing behind it) plus what `add` adds for the world; a link
    /// failure becomes `on_link_error`'s verdict. Returns the pre-instance
    /// and the component's sha256.
    pub(crate) async fn link(
        &self,
        bytes: std::sync::Arc<Vec<u8>>,
        add: impl FnOnce(&mut Linker<sandbox::HostState>) -> wasmtime::Result<()>,
        on_link_error: fn(&wasmtime::Error) -> PluginError,
    ) -> Result<(InstancePre<sandbox::HostState>, String), PluginError> {
        let (component, sha256) = self.cache.load(self.engine, bytes).await?;
        let mut linker = Linker::<sandbox::HostState>::new(&self.engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        add(&mut linker).map_err(|e| PluginError::Internal(e.to_string()))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| on_link_error(&e))?;
        Ok((pre, sha256))
    }

    /// Runs one call on the plugin executor. The epoch deadline inside the
    /// call is the real limit; `backstop` (past it) catches a call that does
    /// not come back at all, reported as a timeout of `limits`.
    pub(crate) async fn run_bounded<T: Send + 'static>(
        &self,
        slot: engine::Slot,
        call: impl Future<Output = Result<T, PluginError>> + Send + 'static,
        backstop: Duration,
        limits: &CallLimits,
    ) -> Result<T, PluginError> {
        // Waiting for a slot is queueing, not the plugin's time.
        let _slot = self.engine.slot(slot).await?;
        match tokio::time::timeout(backstop, self.engine.run(call)).await {
            Ok(r) => r?,
            Err(_) => Err(PluginError::Timeout {
                limit_ms: limits.timeout.as_millis() as u64,
            }),
        }
    }
}

/// A link failure: an import the world does not grant is a capability
/// denial; anything else an incompatibility.
pub(crate) fn link_error(e: &wasmtime::Error) -> PluginError {
    let msg = format!("{e:#}");
    if msg.contains("wasi:http") || msg.contains("wasi:sockets") {
        PluginError::CapabilityDenied(format!(
            "the component imports what this kind of plugin may not use: {msg}"
        ))
    } else {
        PluginError::Incompatible(msg)
    }
}
