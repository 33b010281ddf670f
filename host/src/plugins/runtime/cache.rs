//! Compiling components once: precompiled artifacts are kept in a local
//! cache dir, keyed by the component's sha256 and the engine's
//! compatibility hash, and loaded in well under a millisecond afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::Component;

use super::engine::SharedEngine;
use crate::plugins::{PluginError, sha256_hex};

/// Where compiled artifacts go.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, engine: &SharedEngine, sha: &str) -> PathBuf {
        self.dir
            .join(format!("{sha}-{}.cwasm", engine.compatibility_key()))
    }

    /// The compiled component for `bytes`, from the cache or compiled now
    /// (off the async runtime) and cached.
    pub async fn load(
        &self,
        engine: &'static SharedEngine,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(Component, String), PluginError> {
        let sha = sha256_hex(&bytes);
        let path = self.path(engine, &sha);
        // Read, not mmap: a cache file truncated under a mapping would
        // crash the process (SIGBUS); a copy costs a few MB of memcpy.
        if let Ok(bytes) = std::fs::read(&path) {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name) into
            // our own cache dir, under the sha256 of the source component;
            // wasmtime still checks the header and rejects foreign data.
            match unsafe { Component::deserialize(&engine.engine, &bytes) } {
                Ok(c) => return Ok((c, sha)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "stale compile cache entry; recompiling");
                }
            }
        }
        let eng = engine.engine.clone();
        let compiled = tokio::task::spawn_blocking(move || eng.precompile_component(&bytes))
            .await
            .map_err(|e| PluginError::Internal(e.to_string()))?
            .map_err(|e| PluginError::Incompatible(format!("not a valid component: {e:#}")))?;
        if let Err(e) = write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "compile cache not written");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(&engine.engine, &compiled) }
            .map_err(|e| PluginError::Internal(format!("loading compiled component: {e}")))?;
        Ok((component, sha))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
