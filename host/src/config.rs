//! Server configuration: defaults, then a TOML file, then `EVISTREAM_*`
//! environment variables, then command-line flags (last wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Every setting of the server. See the README for the reference. Its
/// `Debug` form hides secrets (keys, passwords in URLs).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where a worker node (`evistream worker`) serves `/livez`, `/readyz`
    /// and `/metrics`; empty turns it off. API nodes serve them on `listen`.
    pub ops_listen: String,
    /// Folder for the embedded defaults: SQLite file, blobs, generated keys.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://<data_dir>/evistream.db`.
    pub database_url: String,
    /// Maximum connections in the database pool.
    pub database_max_connections: u32,
    /// Blob store settings.
    pub storage: StorageConfig,
    /// Auth settings.
    pub auth: AuthConfig,
    /// Job worker settings.
    pub jobs: JobsConfig,
    /// API limits.
    pub limits: LimitsConfig,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Run in-process workers beside the API (`serve --no-workers` turns this off).
    pub workers: bool,
    /// Plugin runtime settings.
    pub plugins: PluginsConfig,
    /// The LLM gateway in front of every adapter call.
    pub llm: LlmConfig,
    /// Bounds on what people enter in review.
    pub review: ReviewConfig,
}

/// Bounds on what people enter in review: a review's values are derived
/// from every decision on each read, so what one person may add is bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Items a list may have in a review path: indices run from 0 to one
    /// less (`arms[499]` with 500).
    pub max_list_items: usize,
    /// Values one reviewer's extraction of one document (DUAL) may record,
    /// over all its parts until submitted; a value sent again counts again
    /// (decisions are kept).
    pub max_values_per_submission: usize,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            max_list_items: 500,
            max_values_per_submission: 5_000,
        }
    }
}

/// Price of a model, in US dollars per million tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input (prompt) tokens.
    pub input_per_mtok: f64,
    /// Output (completion) tokens.
    pub output_per_mtok: f64,
}

/// The LLM gateway: cache, limits, retries, prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Answer identical requests (same adapter, model, configuration and
    /// request) from the cache.
    pub cache: bool,
    /// Adapter calls in flight per project.
    pub max_concurrency_per_project: u32,
    /// Adapter calls in flight per organization on one node (never more
    /// than a quarter of `plugins.pool_instances`, half the adapter slots).
    pub max_concurrency_per_organization: u32,
    /// Calls started per minute per project; 0 = no limit.
    pub requests_per_minute: u32,
    /// Attempts of a rate-limited or transiently failed call.
    pub max_attempts: u32,
    /// First retry delay in ms (doubling), unless the provider says Retry-After.
    pub retry_base_ms: u64,
    /// Longest wait between attempts, in ms (a longer Retry-After fails the call).
    pub retry_max_ms: u64,
    /// Prices by model name, e.g. `[llm.prices."gpt-4o-mini"] input_per_mtok = 0.15`.
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            cache: true,
            max_concurrency_per_project: 4,
            max_concurrency_per_organization: 16,
            requests_per_minute: 0,
            max_attempts: 4,
            retry_base_ms: 500,
            retry_max_ms: 60_000,
            prices: Default::default(),
        }
    }
}

/// The WebAssembly plugin runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Use the pooling allocator when it can be reserved (probed at start).
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// Memory cap of one plugin call, in MiB (all of its memories together).
    pub max_memory_mb: u64,
    /// Wall-clock deadline of one conversion, in seconds.
    pub convert_timeout_secs: u64,
    /// Largest converted text accepted from a converter, in MiB.
    pub max_output_mb: u64,
    /// Compiled-component cache; empty means `<data_dir>/plugin-cache`.
    pub cache_dir: String,
    /// Let LLM adapters reach private, loopback and link-local addresses
    /// (local model servers such as Ollama). Off: such addresses are refused
    /// after DNS resolution, whatever the allow-list says.
    pub allow_private_networks: bool,
    /// Deadline of one outbound HTTP request of an adapter (connect to last byte), in seconds.
    pub http_timeout_secs: u64,
    /// Outbound HTTP requests one adapter call may make.
    pub http_max_requests: u32,
    /// Largest outbound request body, in MiB.
    pub http_max_request_mb: u64,
    /// Largest response body an adapter may read, in MiB.
    pub http_max_response_mb: u64,
    /// Wall-clock deadline of one adapter call's own computation (time
    /// waiting on the network is not counted), in seconds.
    pub adapter_timeout_secs: u64,
    /// Largest component an organization may install, in MiB.
    pub max_component_mb: u64,
    /// Wall-clock deadline of one extractor call's own computation per
    /// document (time waiting on the LLM is not counted), in seconds.
    pub extract_timeout_secs: u64,
    /// Pages a converted document may have.
    pub max_pages: u32,
    /// Text runs (lines, cells) a converter may place on one page.
    pub max_runs_per_page: u32,
    /// Tables of one converted document.
    pub max_tables: u32,
    /// Table cells of one converted document, all tables together.
    pub max_table_cells: u32,
    /// Columns of one table.
    pub max_table_columns: u32,
    /// Largest rendered page image, in MiB.
    pub max_page_image_mb: u64,
}

