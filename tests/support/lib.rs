//! Test support: real eviStream nodes on loopback (in-process, port 0) over
//! a fresh SQLite file or a fresh PostgreSQL database, and clients that speak
//! GraphQL over HTTP and graphql-transport-ws over WebSocket.

pub mod attacks;
pub mod browser;
pub mod fixtures;
pub mod llm;
pub mod ops;
pub mod process;
pub mod s3;
pub mod ws;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use evistream::config::Config;
use evistream::jobs::JobRegistry;
use evistream::server::{self, Roles, Running};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on the PostgreSQL server at `EVISTREAM_TEST_POSTGRES_URL`
    /// (default `postgres://postgres@127.0.0.1:5432/postgres`).
    Postgres,
}

impl DbKind {
    /// A benchmark's database: PostgreSQL when `postgres` is among the
    /// command's arguments, SQLite otherwise.
    pub fn from_args() -> Self {
        if std::env::args().any(|a| a == "postgres") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// Defines `mod $name { sqlite(); postgres(); }` running `$body(DbKind)` on both databases.
#[macro_export]
macro_rules! dual_db_test {
    ($name:ident, $body:expr) => {
        $crate::dual_db_test!(@with shared, $name, $body);
    };
    (exclusive $name:ident, $body:expr) => {
        $crate::dual_db_test!(@with exclusive, $name, $body);
    };
    (@with $guard:ident, $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let _process = $crate::$guard().await;
                ($body)($crate::DbKind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let _process = $crate::$guard().await;
                ($body)($crate::DbKind::Postgres).await
            }
        }
    };
}

/// The test process, shared by every test of the integration binary.
static PROCESS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held by a test that may run beside others.
pub async fn shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    PROCESS.read().await
}

/// Held by a test that measures process-wide state (resident memory,
/// instance-slot timing): no other test runs meanwhile.
pub async fn exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    PROCESS.write().await
}

