//! First-party plugins, built from `plugins/` for wasm32-wasip2 by the
//! host's build script and embedded in the binary.

use super::manifest::Manifest;

/// A plugin shipped inside the binary.
pub struct Builtin {
    /// Its manifest.
    pub manifest: Manifest,
    /// The component.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Every built-in plugin. Manifests are checked by a test, so a bad one
/// never ships; here a bad one is skipped with an error log.
pub fn all() -> Vec<Builtin> {
    BUILTINS
        .iter()
        .filter_map(|&(m, wasm)| match Manifest::parse(m) {
            Ok(manifest) => Some(Builtin { manifest, wasm }),
            Err(e) => {
                tracing::error!(error = %e, "built-in plugin manifest invalid");
                None
            }
        })
        .collect()
}

/// The built-in plugin `id`.
pub fn get(id: &str) -> Option<Builtin> {
    all().into_iter().find(|b| b.manifest.id == id)
}

/// Id of the default converter.
pub const DEFAULT_CONVERTER: &str = "pdf-text";

/// Id of the default extractor (offline, no LLM).
pub const DEFAULT_EXTRACTOR: &str = "lexical-extractor";

/// Id of the default extractor of a project with an LLM adapter bound.
pub const LLM_EXTRACTOR: &str = "llm-extractor";
