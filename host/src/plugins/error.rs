//! How the sandbox ends a plugin call or load, whatever the kind of plugin.
//! Every variant reaches the user as `PLUGIN_FAILED` with a subkind and a
//! clear message.

/// A failed plugin call or load.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The call ran past its wall-clock deadline.
    #[error("plugin timed out after {limit_ms} ms")]
    Timeout {
        /// The deadline.
        limit_ms: u64,
    },
    /// The plugin tried to use more memory than allowed.
    #[error("plugin exceeded its memory limit of {limit_bytes} bytes")]
    OutOfMemory {
        /// The cap over all of the component's memories.
        limit_bytes: u64,
    },
    /// The plugin trapped (a panic in Rust guests).
    #[error("plugin crashed: {0}")]
    Trap(String),
    /// The plugin asked for something its capabilities do not allow.
    #[error("capability denied: {0}")]
    CapabilityDenied(String),
    /// The plugin returned something unusable (too large, inconsistent).
    #[error("plugin returned invalid output: {0}")]
    InvalidOutput(String),
    /// The component does not implement the expected world or version.
    #[error("incompatible plugin: {0}")]
    Incompatible(String),
    /// The host could not run the plugin (compile cache, executor).
    #[error("plugin runtime error: {0}")]
    Internal(String),
}

impl PluginError {
    /// Stable subkind for `extensions.reason` and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "TIMEOUT",
            Self::OutOfMemory { .. } => "OUT_OF_MEMORY",
            Self::Trap(_) => "TRAP",
            Self::CapabilityDenied(_) => "CAPABILITY_DENIED",
            Self::InvalidOutput(_) => "INVALID_OUTPUT",
            Self::Incompatible(_) => "INCOMPATIBLE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}
