//! Plugins: PDF converters, form extractors and LLM adapters.
//!
//! The rest of the server sees each kind through a face that does not know
//! how plugins run: [`PdfConverter`], [`FormExtractor`] and [`LlmAdapter`],
//! with plugin-neutral types beside them, and [`PluginHost`], which hands
//! them out bound to the limits and network policy of their calls. The
//! [`runtime`] implements them as WebAssembly components run sandboxed per
//! call: a plugin can fail its call; it can never take the server down or
//! see another tenant's data (a fresh store per call, memory and time caps,
//! no capabilities beyond its world's, every failure a typed error).

pub mod admission;
pub mod builtin;
pub mod conformance;
pub mod converter;
pub mod error;
pub mod extractor;
pub mod host;
pub mod invariants;
pub mod llm;
pub mod manifest;
pub mod policy;
pub mod runtime;

use sha2::{Digest, Sha256};

pub use converter::PdfConverter;
pub use error::PluginError;
pub use extractor::FormExtractor;
pub use host::PluginHost;
pub use llm::LlmAdapter;
pub use runtime::PluginRuntime;
pub use runtime::sandbox::CallLimits;

/// Hex sha256 of a component's bytes: its identity everywhere.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
