//! The `evistream` binary as an operator runs it: each test starts the real
//! executable in a temp dir and talks to it over loopback HTTP.
//!
//! What this proves:
//! - zero configuration: `serve` in an empty folder creates `./data/evistream.db`
//!   and `./data/keys.json` (mode 0600), says it generated keys, is ready
//!   (`/readyz`), and a second start reuses the keys, so tokens issued by the
//!   first run stay valid;
//! - SIGTERM stops `serve` and `worker` gracefully with exit status 0;
//! - `migrate` creates every table on SQLite and on PostgreSQL, idempotently;
//! - `schema` prints exactly the checked-in `graphql/schema.graphql`;
//! - configuration: a TOML file (`--config` or `EVISTREAM_CONFIG`) is read,
//!   unknown keys and missing files fail with a message naming them, and the
//!   precedence is file < `EVISTREAM_*` env < flags;
//! - `--log-format json` turns every log line into a JSON object;
//! - `serve --no-workers` serves without workers, `worker` serves no HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const BIN: &str = env!("CARGO_BIN_EXE_evistream");
/// How long a node may take to start (debug build, migrations).
const START: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may take.
const STOP: Duration = Duration::from_secs(5);
/// The line `serve` prints on stdout once it accepts connections.
const BANNER: &str = "evistream listening on http://";

/// The binary, run in `cwd`, with none of the caller's eviStream or logging
/// settings leaking in.
fn evistream(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("EVISTREAM_") {
            c.env_remove(k);
        }
    }
    for k in ["RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        c.env_remove(k);
    }
    c
}

