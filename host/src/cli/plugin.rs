//! `evistream plugin new` (a standalone plugin crate from the SDK's
//! templates) and `evistream plugin check` (the conformance check).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;
use evistream::config::Config;
use evistream::plugins::PluginHost;
use evistream::plugins::conformance::{self, NamedPdf};

/// The kind of plugin `plugin new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A `pdf-converter` (contract 0.2).
    Converter,
    /// A `form-extractor` (contract 0.1).
    Extractor,
    /// An `llm-adapter` (contract 0.1).
    LlmAdapter,
}

/// One template file: where it goes in the new crate, and its text.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($kind:literal) => {
        [
            (
                "Cargo.toml",
                include_str!(concat!(
                    "../../../plugins/sdk/templates/",
                    $kind,
                    "/Cargo.toml.tmpl"
                )),
            ),
            (
                "src/lib.rs",
                include_str!(concat!(
                    "../../../plugins/sdk/templates/",
                    $kind,
                    "/src/lib.rs"
                )),
            ),
            (
                "manifest.toml",
                include_str!(concat!(
                    "../../../plugins/sdk/templates/",
                    $kind,
                    "/manifest.toml"
                )),
            ),
            (
                "README.md",
                include_str!(concat!(
                    "../../../plugins/sdk/templates/",
                    $kind,
                    "/README.md"
                )),
            ),
            (".gitignore", "/target\n"),
        ]
    };
}

fn files(kind: Kind) -> [TemplateFile; 5] {
    match kind {
        Kind::Converter => template!("converter"),
        Kind::Extractor => template!("extractor"),
        Kind::LlmAdapter => template!("llm-adapter"),
    }
}

/// The SDK of the checkout this binary was built from, when it is still there.
fn checkout_sdk() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    p.join("Cargo.toml")
        .is_file()
        .then(|| p.canonicalize().ok())?
}

/// The dependency on the SDK, as the new crate's Cargo.toml spells it.
fn sdk_dependency(sdk: Option<&str>) -> anyhow::Result<String> {
    let toml_str = |s: &str| toml::Value::String(s.to_owned()).to_string();
    match sdk {
        Some(v) if semver::VersionReq::parse(v).is_ok() && !Path::new(v).exists() => {
            Ok(format!("version = {}", toml_str(v)))
        }
        Some(p) => {
            let dir = Path::new(p)
                .canonicalize()
                .with_context(|| format!("--sdk {p}: no such folder"))?;
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
                .with_context(|| format!("--sdk {p}: no Cargo.toml in it"))?;
            if !manifest.contains("name = \"evistream-plugin-sdk\"") {
                bail!("--sdk {p}: that crate is not evistream-plugin-sdk");
            }
            Ok(format!("path = {}", toml_str(&dir.display().to_string())))
        }
        None => match checkout_sdk() {
            Some(dir) => Ok(format!("path = {}", toml_str(&dir.display().to_string()))),
            None => bail!(
                "the SDK this binary was built with is not at {}/../plugins/sdk any more; pass \
                 --sdk PATH (the plugins/sdk folder of an eviStream checkout) or --sdk VERSION",
                env!("CARGO_MANIFEST_DIR")
            ),
        },
    }
}

/// Writes a new plugin crate `name` of `kind` into `dir` (default `./name`).
pub fn new(kind: Kind, name: &str, dir: Option<&Path>, sdk: Option<&str>) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "`{name}` is not a plugin id: 1-64 characters of a-z, 0-9 and -, starting with a \
             letter (it becomes the manifest's id and the crate's name)"
        );
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = sdk_dependency(sdk)?;
    let crate_name = name.replace('-', "_");
    for (rel, text) in files(kind) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let shown = dir.display();
    println!(
        "wrote {shown}: a {} plugin `{name}`\n\nnext:\n  cd {shown}\n  cargo test\n  cargo build \
         --release --target wasm32-wasip2\n  evistream plugin check \
         target/wasm32-wasip2/release/{crate_name}.wasm --manifest manifest.toml\n\n(a toolchain \
         installed before may need `rustup target add wasm32-wasip2` once)",
        match kind {
            Kind::Converter => "pdf-converter",
            Kind::Extractor => "form-extractor",
            Kind::LlmAdapter => "llm-adapter",
        }
    );
    Ok(())
}

/// Checks `wasm` against `manifest`; prints the report (text or JSON) and
/// fails when a check failed.
pub async fn check(
    config: &Config,
    wasm: &Path,
    manifest: &Path,
    pdfs: &[PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let manifest_text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let mut named = Vec::new();
    for p in pdfs {
        named.push(NamedPdf {
            name: p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into()),
            bytes: std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        });
    }
    let host = PluginHost::from_config(config)?;
    let report = conformance::check(&host, &manifest_text, bytes, &named).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if !report.passed {
        bail!("{} is not conformant", wasm.display());
    }
    Ok(())
}
