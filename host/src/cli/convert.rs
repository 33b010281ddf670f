//! `evistream convert`: the server's conversion path, run locally.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use evistream::config::Config;
use evistream::plugins::converter::{ConvertError, PdfConverter};
use evistream::plugins::manifest::Manifest;
use evistream::plugins::{PluginHost, builtin, sha256_hex};

/// Converts `files`; returns how many failed (each failure is reported on stderr).
pub async fn run(
    config: &Config,
    files: &[PathBuf],
    out: Option<&Path>,
    converter_id: &str,
    wasm: Option<&Path>,
) -> anyhow::Result<usize> {
    let host = PluginHost::from_config(config)?;
    let (manifest, converter): (Manifest, Arc<dyn PdfConverter>) = match wasm {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            // A local component runs under the built-in converter's limits.
            let mut m = builtin::get(builtin::DEFAULT_CONVERTER)
                .map(|b| b.manifest)
                .context("no built-in manifest to borrow limits from")?;
            m.id = path.display().to_string();
            m.version = "local".into();
            let c = host
                .converter(&m, &sha256_hex(&bytes), async { Ok(Arc::new(bytes)) })
                .await?;
            (m, c)
        }
        None => host.builtin_converter(converter_id).await?,
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut failed = 0;
    for file in files {
        let started = Instant::now();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        match converter.convert(bytes, Vec::new()).await {
            Ok(doc) => {
                let ms = started.elapsed().as_millis();
                eprintln!(
                    "{}: {} pages, {} characters, {} warnings, {ms} ms",
                    file.display(),
                    doc.page_count,
                    doc.markdown.chars().count(),
                    doc.warnings.len()
                );
                for w in &doc.warnings {
                    eprintln!("  warning: {w}");
                }
                match out {
                    Some(dir) => {
                        let stem = file
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("document");
                        std::fs::write(dir.join(format!("{stem}.md")), &doc.markdown)?;
                        let meta = serde_json::json!({
                            "converter": { "id": manifest.id, "version": manifest.version, "sha256": converter.sha256() },
                            "title": doc.title, "authors": doc.authors, "pageCount": doc.page_count,
                            "producer": doc.producer, "pages": doc.pages, "warnings": doc.warnings,
                            "layout": doc.layout.as_ref().map(|l| serde_json::json!({
                                "pages": l.pages,
                                "runs": l.runs.len(),
                            })),
                            "tables": doc.layout.as_ref().map(|l| {
                                evistream::api::layout::tables(l, &doc.markdown)
                            }),
                        });
                        std::fs::write(
                            dir.join(format!("{stem}.json")),
                            serde_json::to_vec_pretty(&meta)?,
                        )?;
                    }
                    None => println!("{}", doc.markdown),
                }
            }
            Err(ConvertError::Plugin(e)) => {
                eprintln!("{}: converter failed ({}): {e}", file.display(), e.kind());
                failed += 1;
            }
            Err(refused) => {
                eprintln!("{}: {refused}", file.display());
                failed += 1;
            }
        }
    }
    Ok(failed)
}
