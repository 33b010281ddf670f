//! The `evistream` binary: `serve`, `worker`, `migrate`, `schema`,
//! `convert`, `extract`, `plugin new`, `plugin check`, `health` (see [`cli`]).

mod cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::main().await
}