impl PluginsConfig {
    /// What converters' documents and page images are held to.
    pub fn document_bounds(&self) -> crate::plugins::invariants::DocumentBounds {
        crate::plugins::invariants::DocumentBounds {
            max_output_bytes: self.max_output_mb << 20,
            max_pages: self.max_pages,
            max_runs_per_page: self.max_runs_per_page,
            max_tables: self.max_tables,
            max_cells: self.max_table_cells,
            max_columns: self.max_table_columns,
            max_page_image_bytes: self.max_page_image_mb << 20,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            pooling: true,
            pool_instances: 64,
            max_memory_mb: 512,
            convert_timeout_secs: 120,
            max_output_mb: 64,
            cache_dir: String::new(),
            allow_private_networks: false,
            http_timeout_secs: 120,
            http_max_requests: 16,
            http_max_request_mb: 16,
            http_max_response_mb: 16,
            adapter_timeout_secs: 30,
            max_component_mb: 64,
            extract_timeout_secs: 120,
            max_pages: 5_000,
            max_runs_per_page: 2_000,
            max_tables: 1_000,
            max_table_cells: 100_000,
            max_table_columns: 100,
            max_page_image_mb: 8,
        }
    }
}

/// Where blobs (PDFs, exports, plugin artifacts) live.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `fs` (default) or `s3`.
    pub backend: StorageBackend,
    /// Root folder for `fs`; empty means `<data_dir>/blobs`.
    pub fs_root: String,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    /// Bucket name.
    pub s3_bucket: String,
    /// Region (any value for most S3-compatible servers).
    pub s3_region: String,
    /// Access key id.
    pub s3_access_key_id: String,
    /// Secret access key.
    pub s3_secret_access_key: String,
    /// Key prefix inside the bucket.
    pub s3_root: String,
}

/// Blob store backends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Local filesystem.
    Fs,
    /// Any S3-compatible service.
    S3,
}

/// Token lifetimes and signing keys.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 signing key (base64, ≥ 32 bytes). Empty: generated once into the data dir.
    pub jwt_secret: String,
    /// Key id written into the JWT header.
    pub jwt_kid: String,
    /// Earlier signing keys still accepted for verification during a
    /// rotation, by key id: `{ kid = "k0", secret = "<base64>" }`. Tokens
    /// with a kid that is neither current nor listed here are refused.
    pub jwt_previous_keys: Vec<PreviousKey>,
    /// Issuer and audience claims.
    pub jwt_issuer: String,
    /// Audience claim.
    pub jwt_audience: String,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Key for secrets at rest (base64, 32 bytes). Empty: generated once into the data dir.
    pub encryption_key: String,
    /// Failed logins per account (and per client address) before backoff starts.
    pub login_free_failures: u32,
    /// First backoff after the free failures, in ms; doubles per failure.
    pub login_backoff_base_ms: u64,
    /// Longest backoff, in seconds.
    pub login_backoff_max_secs: u64,
    /// Password hashes computed at once (argon2 takes ~19 MiB each);
    /// 0 = the number of CPUs.
    pub max_concurrent_hashes: usize,
    /// Requests that may wait for a hashing slot; more are refused at once.
    pub max_waiting_hashes: usize,
}

/// A retired JWT key still accepted for verification.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    /// Its key id.
    pub kid: String,
    /// The key (base64, ≥ 32 bytes).
    pub secret: String,
}