/// Runs a command that is expected to exit by itself.
async fn run_to_end(mut cmd: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("command finished within 60 s")
        .expect("command ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `evistream` process and everything it has printed so far.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            into.lock().unwrap().push(l);
        }
    })
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("evistream starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// stdout and stderr, for messages and for searching logs.
    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    /// Waits for a line (stdout or stderr) satisfying `pred`.
    async fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + START;
        loop {
            let found = {
                let out = self.stdout.lock().unwrap();
                let err = self.stderr.lock().unwrap();
                out.iter().chain(err.iter()).find(|l| pred(l)).cloned()
            };
            if let Some(l) = found {
                return l;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the readers drain before reporting.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "evistream exited ({status}) before {what}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {START:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address from the stdout banner line.
    async fn addr(&mut self) -> SocketAddr {
        let line = self
            .wait_line("listening banner", |l| l.starts_with(BANNER))
            .await;
        let rest = &line[BANNER.len()..];
        let addr = rest
            .strip_suffix("/graphql")
            .unwrap_or_else(|| panic!("banner does not end in /graphql: {line:?}"));
        addr.parse()
            .unwrap_or_else(|e| panic!("banner address {addr:?}: {e}"))
    }

    /// Sends SIGTERM and waits for the exit; returns the status.
    async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        let status = match tokio::time::timeout(STOP, self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => panic!("no exit within {STOP:?} of SIGTERM:\n{}", self.output()),
        };
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
        eprintln!("exited {status} {:?} after SIGTERM", started.elapsed());
        status
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn gql(addr: SocketAddr, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = client()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST /graphql");
    assert_eq!(resp.status(), 200, "POST /graphql status");
    resp.json().await.expect("JSON body")
}

/// Registers a user; returns (access token, user id).
async fn register(addr: SocketAddr) -> (String, String) {
    let email = format!("cli-{}@example.org", uuid::Uuid::new_v4().simple());
    let r = gql(
        addr,
        None,
        "mutation($email: String!, $password: String!) { \
           register(input: { email: $email, password: $password, name: \"Cli\" }) { accessToken user { id } } }",
        json!({ "email": email, "password": "correct horse battery" }),
    )
    .await;
    let token = r["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("register failed: {r}"))
        .to_owned();
    let id = r["data"]["register"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, id)
}

async fn me_id(addr: SocketAddr, token: &str) -> Value {
    let r = gql(addr, Some(token), "{ me { id } }", json!({})).await;
    r["data"]["me"]["id"].clone()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

/// `N` distinct ports nothing listens on right now.
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("local addr").port())
}

fn generated_keys_logged(output: &str) -> bool {
    output.contains("generated a JWT signing key")
}

#[tokio::test]
async fn zero_configuration_creates_the_data_dir_and_reuses_its_keys() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    assert!(!data.exists());

    let mut first = Proc::spawn({
        let mut c = evistream(cwd.path());
        c.args(["serve", "--listen", "127.0.0.1:0"]);
        c
    });
    let addr = first.addr().await;
    assert_ne!(addr.port(), 0, "the banner reports the bound port");
    assert!(addr.ip().is_loopback());

    assert!(
        data.join("evistream.db").is_file(),
        "./data/evistream.db created"
    );
    let keys_path = data.join("keys.json");
    let meta = std::fs::metadata(&keys_path).expect("./data/keys.json created");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "keys.json is private"
    );
    let keys = std::fs::read(&keys_path).unwrap();
    let parsed: Value = serde_json::from_slice(&keys).expect("keys.json is JSON");
    assert!(parsed["jwt_secret"].as_str().is_some_and(|s| s.len() >= 43));
    assert!(
        parsed["encryption_key"]
            .as_str()
            .is_some_and(|s| s.len() >= 43)
    );
    assert!(
        generated_keys_logged(&first.output()),
        "first start says it generated keys:\n{}",
        first.output()
    );

    let (status, ready) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["components"]["database"]["status"], "ok", "{ready}");
    assert_eq!(ready["components"]["blobs"]["status"], "ok", "{ready}");

    let (token, user_id) = register(addr).await;
    assert_eq!(me_id(addr, &token).await, json!(user_id));
    let status = first.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", first.output());

    // Second start in the same folder: same keys, no new ones, same data.
    let mut second = Proc::spawn({
        let mut c = evistream(cwd.path());
        c.args(["serve", "--listen", "127.0.0.1:0"]);
        c
    });
    let addr2 = second.addr().await;
    assert_eq!(
        std::fs::read(&keys_path).unwrap(),
        keys,
        "keys.json unchanged"
    );
    assert!(
        !generated_keys_logged(&second.output()),
        "second start must not generate keys:\n{}",
        second.output()
    );
    assert_eq!(
        me_id(addr2, &token).await,
        json!(user_id),
        "a token of the first run works on the second"
    );
    assert_eq!(second.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn sigterm_shuts_serve_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("d"));
        c
    });
    let addr = p.addr().await;
    assert_eq!(get(addr, "/livez").await, (200, json!({ "status": "ok" })));
    let status = p.terminate().await;
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        p.output()
    );
    assert_eq!(status.code(), Some(0));
    assert!(
        p.output().contains("shutting down"),
        "logs the shutdown:\n{}",
        p.output()
    );
    // The port is released.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

const TABLES: &[&str] = &[
    "users",
    "organizations",
    "memberships",
    "api_keys",
    "refresh_tokens",
    "projects",
    "documents",
    "forms",
    "jobs",
    "audit_log",
    "document_texts",
];

async fn assert_migrated(db: &DatabaseConnection, tables_sql: &str) {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .expect("list tables");
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    for t in TABLES {
        assert!(
            names.iter().any(|n| n == t),
            "table {t} missing; have {names:?}"
        );
    }
    let applied = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .expect("seaql_migrations readable")
        .expect("a row");
    let n: i64 = applied.try_get("", "n").unwrap();
    let expected = evistream_migrations::Migrator::migrations().len();
    assert!(expected > 0);
    assert_eq!(n, expected as i64, "every migration recorded as applied");
}

