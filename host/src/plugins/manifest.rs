//! Plugin manifests: what a component is, what it implements, what it may
//! touch. Shipped as `manifest.toml` beside each plugin.

use serde::{Deserialize, Serialize};

/// The WIT package version this host implements for every world.
pub const WIT_VERSION: &str = "0.1.0";
/// The newer version a `pdf-converter` may be built against (its documents
/// carry their layout).
pub const CONVERTER_WIT_VERSION: &str = "0.2.0";

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `pdf-converter`.
    PdfConverter,
    /// `llm-adapter`.
    LlmAdapter,
    /// `form-extractor`.
    FormExtractor,
}

impl PluginKind {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            Self::PdfConverter => "pdf-converter",
            Self::LlmAdapter => "llm-adapter",
            Self::FormExtractor => "form-extractor",
        }
    }

    /// Parses a world name as stored.
    pub fn from_world(s: &str) -> Option<Self> {
        [Self::PdfConverter, Self::LlmAdapter, Self::FormExtractor]
            .into_iter()
            .find(|k| k.world() == s)
    }
}

/// How a secret reaches the provider: the host adds it to outgoing requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Name in the project binding's secrets (e.g. `apiKey`).
    pub name: String,
    /// Header the host sets (e.g. `authorization`).
    pub header: String,
    /// Value template; `{secret}` is replaced (e.g. `Bearer {secret}`).
    #[serde(default = "default_format")]
    pub format: String,
}

fn default_format() -> String {
    "{secret}".into()
}

/// What a plugin may use beyond its world.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capabilities {
    /// Hosts it may call (llm-adapter only); a project binding grants them.
    pub outbound_hosts: Vec<String>,
    /// Configuration keys it reads.
    pub config_keys: Vec<String>,
    /// Secrets it needs, and how the host injects them.
    pub secrets: Vec<SecretSpec>,
}

/// Default limits of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Memory cap in MiB.
    pub memory_mb: u64,
    /// Wall-clock deadline in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Limits {
    /// Within the default caps of every kind (an adapter's is 30 s), so a
    /// manifest that leaves its limits out installs anywhere.
    fn default() -> Self {
        Self {
            memory_mb: 256,
            timeout_ms: 30_000,
        }
    }
}

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable id (`pdf-text`).
    pub id: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// The world it implements.
    pub kind: PluginKind,
    /// WIT package version it was built against.
    pub wit: String,
    /// SPDX licence expression.
    pub license: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// What it may use.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Default limits.
    #[serde(default)]
    pub limits: Limits,
}

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not parseable.
    #[error("manifest is not valid TOML/JSON: {0}")]
    Syntax(String),
    /// Parseable but wrong.
    #[error("manifest: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parses TOML (or JSON, when it starts with `{`) and validates.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let m: Manifest = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?
        };
        m.validate()?;
        Ok(m)
    }

    /// Checks ids, versions and capabilities against the kind.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Invalid(m));
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return bad(format!(
                "id `{}` must be 1-64 characters of a-z, 0-9 and -",
                self.id
            ));
        }
        // Semantic versioning only: the version is quoted into provenance
        // and the disclosure, so it carries no markup.
        if self.version.len() > 50 || semver::Version::parse(&self.version).is_err() {
            let shown: String = self.version.chars().take(50).collect();
            return bad(format!(
                "version `{}` is not a semantic version (1.2.3, 1.0.0-beta.1)",
                shown.escape_default()
            ));
        }
        let converter_02 =
            self.kind == PluginKind::PdfConverter && self.wit == CONVERTER_WIT_VERSION;
        if self.wit != WIT_VERSION && !converter_02 {
            return bad(format!(
                "built against evistream:plugin@{}, this server implements @{WIT_VERSION} \
                 (and @{CONVERTER_WIT_VERSION} for a pdf-converter)",
                self.wit
            ));
        }
        if self.license.trim().is_empty() {
            return bad("license (an SPDX expression) is required".into());
        }
        if self.license.len() > 200 || spdx::Expression::parse(&self.license).is_err() {
            let shown: String = self.license.chars().take(50).collect();
            return bad(format!(
                "license `{}` is not an SPDX expression of known identifiers \
                 (Apache-2.0, MIT OR Apache-2.0, LicenseRef-Own)",
                shown.escape_default()
            ));
        }
        for (what, text) in [
            ("license", self.license.as_str()),
            ("description", self.description.as_str()),
        ] {
            crate::validate::text(text, what, crate::validate::Lines::One)
                .map_err(|e| ManifestError::Invalid(e.to_string()))?;
        }
        if self.kind != PluginKind::LlmAdapter
            && (!self.capabilities.outbound_hosts.is_empty()
                || !self.capabilities.secrets.is_empty())
        {
            return bad("only llm-adapter plugins may request outbound hosts or secrets".into());
        }
        for spec in &self.capabilities.secrets {
            if http::HeaderName::try_from(spec.header.as_str()).is_err()
                || ["host", "content-length", "transfer-encoding", "connection"]
                    .contains(&spec.header.to_ascii_lowercase().as_str())
            {
                return bad(format!(
                    "secret `{}`: `{}` is not a header a secret may go into",
                    spec.name, spec.header
                ));
            }
            if !spec.format.contains("{secret}") {
                return bad(format!(
                    "secret `{}`: the format must contain {{secret}}",
                    spec.name
                ));
            }
        }
        if self.limits.memory_mb == 0 || self.limits.timeout_ms == 0 {
            return bad("limits must be positive".into());
        }
        Ok(())
    }

    /// The manifest's limits against this server's caps for its kind: a
    /// plugin that asks for more than the server grants is refused rather
    /// than silently cut short.
    pub fn check_limits(&self, caps: &crate::config::PluginsConfig) -> Result<(), ManifestError> {
        let (secs, setting) = match self.kind {
            PluginKind::PdfConverter => (caps.convert_timeout_secs, "convert_timeout_secs"),
            PluginKind::FormExtractor => (caps.extract_timeout_secs, "extract_timeout_secs"),
            PluginKind::LlmAdapter => (caps.adapter_timeout_secs, "adapter_timeout_secs"),
        };
        if self.limits.memory_mb > caps.max_memory_mb {
            return Err(ManifestError::Invalid(format!(
                "limits: memory_mb {} is more than this server grants a plugin \
                 (plugins.max_memory_mb = {})",
                self.limits.memory_mb, caps.max_memory_mb
            )));
        }
        if self.limits.timeout_ms > secs.saturating_mul(1000) {
            return Err(ManifestError::Invalid(format!(
                "limits: timeout_ms {} is more than this server grants a {} \
                 (plugins.{setting} = {secs} s)",
                self.limits.timeout_ms,
                self.kind.world()
            )));
        }
        Ok(())
    }
}