/// Worker behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs one worker process runs at once.
    pub concurrency: usize,
    /// Lease length in milliseconds; a heartbeat renews it at a third of that.
    pub lease_ms: u64,
    /// Idle poll interval in milliseconds (events wake workers sooner).
    pub poll_interval_ms: u64,
    /// Base retry delay in milliseconds (doubles per attempt, with jitter).
    pub retry_base_ms: u64,
    /// Cap on the retry delay in milliseconds.
    pub retry_max_ms: u64,
    /// Default maximum attempts of a job.
    pub max_attempts: i32,
    /// How long shutdown waits for running jobs before releasing their leases (ms).
    pub shutdown_grace_ms: u64,
    /// Finished jobs older than this many days are pruned (0: kept forever).
    /// An extraction run's own row stays (it is the run's record); its
    /// units and conversion jobs go.
    pub retention_days: u32,
}

/// Request limits. Every request is bounded before it is parsed, on HTTP,
/// multipart and WebSocket alike (see the README's "Security model").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Maximum request body in bytes for non-upload requests; also caps the
    /// non-file parts of a multipart request and every WebSocket message.
    pub max_body_bytes: usize,
    /// Maximum size of one uploaded file in bytes.
    pub max_upload_bytes: u64,
    /// Maximum GraphQL query depth.
    pub max_depth: usize,
    /// Maximum GraphQL query complexity (fields whose size grows with the
    /// data, such as `text` or `results`, cost more).
    pub max_complexity: usize,
    /// Deepest nesting of `{`, `[`, `(` in a query's text.
    pub max_nesting: usize,
    /// Fragment definitions in one query.
    pub max_fragments: usize,
    /// Fields and spreads of a query once its fragments are expanded.
    pub max_selections: u64,
    /// Aliased fields of a query once its fragments are expanded.
    pub max_aliases: u64,
    /// Largest GraphQL response, in bytes; a larger one is replaced by a
    /// RESPONSE_TOO_LARGE error.
    pub max_response_bytes: usize,
    /// Time to send the request headers, in seconds.
    pub header_read_timeout_secs: u64,
    /// Longest pause between two pieces of a request body, in seconds.
    pub body_idle_timeout_secs: u64,
    /// Time for a WebSocket client to send `connection_init`, in seconds.
    pub ws_init_timeout_secs: u64,
    /// Operations running at once on one WebSocket.
    pub ws_max_operations: usize,
    /// How often an open WebSocket's credential is checked again, in
    /// seconds (it also closes when its access token expires).
    pub ws_recheck_secs: u64,
    /// Storage one organization's derived blobs (export snapshots, cached
    /// page images) may take, in MiB.
    pub max_derived_storage_mb: u64,
    /// Hours an export snapshot (and its links) lasts; then it is removed.
    pub export_ttl_hours: u64,
    /// Interval of the WebSocket ping frames the server sends, in seconds
    /// (0: none), so that a proxy's idle timeout does not cut a quiet
    /// subscription.
    pub ws_keepalive_secs: u64,
    /// Proxies whose `X-Forwarded-For`, `X-Forwarded-Host` and
    /// `X-Forwarded-Proto` are believed: addresses or CIDR ranges, e.g.
    /// `["10.0.0.0/8"]`. Empty: those headers are ignored.
    pub trusted_proxies: Vec<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_listen: "127.0.0.1:9090".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            database_max_connections: 16,
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            jobs: JobsConfig::default(),
            limits: LimitsConfig::default(),
            log_format: LogFormat::Text,
            workers: true,
            plugins: PluginsConfig::default(),
            llm: LlmConfig::default(),
            review: ReviewConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Fs,
            fs_root: String::new(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_root: "/".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            jwt_kid: "k1".into(),
            jwt_previous_keys: Vec::new(),
            jwt_issuer: "evistream".into(),
            jwt_audience: "evistream".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            encryption_key: String::new(),
            login_free_failures: 5,
            login_backoff_base_ms: 1_000,
            login_backoff_max_secs: 900,
            max_concurrent_hashes: 0,
            max_waiting_hashes: 64,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease_ms: 30_000,
            poll_interval_ms: 1_000,
            retry_base_ms: 2_000,
            retry_max_ms: 300_000,
            max_attempts: 5,
            shutdown_grace_ms: 10_000,
            retention_days: 30,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_upload_bytes: 100 << 20,
            max_depth: 12,
            max_complexity: 10_000,
            max_nesting: 64,
            max_fragments: 256,
            max_selections: 5_000,
            max_aliases: 256,
            max_response_bytes: 32 << 20,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 30,
            ws_init_timeout_secs: 10,
            ws_max_operations: 32,
            ws_recheck_secs: 5,
            ws_keepalive_secs: 20,
            max_derived_storage_mb: 2048,
            export_ttl_hours: 24,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How a secret setting shows in logs: whether it is set, never its value.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "[redacted]" }
}