#[tokio::test]
async fn migrate_creates_the_tables_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    for round in 0..2 {
        let out = run_to_end({
            let mut c = evistream(dir.path());
            c.args(["migrate", "--database-url", &url]);
            c
        })
        .await;
        assert!(
            out.status.success(),
            "migrate round {round}: {}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("migrations applied"));
    }
    assert!(file.is_file(), "the SQLite file was created");
    let db = Database::connect(&url).await.unwrap();
    assert_migrated(&db, "SELECT name FROM sqlite_master WHERE type = 'table'").await;
    db.close().await.unwrap();
}

fn postgres_admin_url() -> String {
    std::env::var("EVISTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test]
async fn migrate_creates_the_tables_on_postgres() {
    let admin_url = postgres_admin_url();
    let run = std::env::var("EVISTREAM_TEST_RUN").unwrap_or_else(|_| "local".into());
    let name = format!(
        "evs_t_{}_cli_{}",
        run.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>(),
        uuid::Uuid::new_v4().simple()
    )
    .to_lowercase();
    let admin = Database::connect(&admin_url)
        .await
        .expect("PostgreSQL for tests");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap();
    let url = format!("{base}/{name}");

    let dir = tempfile::tempdir().unwrap();
    let outcome = async {
        for round in 0..2 {
            let out = run_to_end({
                let mut c = evistream(dir.path());
                c.args(["migrate", "--database-url", &url]);
                c
            })
            .await;
            assert!(
                out.status.success(),
                "migrate round {round}: {}\n{}{}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        let db = Database::connect(&url).await.unwrap();
        assert_migrated(
            &db,
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public'",
        )
        .await;
        db.close().await.unwrap();
    };
    // Drop the database whether or not the checks pass.
    let res = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(p) = res {
        std::panic::resume_unwind(p);
    }
}

#[tokio::test]
async fn schema_prints_the_checked_in_sdl() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_to_end({
        let mut c = evistream(dir.path());
        c.arg("schema");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let checked_in = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../graphql/schema.graphql");
    let expected = std::fs::read_to_string(&checked_in).expect("graphql/schema.graphql");
    let printed = text(&out.stdout);
    assert!(
        printed.contains("type Query"),
        "looks like SDL: {printed:.200}"
    );
    assert!(
        printed == expected,
        "`evistream schema` differs from graphql/schema.graphql"
    );
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[tokio::test]
async fn config_file_is_read_and_overridden_by_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let [p_file, p_env, p_flag] = free_ports();
    let cfg = write(
        dir.path(),
        "evistream.toml",
        &format!(
            "listen = \"127.0.0.1:{p_file}\"\ndata_dir = \"{}\"\n\n[jobs]\nconcurrency = 2\n",
            data.display()
        ),
    );

    // The file's [jobs] table reaches the configuration, over the defaults.
    let loaded = evistream::config::Config::load(Some(&cfg), figment::Figment::new()).unwrap();
    assert_eq!(loaded.jobs.concurrency, 2);
    assert_eq!(
        loaded.jobs.lease_ms, 30_000,
        "unset keys keep their defaults"
    );

    // --config: the file's listen address is used.
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.arg("serve").arg("--config").arg(&cfg);
        c
    });
    assert_eq!(p.addr().await, SocketAddr::from(([127, 0, 0, 1], p_file)));
    assert_eq!(get(p.addr().await, "/livez").await.0, 200);
    assert!(
        data.join("evistream.db").is_file(),
        "data_dir from the file"
    );
    assert_eq!(p.terminate().await.code(), Some(0));

    // EVISTREAM_CONFIG names the file just as well; EVISTREAM_LISTEN beats it.
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.arg("serve")
            .env("EVISTREAM_CONFIG", &cfg)
            .env("EVISTREAM_LISTEN", format!("127.0.0.1:{p_env}"));
        c
    });
    assert_eq!(p.addr().await, SocketAddr::from(([127, 0, 0, 1], p_env)));
    assert_eq!(p.terminate().await.code(), Some(0));

    // A flag beats both.
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.args(["serve", "--listen", &format!("127.0.0.1:{p_flag}")])
            .env("EVISTREAM_CONFIG", &cfg)
            .env("EVISTREAM_LISTEN", format!("127.0.0.1:{p_env}"));
        c
    });
    assert_eq!(p.addr().await, SocketAddr::from(([127, 0, 0, 1], p_flag)));
    assert_eq!(p.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn env_listen_is_honoured_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let [port] = free_ports();
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.arg("serve")
            .env("EVISTREAM_LISTEN", format!("127.0.0.1:{port}"));
        c
    });
    let addr = p.addr().await;
    assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(get(addr, "/livez").await.0, 200);
    assert_eq!(p.terminate().await.code(), Some(0));
}

