//! The static checks a component passes before it is installed: the same
//! list, in the same order, for `installPlugin` and `evistream plugin
//! check`, so what the check passes installs and what it refuses the
//! server refuses with the same reason.

use std::sync::Arc;

use super::PluginHost;
use super::error::PluginError;
use super::manifest::{Manifest, ManifestError};
use super::runtime::ValidationStep;

/// One static check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticCheck {
    /// The manifest parses: id, semantic version, SPDX licence, contract
    /// version, capabilities its kind may declare.
    Manifest,
    /// Its limits are within this server's caps.
    Limits,
    /// A step of the runtime's validation (component, imports, contract, world).
    Runtime(ValidationStep),
}

impl StaticCheck {
    /// Every check, in order.
    pub const ALL: [StaticCheck; 6] = [
        Self::Manifest,
        Self::Limits,
        Self::Runtime(ValidationStep::Component),
        Self::Runtime(ValidationStep::Imports),
        Self::Runtime(ValidationStep::Contract),
        Self::Runtime(ValidationStep::World),
    ];

    /// Stable name, as reports show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Limits => "limits",
            Self::Runtime(step) => step.name(),
        }
    }

    /// What passing means, for reports.
    pub fn passed(self) -> &'static str {
        match self {
            Self::Manifest => "id, version, licence, contract and capabilities are valid",
            Self::Limits => "memory and time limits are within this server's caps",
            Self::Runtime(ValidationStep::Component) => "a WebAssembly component that compiles",
            Self::Runtime(ValidationStep::Imports) => {
                "imports only what its kind may use (wasi:filesystem is linked with no \
                 directory behind it)"
            }
            Self::Runtime(ValidationStep::Contract) => {
                "exports the contract version the manifest declares"
            }
            Self::Runtime(ValidationStep::World) => {
                "exports its kind's world and links against the host"
            }
        }
    }
}

/// Why a component is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The manifest (or its limits).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A refused component: the check that refused it, and why.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    /// Which check.
    pub check: StaticCheck,
    /// Why.
    pub reason: Refusal,
}

/// The first static check: the manifest's text parses and is valid.
pub fn parse(manifest_text: &str) -> Result<Manifest, Refused> {
    Manifest::parse(manifest_text).map_err(|e| Refused {
        check: StaticCheck::Manifest,
        reason: Refusal::Manifest(e),
    })
}

/// The static checks after [`parse`], in order, stopping at the first
/// refusal.
pub async fn admit(
    host: &PluginHost,
    manifest: &Manifest,
    wasm: Arc<Vec<u8>>,
) -> Result<(), Refused> {
    manifest.check_limits(host.config()).map_err(|e| Refused {
        check: StaticCheck::Limits,
        reason: Refusal::Manifest(e),
    })?;
    host.validate(manifest, wasm)
        .await
        .map_err(|invalid| Refused {
            check: StaticCheck::Runtime(invalid.step),
            reason: Refusal::Plugin(invalid.error),
        })
}
