//! The command line: arguments, configuration from them, and each command.
//! `convert` and `extract` run the server's own pipeline locally.

mod convert;
mod extract;
mod health;
mod plugin;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use evistream::config::{Config, LogFormat};
use evistream::jobs::JobRegistry;
use evistream::server::{self, Roles};
use figment::Figment;
use figment::providers::Serialized;

#[derive(Parser)]
#[command(
    name = "evistream",
    version,
    about = "Scientific PDFs to verified, analysis-ready data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API (and, unless --no-workers, the job workers).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Serve the API only; run workers elsewhere with `evistream worker`.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run job workers only (no HTTP API).
    Worker {
        #[command(flatten)]
        common: Common,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Check that a node is alive (for container health checks): GET its
    /// `/livez`; exit 0 on HTTP 200, 1 otherwise.
    Health {
        #[command(flatten)]
        common: Common,
        /// URL to check (default: http://127.0.0.1:<port of `listen`>/livez).
        #[arg(long)]
        url: Option<String>,
        /// Check a worker node's operations port (`ops_listen`) instead.
        #[arg(long)]
        worker: bool,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Convert PDFs locally through a converter plugin (no server), as the
    /// server would: markdown to stdout, or `<name>.md` + `<name>.json` into --out.
    Convert {
        #[command(flatten)]
        common: Common,
        /// PDF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Folder for `<name>.md` (text) and `<name>.json` (pages, metadata, warnings).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Built-in converter id.
        #[arg(long, default_value = "pdf-text")]
        converter: String,
        /// A converter component (.wasm) to use instead of a built-in one.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// Extract a form from PDFs locally (no server): the built-in converter,
    /// the offline extractor or, with --llm-adapter, the LLM extractor; the
    /// values with their grounded evidence as JSON on stdout.
    Extract {
        #[command(flatten)]
        common: Common,
        /// The form: {"name", "description", "fields": [...]} or a list of fields.
        #[arg(long)]
        form: PathBuf,
        /// PDF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Built-in LLM adapter (openai-compatible, anthropic, gemini).
        #[arg(long)]
        llm_adapter: Option<String>,
        /// Adapter configuration as JSON, e.g. '{"baseUrl": "…", "model": "…"}'.
        #[arg(long, default_value = "{}")]
        llm_config: String,
        /// A secret as name=ENV_VAR, e.g. apiKey=OPENAI_API_KEY (repeatable).
        #[arg(long)]
        llm_secret: Vec<String>,
    },
    /// Write and check plugins (`plugin new`, `plugin check`).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// `evistream plugin …`.
// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new plugin crate (a standalone cargo package on the SDK) from
    /// a template: Cargo.toml, src/lib.rs with a native test, manifest.toml,
    /// README.md.
    New {
        /// What it is.
        #[arg(long, value_enum)]
        kind: plugin::Kind,
        /// Its id (the manifest's id and the crate's name), e.g. my-converter.
        name: String,
        /// Folder to write (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK: a path to plugins/sdk, or a version requirement
        /// (default: the SDK of the checkout this binary was built from).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Check a component against its manifest and the plugin contract,
    /// under this server's runtime and limits: the static checks installPlugin
    /// runs, then its kind's behaviour. Exit status 0 only when every check passes.
    Check {
        #[command(flatten)]
        common: Common,
        /// The component (.wasm).
        wasm: PathBuf,
        /// Its manifest.toml.
        #[arg(long)]
        manifest: PathBuf,
        /// More PDFs for a converter to convert (repeatable).
        #[arg(long = "pdf")]
        pdfs: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Settings shared by the commands; each overrides the file and environment.
#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file (also EVISTREAM_CONFIG).
    #[arg(long, env = "EVISTREAM_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:8080 (EVISTREAM_LISTEN).
    #[arg(long)]
    listen: Option<String>,
    /// Data folder for the embedded defaults (EVISTREAM_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… (EVISTREAM_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// Blob store: fs or s3 (EVISTREAM_STORAGE__BACKEND).
    #[arg(long)]
    storage: Option<String>,
    /// S3-compatible endpoint (EVISTREAM_STORAGE__S3_ENDPOINT).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// S3 bucket (EVISTREAM_STORAGE__S3_BUCKET).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// S3 region (EVISTREAM_STORAGE__S3_REGION).
    #[arg(long)]
    s3_region: Option<String>,
    /// S3 access key id (EVISTREAM_STORAGE__S3_ACCESS_KEY_ID).
    #[arg(long)]
    s3_access_key_id: Option<String>,
    /// S3 secret access key (EVISTREAM_STORAGE__S3_SECRET_ACCESS_KEY).
    #[arg(long)]
    s3_secret_access_key: Option<String>,
    /// Log format: text or json (EVISTREAM_LOG_FORMAT).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

impl Common {
    fn load(&self) -> anyhow::Result<Config> {
        let mut f = Figment::new();
        let mut set = |key: &str, v: Option<String>| {
            if let Some(v) = v {
                f = std::mem::take(&mut f).merge(Serialized::default(key, v));
            }
        };
        set("listen", self.listen.clone());
        set(
            "data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        set("database_url", self.database_url.clone());
        set("storage.backend", self.storage.clone());
        set("storage.s3_endpoint", self.s3_endpoint.clone());
        set("storage.s3_bucket", self.s3_bucket.clone());
        set("storage.s3_region", self.s3_region.clone());
        set("storage.s3_access_key_id", self.s3_access_key_id.clone());
        set(
            "storage.s3_secret_access_key",
            self.s3_secret_access_key.clone(),
        );
        set(
            "log_format",
            self.log_format.map(|l| match l {
                LogFormat::Json => "json".to_owned(),
                LogFormat::Text => "text".to_owned(),
            }),
        );
        Ok(Config::load(self.config.as_deref(), f)?)
    }
}

/// Parses the command line and runs the command.
pub async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => {
            print!("{}", evistream::api::sdl());
            Ok(())
        }
        Command::Health {
            common,
            url,
            worker,
            timeout,
        } => {
            let url = match url {
                Some(u) => u,
                None => health::default_url(&common.load()?, worker)?,
            };
            health::check(&url, std::time::Duration::from_secs(timeout.max(1))).await
        }
        Command::Migrate { common } => {
            let config = common.load()?;
            evistream::telemetry::init(config.log_format);
            std::fs::create_dir_all(&config.data_dir).ok();
            let db = evistream::db::connect(&config.effective_database_url(), 2)
                .await
                .context("connecting to the database")?;
            evistream::db::migrate(&db).await.context("migrating")?;
            tracing::info!("migrations applied");
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { common, no_workers } => {
            let mut config = common.load()?;
            if no_workers {
                config.workers = false;
            }
            let workers = config.workers;
            run(config, Roles { api: true, workers }).await
        }
        Command::Convert {
            common,
            files,
            out,
            converter,
            wasm,
        } => {
            let config = common.load()?;
            evistream::telemetry::init(config.log_format);
            let failed =
                convert::run(&config, &files, out.as_deref(), &converter, wasm.as_deref()).await?;
            if failed > 0 {
                anyhow::bail!("{failed} of {} files failed", files.len());
            }
            Ok(())
        }
        Command::Extract {
            common,
            form,
            files,
            llm_adapter,
            llm_config,
            llm_secret,
        } => {
            let config = common.load()?;
            evistream::telemetry::init(config.log_format);
            let llm = llm_adapter.map(|adapter| extract::LlmOptions {
                adapter,
                config: llm_config,
                secrets: llm_secret,
            });
            let failed = extract::run(&config, &form, &files, llm).await?;
            if failed > 0 {
                anyhow::bail!("{failed} of {} files failed", files.len());
            }
            Ok(())
        }
        Command::Plugin {
            command:
                PluginCommand::New {
                    kind,
                    name,
                    dir,
                    sdk,
                },
        } => plugin::new(kind, &name, dir.as_deref(), sdk.as_deref()),
        Command::Plugin {
            command:
                PluginCommand::Check {
                    common,
                    wasm,
                    manifest,
                    pdfs,
                    json,
                },
        } => {
            let config = common.load()?;
            plugin::check(&config, &wasm, &manifest, &pdfs, json).await
        }
        Command::Worker { common } => {
            let config = common.load()?;
            run(
                config,
                Roles {
                    api: false,
                    workers: true,
                },
            )
            .await
        }
    }
}

async fn run(config: Config, roles: Roles) -> anyhow::Result<()> {
    evistream::telemetry::init(config.log_format);
    let db_url = config.effective_database_url();
    let db_kind = db_url.split(':').next().unwrap_or("?").to_owned();
    let node = server::launch(config, JobRegistry::new(), None, roles).await?;
    let id = node.app.node.id.clone();
    match node.addr {
        Some(addr) => {
            tracing::info!(node = %id, %addr, database = %db_kind, workers = roles.workers, "evistream listening on http://{addr}/graphql");
            println!("evistream listening on http://{addr}/graphql");
        }
        None => tracing::info!(node = %id, database = %db_kind, "evistream worker running"),
    }
    if let Some(ops) = node.ops_addr {
        tracing::info!(node = %id, %ops, "operations endpoints on http://{ops}/livez");
        println!("evistream worker ops on http://{ops}/livez");
    }
    server::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests, releasing job leases");
    node.shutdown().await;
    Ok(())
}
