//! Real `evistream` processes for the scale-out tests and benchmarks: API
//! and worker nodes started from the built binary, with their output
//! captured, signalled as an operator (or a crash) would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Client;

/// What a node process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// `evistream serve --no-workers`.
    Api,
    /// `evistream worker` (operations endpoints on `ops_listen`).
    Worker,
}

/// Settings every process of one deployment shares, as environment.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// `EVISTREAM_*` variables (and others, such as `RUST_LOG`).
    pub env: BTreeMap<String, String>,
}

impl Deployment {
    /// A deployment on `database_url` with the blob store and keys of
    /// `config` (its storage section is copied; keys are fixed test keys).
    pub fn new(database_url: &str, storage: &evistream::config::StorageConfig) -> Self {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            env.insert(k.to_owned(), v.to_owned());
        };
        set("EVISTREAM_DATABASE_URL", database_url);
        set(
            "EVISTREAM_STORAGE__BACKEND",
            match storage.backend {
                evistream::config::StorageBackend::S3 => "s3",
                evistream::config::StorageBackend::Fs => "fs",
            },
        );
        set("EVISTREAM_STORAGE__FS_ROOT", &storage.fs_root);
        set("EVISTREAM_STORAGE__S3_ENDPOINT", &storage.s3_endpoint);
        set("EVISTREAM_STORAGE__S3_BUCKET", &storage.s3_bucket);
        set("EVISTREAM_STORAGE__S3_REGION", &storage.s3_region);
        set(
            "EVISTREAM_STORAGE__S3_ACCESS_KEY_ID",
            &storage.s3_access_key_id,
        );
        set(
            "EVISTREAM_STORAGE__S3_SECRET_ACCESS_KEY",
            &storage.s3_secret_access_key,
        );
        set("EVISTREAM_STORAGE__S3_ROOT", &storage.s3_root);
        // Fixed keys: every node must sign and read the same tokens and secrets.
        set(
            "EVISTREAM_AUTH__JWT_SECRET",
            "c2NhbGUtdGVzdC1qd3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY=",
        );
        set(
            "EVISTREAM_AUTH__ENCRYPTION_KEY",
            "c2NhbGUtdGVzdC1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
        );
        set("EVISTREAM_LOG_FORMAT", "text");
        set("RUST_LOG", "info");
        Self { env }
    }

    /// Sets one more variable.
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.env.insert(key.to_owned(), value.to_string());
        self
    }
}

/// One running node process.
pub struct NodeProcess {
    child: Child,
    /// Its role.
    pub role: NodeRole,
    /// Its OS process id.
    pub pid: u32,
    /// Where it serves HTTP: the API, or a worker's operations endpoints.
    pub addr: std::net::SocketAddr,
    /// Its node id (job leases name it), from its log.
    pub node_id: String,
    output: Arc<Mutex<String>>,
    _data_dir: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts `bin` as `role` with `deployment`'s environment and a data
    /// dir of its own; returns once it serves HTTP (its address is read
    /// from what it prints).
    pub async fn start(
        bin: &Path,
        role: NodeRole,
        deployment: &Deployment,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut cmd = Command::new(bin);
        match role {
            NodeRole::Api => cmd.args(["serve", "--no-workers", "--listen", "127.0.0.1:0"]),
            NodeRole::Worker => cmd.arg("worker"),
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(&deployment.env)
            .env("EVISTREAM_DATA_DIR", data_dir.path())
            .env("EVISTREAM_OPS_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("no pid")?;
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (out, tx) = (output.clone(), tx.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Ok(mut o) = out.lock() {
                        o.push_str(&l);
                        o.push('\n');
                    }
                    let _ = tx.send(l);
                }
            });
        }
        drop(tx);
        let marker = match role {
            NodeRole::Api => "evistream listening on http://",
            NodeRole::Worker => "evistream worker ops on http://",
        };
        let (mut addr, mut node_id) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while addr.is_none() || node_id.is_none() {
            let line = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten()
                .with_context(|| {
                    format!(
                        "{role:?} node did not come up; its output:\n{}",
                        output.lock().map(|o| o.clone()).unwrap_or_default()
                    )
                })?;
            if let Some(rest) = line.strip_prefix(marker) {
                let a = rest.split('/').next().unwrap_or_default();
                addr = Some(a.parse().with_context(|| format!("address in {line:?}"))?);
            }
            if let Some(i) = line.find("node=") {
                node_id = line[i + 5..].split_whitespace().next().map(str::to_owned);
            }
        }
        Ok(Self {
            child,
            role,
            pid,
            addr: addr.context("address")?,
            node_id: node_id.context("node id")?,
            output,
            _data_dir: data_dir,
        })
    }

    /// A client of its HTTP address.
    pub fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.addr)).expect("HTTP client")
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Peak resident memory of the process so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {}", self.pid);
    }

    /// Waits for the process to exit; its exit code.
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("still running")??;
        Ok(status.code())
    }
}

/// Runs `bin` with `args` and `deployment`'s environment to its end; its
/// exit code and output.
pub async fn run_once(
    bin: &Path,
    args: &[&str],
    deployment: &Deployment,
    data_dir: &Path,
) -> anyhow::Result<(Option<i32>, String)> {
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .envs(&deployment.env)
        .env("EVISTREAM_DATA_DIR", data_dir)
        .output()
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}

/// A folder the compiled-plugin caches of a deployment's processes share,
/// so each component is compiled once per test run, not once per process.
pub fn shared_plugin_cache() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(home).join(".cache/evistream/process-plugin-cache")
}