/// Runs `serve --config <file>` that must fail; returns stderr.
async fn serve_fails_with(dir: &Path, cfg: &Path) -> String {
    let out = run_to_end({
        let mut c = evistream(dir);
        c.arg("serve")
            .arg("--config")
            .arg(cfg)
            .args(["--listen", "127.0.0.1:0"]);
        c
    })
    .await;
    assert!(!out.status.success(), "must fail: {}", text(&out.stdout));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains(BANNER),
        "must not start listening: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

#[tokio::test]
async fn unknown_config_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let top = write(
        dir.path(),
        "top.toml",
        "listen = \"127.0.0.1:0\"\nbogus_key = 1\n",
    );
    let err = serve_fails_with(dir.path(), &top).await;
    assert!(err.contains("bogus_key"), "names the key: {err}");
    assert!(err.contains("unknown field"), "says why: {err}");

    let nested = write(dir.path(), "nested.toml", "[jobs]\nconcurrrency = 2\n");
    let err = serve_fails_with(dir.path(), &nested).await;
    assert!(err.contains("concurrrency"), "names the nested key: {err}");

    let bad = write(dir.path(), "bad.toml", "[jobs]\nconcurrency = \"two\"\n");
    let err = serve_fails_with(dir.path(), &bad).await;
    assert!(
        err.contains("jobs.concurrency"),
        "names the key with a bad value: {err}"
    );

    assert!(
        !dir.path().join("data").exists(),
        "nothing created on a bad config"
    );
}

#[tokio::test]
async fn a_missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/evistream.toml");
    let err = serve_fails_with(dir.path(), &missing).await;
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "names the file and the problem: {err}"
    );
}

#[tokio::test]
async fn json_log_format_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]);
        c
    });
    let addr = p.addr().await;
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(p.terminate().await.code(), Some(0));

    let banner = format!("{BANNER}{addr}/graphql");
    let lines: Vec<String> = {
        let out = p.stdout.lock().unwrap();
        let err = p.stderr.lock().unwrap();
        out.iter()
            .chain(err.iter())
            .filter(|l| !l.trim().is_empty() && **l != banner)
            .cloned()
            .collect()
    };
    let logs: Vec<Value> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}"));
            assert!(v.is_object(), "log line is not an object: {l}");
            assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
            v
        })
        .collect();
    let find = |needle: &str| {
        logs.iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .unwrap_or_else(|| panic!("no {needle:?} log line in {lines:#?}"))
    };
    assert_eq!(find("generated a JWT signing key")["level"], "WARN");
    let listening = find("evistream listening on");
    assert_eq!(listening["addr"], addr.to_string());
    assert_eq!(listening["workers"], true);
    assert_eq!(listening["database"], "sqlite");
    find("shutting down");
}

#[tokio::test]
async fn serve_no_workers_serves_the_api_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.args([
            "serve",
            "--no-workers",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]);
        c
    });
    let addr = p.addr().await;
    let (status, ready) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let line = p
        .wait_line("listening log", |l| {
            l.starts_with('{') && l.contains("evistream listening")
        })
        .await;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["workers"], false, "{line}");
    assert_eq!(p.terminate().await.code(), Some(0));
}

