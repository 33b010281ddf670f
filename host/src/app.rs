//! The application: configuration plus the handles every service uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db;
use crate::events::EventBus;
use crate::jobs::QueueTimings;
use crate::storage::BlobStore;

/// Shared state behind every request and job.
pub struct App {
    /// Effective configuration.
    pub config: Config,
    /// Database pool.
    pub db: DatabaseConnection,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// Key for secrets at rest (32 bytes).
    pub encryption_key: [u8; 32],
    /// Key of signed page-image URLs, derived from the token signing key
    /// (so every node of a deployment accepts every node's URLs).
    pub url_key: [u8; 32],
    /// Event bus.
    pub bus: EventBus,
    /// Blob store.
    pub blobs: BlobStore,
    /// WebAssembly plugins.
    pub plugins: crate::plugins::host::PluginHost,
    /// The LLM gateway's per-project limits.
    pub llm: crate::llm::gateway::Gateway,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Login backoff and the bound on concurrent password hashing.
    pub logins: crate::auth::throttle::LoginGuard,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// This node: its id (job leases name it), leadership, worker liveness.
    pub node: Arc<crate::jobs::maintenance::Node>,
    /// Open WebSocket sessions: shutdown waits (briefly) for them to send
    /// their close frame.
    pub sockets: tokio_util::task::TaskTracker,
    /// Blocking threads for requests' CPU-heavy work, a few per organization.
    pub cpu: crate::cpu::CpuPool,
}

impl App {
    /// Queue timings from configuration.
    pub fn queue_timings(&self) -> QueueTimings {
        let j = &self.config.jobs;
        QueueTimings {
            lease: Duration::from_millis(j.lease_ms.max(300)),
            retry_base: Duration::from_millis(j.retry_base_ms),
            retry_max: Duration::from_millis(j.retry_max_ms.max(j.retry_base_ms)),
        }
    }
}

/// Generated-once secrets of the embedded default.
#[derive(Serialize, Deserialize)]
struct GeneratedKeys {
    jwt_secret: String,
    encryption_key: String,
}

/// Opens everything: data dir, keys, database (migrated), blobs, bus.
pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Arc<App>> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("data dir {}: {e}", config.data_dir.display()))?;
    let (jwt_secret, encryption_key) = load_keys(&config)?;
    let url = config.effective_database_url();
    let db = db::connect(&url, config.database_max_connections).await?;
    db::migrate(&db).await?;
    let blobs = BlobStore::open(&config)?;
    // Uploads a crash cut short; in the background, start-up need not wait.
    {
        let blobs = blobs.clone();
        tokio::spawn(async move {
            match blobs.sweep_staging().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "deleted staged blobs left by a crash"),
                Err(e) => tracing::warn!(error = %e, "sweeping staged blobs failed"),
            }
        });
    }
    let bus = if db::is_postgres(&db) {
        EventBus::postgres(db.clone(), shutdown.clone()).await?
    } else {
        EventBus::in_process()
    };
    let a = &config.auth;
    let mut tokens = TokenKeys::new(
        &jwt_secret,
        &a.jwt_kid,
        &a.jwt_issuer,
        &a.jwt_audience,
        a.access_token_ttl_secs,
    );
    for prev in &a.jwt_previous_keys {
        let secret = decode_key(
            &format!("auth.jwt_previous_keys[{}]", prev.kid),
            &prev.secret,
            32,
        )?;
        tokens = tokens.accept_previous(&prev.kid, &secret);
    }
    let plugins = crate::plugins::host::PluginHost::from_config(&config)?;
    let trusted_proxies = config
        .limits
        .trusted_proxies
        .iter()
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("limits.trusted_proxies: `{p}` is not an address or CIDR range")
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let url_key = crate::documents::pages::derive_key(&jwt_secret);
    Ok(Arc::new(App {
        url_key,
        logins: crate::auth::throttle::LoginGuard::new(&config.auth),
        trusted_proxies,
        node: Arc::new(crate::jobs::maintenance::Node::new()),
        sockets: tokio_util::task::TaskTracker::new(),
        plugins,
        llm: crate::llm::gateway::Gateway::default(),
        cpu: crate::cpu::CpuPool::default(),
        config,
        db,
        tokens,
        encryption_key,
        bus,
        blobs,
        shutdown,
    }))
}

fn decode_key(name: &str, b64: &str, min: usize) -> anyhow::Result<Vec<u8>> {
    let k = STANDARD
        .decode(b64.trim())
        .map_err(|_| anyhow::anyhow!("{name} is not valid base64"))?;
    if k.len() < min {
        anyhow::bail!("{name} must be at least {min} bytes");
    }
    Ok(k)
}

/// Keys from configuration; missing ones are generated once into
/// `<data_dir>/keys.json` (mode 0600) and reused on later starts.
fn load_keys(config: &Config) -> anyhow::Result<(Vec<u8>, [u8; 32])> {
    let a = &config.auth;
    let need_file = a.jwt_secret.is_empty() || a.encryption_key.is_empty();
    let generated = if need_file {
        Some(generated_keys(&config.data_dir.join("keys.json"))?)
    } else {
        None
    };
    let jwt_b64 = if a.jwt_secret.is_empty() {
        generated
            .as_ref()
            .map(|g| g.jwt_secret.clone())
            .unwrap_or_default()
    } else {
        a.jwt_secret.clone()
    };
    let enc_b64 = if a.encryption_key.is_empty() {
        generated
            .as_ref()
            .map(|g| g.encryption_key.clone())
            .unwrap_or_default()
    } else {
        a.encryption_key.clone()
    };
    let jwt = decode_key("auth.jwt_secret", &jwt_b64, 32)?;
    let enc = decode_key("auth.encryption_key", &enc_b64, 32)?;
    let enc: [u8; 32] = enc
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("auth.encryption_key must be 32 bytes"))?;
    Ok((jwt, enc))
}

fn generated_keys(path: &Path) -> anyhow::Result<GeneratedKeys> {
    if path.exists() {
        let raw = std::fs::read_to_string(path)?;
        return serde_json::from_str(&raw)
            .map_err(|e| anyhow::anyhow!("{} is unreadable: {e}", path.display()));
    }
    let random = || {
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        STANDARD.encode(b)
    };
    let keys = GeneratedKeys {
        jwt_secret: random(),
        encryption_key: random(),
    };
    let body = serde_json::to_string_pretty(&keys)?;
    write_private(path, body.as_bytes())?;
    tracing::warn!(
        path = %path.display(),
        "generated a JWT signing key and a secrets encryption key into the data dir; \
         set auth.jwt_secret and auth.encryption_key explicitly in production"
    );
    Ok(keys)
}

#[cfg(unix)]
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)
}

#[cfg(not(unix))]
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, body)
}