/// A database URL with its password replaced.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:[redacted]{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("ops_listen", &self.ops_listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("storage", &self.storage)
            .field("auth", &self.auth)
            .field("jobs", &self.jobs)
            .field("limits", &self.limits)
            .field("log_format", &self.log_format)
            .field("workers", &self.workers)
            .field("plugins", &self.plugins)
            .field("llm", &self.llm)
            .field("review", &self.review)
            .finish()
    }
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("backend", &self.backend)
            .field("fs_root", &self.fs_root)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &redacted(&self.s3_secret_access_key),
            )
            .field("s3_root", &self.s3_root)
            .finish()
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("jwt_kid", &self.jwt_kid)
            .field("jwt_previous_keys", &self.jwt_previous_keys)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("encryption_key", &redacted(&self.encryption_key))
            .field("login_free_failures", &self.login_free_failures)
            .field("login_backoff_base_ms", &self.login_backoff_base_ms)
            .field("login_backoff_max_secs", &self.login_backoff_max_secs)
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("max_waiting_hashes", &self.max_waiting_hashes)
            .finish()
    }
}

impl std::fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousKey")
            .field("kid", &self.kid)
            .field("secret", &redacted(&self.secret))
            .finish()
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source had a bad value or an unknown key.
    #[error("invalid configuration: {0}")]
    Invalid(Box<figment::Error>),
    /// The given config file does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "ops_listen",
    "data_dir",
    "database_url",
    "database_max_connections",
    "storage",
    "auth",
    "jobs",
    "limits",
    "log_format",
    "workers",
    "plugins",
    "llm",
    "review",
];

impl Config {
    /// Loads defaults ← TOML file ← `EVISTREAM_*` env (nested keys with `__`,
    /// e.g. `EVISTREAM_STORAGE__BACKEND=s3`) ← `overrides` (from flags).
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::MissingFile(f.to_path_buf()));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig
            .merge(
                // Only keys of this struct: other EVISTREAM_* variables (the
                // test harness's, say) must not trip `deny_unknown_fields`.
                Env::prefixed("EVISTREAM_").split("__").filter(|k| {
                    let top = k.as_str().split('.').next().unwrap_or_default();
                    TOP_LEVEL_KEYS.contains(&top.to_ascii_lowercase().as_str())
                }),
            )
            // The documented single-underscore spelling of the private-network switch.
            .merge(
                Env::raw()
                    .only(&["EVISTREAM_PLUGINS_ALLOW_PRIVATE_NETWORKS"])
                    .map(|_| "plugins.allow_private_networks".into()),
            )
            .merge(overrides);
        fig.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))
    }

    /// The database URL actually used (the SQLite default under the data dir).
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("evistream.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// A configuration for tests and tools: everything under `dir`.
    pub fn for_data_dir(dir: &Path) -> Self {
        Self {
            data_dir: dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: "127.0.0.1:0".into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut c = Config {
            database_url: "postgres://app:hunter2-db@db:5432/evs".into(),
            ..Config::default()
        };
        c.storage.s3_secret_access_key = "hunter2-s3".into();
        c.auth.jwt_secret = "hunter2-jwt".into();
        c.auth.encryption_key = "hunter2-enc".into();
        c.auth.jwt_previous_keys = vec![PreviousKey {
            kid: "k0".into(),
            secret: "hunter2-old".into(),
        }];
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://app:[redacted]@db:5432/evs"),
            "{shown}"
        );
        assert!(shown.contains("k0"), "{shown}");
    }
}