/// A worker node has no API; it serves its operations endpoints on
/// `ops_listen`, which `evistream health --worker` checks (the container
/// health check), and stops on SIGTERM.
#[tokio::test]
async fn worker_serves_only_its_operations_endpoints_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let [port, ops] = free_ports();
    let ops_at = format!("127.0.0.1:{ops}");
    let mut p = Proc::spawn({
        let mut c = evistream(dir.path());
        c.args([
            "worker",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("EVISTREAM_OPS_LISTEN", &ops_at);
        c
    });
    p.wait_line("worker log", |l| l.contains("evistream worker running"))
        .await;
    p.wait_line("ops banner", |l| {
        l == format!("evistream worker ops on http://{ops_at}/livez")
    })
    .await;
    assert!(
        dir.path().join("data/evistream.db").is_file(),
        "worker opened the database"
    );
    assert!(
        !p.stdout_lines().iter().any(|l| l.contains("listening on")),
        "worker prints no API address: {}",
        p.output()
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "worker must not listen on the API's {port}"
    );
    let ops_addr: SocketAddr = ops_at.parse().unwrap();
    assert_eq!(
        get(ops_addr, "/livez").await,
        (200, json!({ "status": "ok" }))
    );
    assert_eq!(get(ops_addr, "/readyz").await.0, 200);
    let health = |args: &[&str]| {
        let mut c = evistream(dir.path());
        c.arg("health")
            .args(args)
            .env("EVISTREAM_OPS_LISTEN", &ops_at);
        run_to_end(c)
    };
    let ok = health(&["--worker"]).await;
    assert!(
        ok.status.success(),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    // The API port of the same settings has nothing: unhealthy.
    let api = health(&["--timeout", "2"]).await;
    assert_eq!(api.status.code(), Some(1), "{}", text(&api.stderr));
    // A path that is not 200 is unhealthy too, and says what it got.
    let wrong = health(&["--url", &format!("http://{ops_at}/nope")]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("answered 404"),
        "{}",
        text(&wrong.stderr)
    );
    let status = p.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", p.output());
    let gone = health(&["--worker"]).await;
    assert_eq!(gone.status.code(), Some(1), "after SIGTERM");
    assert!(
        text(&gone.stderr).contains("unreachable"),
        "{}",
        text(&gone.stderr)
    );
}

/// `evistream convert` runs the built-in converter plugin without a server:
/// text and page ranges of a real paper into --out, and a clear failure
/// (non-zero exit, the file named) for bytes that are not a PDF.
#[tokio::test]
async fn convert_turns_pdfs_into_text_locally() {
    let dir = tempfile::tempdir().unwrap();
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/rct/pdf/PMC4183415.pdf");
    let pdf = dir.path().join("paper.pdf");
    std::fs::copy(&corpus, &pdf).unwrap_or_else(|e| panic!("{}: {e}", corpus.display()));
    let out_dir = dir.path().join("out");
    let mut cmd = evistream(dir.path());
    cmd.arg("convert").arg(&pdf).arg("--out").arg(&out_dir);
    let out = run_to_end(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = std::fs::read_to_string(out_dir.join("paper.md")).unwrap();
    let meta: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("paper.json")).unwrap()).unwrap();
    let chars = md.chars().count() as i64;
    assert!(chars > 10_000, "{chars} characters");
    assert_eq!(meta["converter"]["id"], "pdf-text");
    let pages = meta["pages"].as_array().unwrap();
    assert_eq!(pages.len() as i64, meta["pageCount"].as_i64().unwrap());
    assert!(!pages.is_empty());
    assert_eq!(pages.last().unwrap()["end"].as_i64().unwrap(), chars);
    assert!(
        text(&out.stderr).contains("paper.pdf:"),
        "{}",
        text(&out.stderr)
    );

    // Not a PDF: the run fails and says which file and why.
    let bad = dir.path().join("notes.pdf");
    std::fs::write(&bad, b"plain text").unwrap();
    let mut cmd = evistream(dir.path());
    cmd.arg("convert").arg(&bad);
    let out = run_to_end(cmd).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("notes.pdf") && err.contains("malformed"),
        "{err}"
    );
}