/// The PostgreSQL server URL for tests.
pub fn postgres_admin_url() -> String {
    std::env::var("EVISTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database (and data dir) that lives as long as the test.
pub struct TestDb {
    /// The kind.
    pub kind: DbKind,
    /// URL to give the server.
    pub url: String,
    /// Data dir (blobs, keys, SQLite file).
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh, empty database of `kind`.
    pub async fn new(kind: DbKind) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        match kind {
            DbKind::Sqlite => Ok(Self {
                kind,
                url: format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
                dir,
                pg_name: None,
            }),
            DbKind::Postgres => {
                let admin = postgres_admin_url();
                let run = std::env::var("EVISTREAM_TEST_RUN").unwrap_or_else(|_| "local".into());
                let name = format!(
                    "evs_t_{}_{}",
                    run.chars()
                        .filter(|c| c.is_ascii_alphanumeric())
                        .collect::<String>(),
                    uuid::Uuid::new_v4().simple()
                )
                .to_lowercase();
                let conn = Database::connect(&admin)
                    .await
                    .with_context(|| format!("PostgreSQL for tests at {admin}"))?;
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                conn.close().await?;
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(admin.clone());
                Ok(Self {
                    kind,
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                })
            }
        }
    }

    /// Drops the PostgreSQL database (the temp dir goes with `self`).
    pub async fn drop_db(self) {
        if let Some(name) = &self.pg_name
            && let Ok(conn) = Database::connect(&postgres_admin_url()).await
        {
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            let _ = conn.close().await;
        }
    }

    /// A server configuration on this database, with short timings for tests.
    pub fn config(&self) -> Config {
        let mut c = Config::for_data_dir(self.dir.path());
        c.database_url = self.url.clone();
        c.database_max_connections = 8;
        c.jobs.poll_interval_ms = 100;
        c.jobs.lease_ms = 2_000;
        c.jobs.retry_base_ms = 50;
        c.jobs.retry_max_ms = 200;
        c.jobs.shutdown_grace_ms = 500;
        c
    }

    /// The data dir.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// A running node and a client for it (the client's methods are the
/// server's, through `Deref`).
pub struct TestServer {
    /// The node.
    pub node: Running,
    client: Client,
}

impl std::ops::Deref for TestServer {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A GraphQL client of one node's API, in-process or a real process.
pub struct Client {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a node with API and workers.
    pub async fn start(config: Config, jobs: JobRegistry) -> anyhow::Result<Self> {
        Self::start_roles(
            config,
            jobs,
            Roles {
                api: true,
                workers: true,
            },
        )
        .await
    }

    /// Starts a node with the given roles (an API is always served, so the
    /// test can talk to it; `workers` decides whether it runs jobs).
    pub async fn start_roles(
        config: Config,
        jobs: JobRegistry,
        roles: Roles,
    ) -> anyhow::Result<Self> {
        // The plugin engine is process-wide and fixed by its first user:
        // every node of the test process gets the default one, whichever
        // test starts first.
        evistream::plugins::runtime::engine::shared(&Default::default())
            .map_err(|e| anyhow::anyhow!("plugin engine: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let node =
            server::launch(config, jobs, Some(listener), Roles { api: true, ..roles }).await?;
        let addr = node.addr.context("no address")?;
        Ok(Self {
            node,
            client: Client::new(&format!("http://{addr}"))?,
        })
    }

    /// Graceful shutdown.
    pub async fn stop(self) {
        self.node.shutdown().await;
    }
}

impl Client {
    /// A client of the API at `base` (`http://host:port`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// POSTs a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_op(token, query, None, variables).await
    }

    /// POSTs a GraphQL request with an operation name.
    pub async fn gql_op(
        &self,
        token: Option<&str>,
        query: &str,
        operation: Option<&str>,
        variables: Value,
    ) -> Value {
        let mut body = json!({ "query": query, "variables": variables });
        if let Some(op) = operation {
            body["operationName"] = json!(op);
        }
        let mut req = self.http.post(format!("{}/graphql", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        resp.json().await.expect("JSON response")
    }

    /// Runs the named operation from the acceptance file (or `graphql/operations/`).
    pub async fn op(&self, token: Option<&str>, name: &str, variables: Value) -> Value {
        let q = ops::operation(name);
        self.gql(token, &q, variables).await
    }

    /// Registers a fresh user; returns their session.
    pub async fn register(&self, label: &str) -> Session {
        let email = format!("{label}-{}@example.org", uuid::Uuid::new_v4().simple());
        let r = self
            .op(
                None,
                "Register",
                json!({ "email": email, "password": "correct horse", "name": label }),
            )
            .await;
        let reg = &r["data"]["register"];
        assert!(reg.is_object(), "register failed: {r}");
        Session {
            email,
            token: reg["accessToken"].as_str().unwrap().to_owned(),
            refresh: reg["refreshToken"].as_str().unwrap().to_owned(),
            user_id: reg["user"]["id"].as_str().unwrap().to_owned(),
            org_id: reg["organization"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// Adds the user `email` to `org` with `role` as `token` (asserts it worked).
    pub async fn add_member(&self, token: &str, org: &str, email: &str, role: &str) {
        let r = self
            .op(
                Some(token),
                "AddMember",
                json!({ "organizationId": org, "email": email, "role": role }),
            )
            .await;
        ok(&r, "addMember");
    }

    /// Creates a project in `org` as `token`; returns its id.
    pub async fn project(&self, token: &str, org: &str, name: &str) -> String {
        let r = self
            .op(
                Some(token),
                "CreateProject",
                json!({ "organizationId": org, "name": name }),
            )
            .await;
        r["data"]["createProject"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createProject failed: {r}"))
            .to_owned()
    }

    /// Uploads `bytes` as `filename` with the acceptance `UploadDocument`
    /// operation, by the GraphQL multipart request spec.
    pub async fn upload(
        &self,
        token: Option<&str>,
        project_id: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Value {
        self.multipart_op(
            token,
            "UploadDocument",
            json!({ "projectId": project_id }),
            "file",
            filename,
            bytes,
        )
        .await
    }

    /// Installs a component with `InstallPlugin` (multipart).
    pub async fn install_plugin(
        &self,
        token: &str,
        org: &str,
        manifest: &str,
        wasm: Vec<u8>,
    ) -> Value {
        self.multipart_op(
            Some(token),
            "InstallPlugin",
            json!({ "organizationId": org, "manifest": manifest }),
            "component",
            "plugin.wasm",
            wasm,
        )
        .await
    }

    /// Installs the converter component `wasm` with `manifest` into `org`
    /// and binds it to `project` (asserts both worked).
    pub async fn bind_own_converter(
        &self,
        token: &str,
        org: &str,
        project: &str,
        manifest: &str,
        wasm: Vec<u8>,
    ) {
        let r = self.install_plugin(token, org, manifest, wasm).await;
        let id = ok(&r, "installPlugin")["id"]
            .as_str()
            .expect("plugin id")
            .to_owned();
        let r = self
            .op(
                Some(token),
                "ConfigureProjectPlugins",
                json!({ "projectId": project, "converter": id }),
            )
            .await;
        ok(&r, "configureProjectPlugins");
    }

    /// Runs operation `name` with `variables` plus the file `bytes` as
    /// variable `file_var`, by the GraphQL multipart request spec.
    pub async fn multipart_op(
        &self,
        token: Option<&str>,
        name: &str,
        variables: Value,
        file_var: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Value {
        let query = ops::operation(name);
        self.multipart_query(token, &query, variables, file_var, filename, bytes)
            .await
    }

    /// Runs `query` with `variables` plus the file `bytes` as variable
    /// `file_var`, by the GraphQL multipart request spec.
    pub async fn multipart_query(
        &self,
        token: Option<&str>,
        query: &str,
        mut variables: Value,
        file_var: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Value {
        variables[file_var] = Value::Null;
        let operations = json!({ "query": query, "variables": variables });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text(
                "map",
                json!({ "0": [format!("variables.{file_var}")] }).to_string(),
            )
            .part(
                "0",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(filename.to_owned())
                    .mime_str(if filename.ends_with(".pdf") {
                        "application/pdf"
                    } else {
                        "application/octet-stream"
                    })
                    .expect("mime"),
            );
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("apollo-require-preflight", "true")
            .multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("multipart request sent");
        resp.json().await.expect("JSON response")
    }

    /// Uploads corpus papers `names` into `project` and waits until they are
    /// converted; returns the document ids.
    pub async fn converted_papers(
        &self,
        token: &str,
        project: &str,
        names: &[&str],
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for name in names {
            let r = self
                .upload(Some(token), project, name, corpus_pdf(name))
                .await;
            ids.push(
                ok(&r, "uploadDocument")["id"]
                    .as_str()
                    .expect("document id")
                    .to_owned(),
            );
        }
        for (id, name) in ids.iter().zip(names) {
            self.wait_converted(token, id, name).await;
        }
        ids
    }

    /// Waits until document `id` is converted (and asserts it is COMPLETED).
    pub async fn wait_converted(&self, token: &str, id: &str, name: &str) {
        let status = eventually(Duration::from_secs(180), || async {
            let r = self.op(Some(token), "Document", json!({ "id": id })).await;
            let s = r["data"]["document"]["status"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (s == "COMPLETED" || s == "FAILED").then_some(s)
        })
        .await;
        assert_eq!(status, "COMPLETED", "converting {name}");
    }

    /// Binds LLM adapter `adapter` to `project` with its `baseUrl` and
    /// `model` and the secret `apiKey`; returns the binding.
    pub async fn bind_llm(
        &self,
        token: &str,
        project: &str,
        adapter: &str,
        base_url: &str,
        model: &str,
        api_key: &str,
    ) -> Value {
        let r = self
            .op(
                Some(token),
                "ConfigureProjectPlugins",
                json!({
                    "projectId": project, "llmAdapter": adapter,
                    "llmConfig": { "baseUrl": base_url, "model": model },
                    "llmSecrets": { "apiKey": api_key },
                }),
            )
            .await;
        ok(&r, "configureProjectPlugins").clone()
    }

    /// Starts an extraction of `version` over all of `project`'s
    /// documents; the run's (parent job's) id.
    pub async fn start_extraction(&self, token: &str, project: &str, version: &str) -> String {
        let r = self
            .op(
                Some(token),
                "StartExtraction",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        ok(&r, "startExtraction")["id"]
            .as_str()
            .expect("run id")
            .to_owned()
    }

    /// Waits (up to 3 minutes) until job `id` has ended, neither QUEUED
    /// nor RUNNING; the job as the `Job` operation shows it.
    pub async fn job_end(&self, token: &str, id: &str) -> Value {
        eventually(Duration::from_secs(180), || async {
            let r = self.op(Some(token), "Job", json!({ "id": id })).await;
            let job = ok(&r, "job").clone();
            let state = job["state"].as_str().unwrap_or_default();
            (state != "QUEUED" && state != "RUNNING").then_some(job)
        })
        .await
    }

    /// Runs an extraction of `version` over `project`'s documents and
    /// asserts it SUCCEEDED; the run's id.
    pub async fn run_extraction(&self, token: &str, project: &str, version: &str) -> String {
        let run = self.start_extraction(token, project, version).await;
        let job = self.job_end(token, &run).await;
        assert_eq!(job["state"], "SUCCEEDED", "the extraction run: {job}");
        run
    }

    /// Creates a form with `fields` in `project` and approves its first
    /// version; returns the version id.
    pub async fn approved_version(&self, token: &str, project: &str, fields: Value) -> String {
        let r = self
            .op(
                Some(token),
                "CreateForm",
                json!({ "projectId": project, "name": "RCT", "fields": fields }),
            )
            .await;
        let v = ok(&r, "createForm")["latestVersion"]["id"]
            .as_str()
            .expect("version id")
            .to_owned();
        let r = self
            .op(Some(token), "ApproveFormVersion", json!({ "id": v }))
            .await;
        ok(&r, "approveFormVersion");
        v
    }

    /// WebSocket URL of the API.
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.base.replacen("http", "ws", 1))
    }
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct Session {
    /// Email.
    pub email: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh: String,
    /// User id.
    pub user_id: String,
    /// Personal organization id.
    pub org_id: String,
}

/// The bytes of a paper of the shared corpus (`../shared/corpus/rct/pdf/`).
pub fn corpus_pdf(name: &str) -> Vec<u8> {
    let p = ops::repo_root().join("../shared/corpus/rct/pdf").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("corpus PDF {}: {e}", p.display()))
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(resp: &Value) -> Option<&str> {
    resp["errors"][0]["extensions"]["code"].as_str()
}

/// Asserts the response failed with `code` and returned no data.
#[track_caller]
pub fn assert_code(resp: &Value, code: &str) {
    assert_eq!(error_code(resp), Some(code), "expected {code}: {resp}");
}

/// The `data.<field>` of a successful response; panics with the response otherwise.
#[track_caller]
pub fn ok<'a>(resp: &'a Value, field: &str) -> &'a Value {
    assert!(resp.get("errors").is_none(), "unexpected errors: {resp}");
    let v = &resp["data"][field];
    assert!(!v.is_null(), "no data.{field}: {resp}");
    v
}

/// Asserts `code`, and that the failed root field returned no data.
#[track_caller]
pub fn refused(resp: &Value, field: &str, code: &str) {
    assert_code(resp, code);
    assert!(
        resp["data"].is_null() || resp["data"][field].is_null(),
        "{field} returned data despite {code}: {resp}"
    );
}

/// Polls `f` until it returns `Some`, up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory of this process (a test's server runs in it), in MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A local server whose `/echo` answers with the `authorization` header it
/// got (`authorization=-` without one); returns its loopback port.
pub async fn echo_server() -> u16 {
    async fn echo(h: axum::http::HeaderMap) -> String {
        format!(
            "authorization={}",
            h.get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let app = axum::Router::new().route("/echo", axum::routing::post(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}
