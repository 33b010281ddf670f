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