fn extract_form(dir: &Path) -> PathBuf {
    write(
        dir,
        "form.json",
        r#"{ "name": "RCT", "fields": [
            { "name": "sample_size", "type": "INTEGER", "description": "Total number of participants randomised" },
            { "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"] },
            { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] }
        ] }"#,
    )
}

/// `evistream extract` offline: the program's hash, the built-in extractor,
/// values with grounded evidence whose spans are code points of the text;
/// a bad form is refused naming the field.
#[tokio::test]
async fn extract_runs_the_pipeline_locally() {
    let dir = tempfile::tempdir().unwrap();
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/rct/pdf/PMC4183415.pdf");
    let pdf = dir.path().join("paper.pdf");
    std::fs::copy(&corpus, &pdf).unwrap_or_else(|e| panic!("{}: {e}", corpus.display()));
    let form = extract_form(dir.path());
    let mut cmd = evistream(dir.path());
    cmd.arg("extract").arg("--form").arg(&form).arg(&pdf);
    let out = run_to_end(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["programHash"].as_str().unwrap().len(), 64);
    assert!(
        v["extractor"]
            .as_str()
            .unwrap()
            .starts_with("lexical-extractor@")
    );
    let doc = &v["documents"][0];
    let paths: Vec<&str> = doc["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["sample_size", "design", "arms"]);
    assert!(
        doc["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["grounding"] == "EXACT" && x["evidence"][0]["start"].is_u64()),
        "{doc}"
    );

    let bad = write(
        dir.path(),
        "bad.json",
        r#"[{ "name": "e", "type": "ENUM" }]"#,
    );
    let mut cmd = evistream(dir.path());
    cmd.arg("extract").arg("--form").arg(&bad).arg(&pdf);
    let out = run_to_end(cmd).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("an ENUM needs options"),
        "{}",
        text(&out.stderr)
    );
}

/// A minimal OpenAI-protocol server: `sample_size` found (quoting a line of
/// the passages it was sent), everything else not reported, lists empty.
async fn fake_openai(seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> u16 {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                seen.lock().unwrap().push(auth);
                let user = body["messages"][1]["content"].as_str().unwrap_or("");
                let line = user
                    .lines()
                    .skip_while(|l| !l.starts_with("Passages"))
                    .skip(1)
                    .find(|l| l.trim().len() > 30)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let props = &body["response_format"]["json_schema"]["schema"]["properties"];
                let mut answer = serde_json::Map::new();
                for (name, _) in props.as_object().into_iter().flatten() {
                    let a = match name.as_str() {
                        "items" => serde_json::json!([]),
                        "sample_size" => serde_json::json!({ "value": 42, "status": "FOUND", "quote": line, "confidence": 0.9 }),
                        _ => serde_json::json!({ "value": null, "status": "NOT_REPORTED", "quote": "", "confidence": 0.5 }),
                    };
                    answer.insert(name.clone(), a);
                }
                axum::Json(serde_json::json!({
                    "model": "cli-fake",
                    "choices": [{ "message": { "content": Value::Object(answer).to_string() }, "finish_reason": "stop" }],
                    "usage": { "prompt_tokens": 100, "completion_tokens": 10 },
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// `evistream extract --llm-adapter`: the LLM extractor through the
/// built-in adapter, the key read from the environment and injected by the
/// host, loopback allowed only because the operator said so.
#[tokio::test]
async fn extract_with_an_llm_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/rct/pdf/PMC3321528.pdf");
    let pdf = dir.path().join("paper.pdf");
    std::fs::copy(&corpus, &pdf).unwrap();
    let form = extract_form(dir.path());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = fake_openai(seen.clone()).await;
    let llm_config = format!(r#"{{"baseUrl": "http://127.0.0.1:{port}/v1", "model": "m"}}"#);
    let run = |private: bool| {
        let mut cmd = evistream(dir.path());
        cmd.arg("extract")
            .arg("--form")
            .arg(&form)
            .args([
                "--llm-adapter",
                "openai-compatible",
                "--llm-config",
                &llm_config,
            ])
            .args(["--llm-secret", "apiKey=CLI_TEST_KEY"])
            .arg(&pdf)
            .env("CLI_TEST_KEY", "sk-cli");
        if private {
            cmd.env("EVISTREAM_PLUGINS_ALLOW_PRIVATE_NETWORKS", "true");
        }
        run_to_end(cmd)
    };
    // Without the operator's switch the loopback provider is refused.
    let out = run(false).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("non-public"),
        "{}",
        text(&out.stderr)
    );
    assert!(seen.lock().unwrap().is_empty());

    let out = run(true).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["extractor"]
            .as_str()
            .unwrap()
            .starts_with("llm-extractor@")
    );
    let doc = &v["documents"][0];
    assert_eq!(doc["models"], serde_json::json!(["cli-fake"]));
    let sample = &doc["values"][0];
    assert_eq!(
        (sample["path"].as_str(), sample["value"].as_i64()),
        (Some("sample_size"), Some(42))
    );
    assert_eq!(sample["grounding"], "EXACT", "{sample}");
    assert!(seen.lock().unwrap().iter().all(|a| a == "Bearer sk-cli"));
}

/// A newcomer's first build on a toolchain without the wasm32-wasip2 target:
/// the build script (compiled and run here on its own, as cargo would) stops
/// with the command to run instead of a panic.
#[test]
fn the_build_script_says_how_to_add_a_missing_wasm_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = dir.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiled = std::process::Command::new(&rustc)
        .args([
            "--edition",
            "2024",
            "--cfg",
            "evistream_bare_build_script",
            "-o",
        ])
        .arg(&script)
        .arg(host.join("build.rs"))
        .output()
        .expect("rustc runs");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    // A compiler whose sysroot has no wasm32-wasip2 standard library.
    let sysroot = dir.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu")).unwrap();
    let fake = script_file(
        dir.path(),
        "fake-rustc",
        &format!("echo {}", sysroot.display()),
    );
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // A rustup that cannot add the target (offline, or not rustup's toolchain).
    let failing_rustup = script_file(dir.path(), "rustup-fails", "echo offline >&2; exit 1");
    let run = |rustup: &Path| {
        std::process::Command::new(&script)
            .env("CARGO_MANIFEST_DIR", host)
            .env("OUT_DIR", &out_dir)
            .env("RUSTC", &fake)
            .env("RUSTUP", rustup)
            .env("RUSTUP_TOOLCHAIN", "1.95.0-test")
            .env_remove("EVISTREAM_NO_TARGET_INSTALL")
            // Reached only once the target is there.
            .env("CARGO", "/nonexistent/cargo")
            .output()
            .expect("build script runs")
    };
    let failed = run(&failing_rustup);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("rustup target add wasm32-wasip2") && !stderr.contains("panicked"),
        "{stderr}"
    );
    // A rustup that can: the script installs the target itself (for the
    // toolchain it runs with) and goes on to build the plugins.
    let args_file = dir.path().join("rustup-args");
    let installing_rustup = script_file(
        dir.path(),
        "rustup-installs",
        &format!(
            "echo \"$@\" > {}; mkdir -p {}",
            args_file.display(),
            sysroot.join("lib/rustlib/wasm32-wasip2").display()
        ),
    );
    let installed = run(&installing_rustup);
    let stderr = String::from_utf8_lossy(&installed.stderr);
    let args = std::fs::read_to_string(&args_file).expect("rustup was called");
    assert_eq!(
        args.trim(),
        "target add wasm32-wasip2 --toolchain 1.95.0-test"
    );
    assert!(
        stderr.contains("could not run cargo to build plugins/"),
        "past the target check: {stderr}"
    );
}

/// An executable shell script `name` in `dir` with `body`.
fn script_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}
