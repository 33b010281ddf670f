//! `evistream extract`: the extraction pipeline run locally, without a
//! server — the form compiled to its program, each PDF through the built-in
//! converter, the built-in extractor (`lexical-extractor`, or
//! `llm-extractor` with `--llm-adapter`), the host's grounding — printed as
//! JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use evistream::config::Config;
use evistream::extraction::grounding::Grounder;
use evistream::extraction::plugin_ref;
use evistream::extraction::unit::ground;
use evistream::forms::{fields, program};
use evistream::plugins::adapter::{Adapter, Completion, CompletionRequest, LlmFailure};
use evistream::plugins::builtin;
use evistream::plugins::cache::sha256_hex;
use evistream::plugins::extractor::{ExtractorImports, LlmBackend, SourceText};
use evistream::plugins::host::PluginHost;
use evistream::plugins::manifest::{Manifest, PluginKind};
use evistream::plugins::outbound::OutboundPolicy;
use serde_json::{Value, json};

/// The LLM options of `evistream extract`.
pub struct LlmOptions {
    /// Built-in adapter id.
    pub adapter: String,
    /// Adapter configuration, a JSON object (`{"baseUrl": …, "model": …}`).
    pub config: String,
    /// Secrets as `name=ENV_VAR` (the value is read from the environment).
    pub secrets: Vec<String>,
}

/// An adapter called directly, with a few retries (no cache: nothing persists).
struct LocalLlm {
    host: Arc<PluginHost>,
    adapter: Arc<Adapter>,
    manifest: Manifest,
    config: Vec<(String, String)>,
    policy: OutboundPolicy,
}

#[async_trait::async_trait]
impl LlmBackend for LocalLlm {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, LlmFailure> {
        let limits = self.host.adapter_limits(&self.manifest);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (r, _) = self
                .adapter
                .complete(
                    &self.host.runtime,
                    self.config.clone(),
                    &request,
                    limits,
                    self.policy.clone(),
                )
                .await;
            match r {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(f)) if f.is_retryable() && attempt < 4 => {
                    let ms = match f {
                        LlmFailure::RateLimited(Some(ms)) => ms.min(60_000),
                        _ => 500 << attempt,
                    };
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Ok(Err(f)) => return Err(f),
                Err(e) => {
                    return Err(LlmFailure::BadRequest(format!(
                        "the adapter failed ({}): {e}",
                        e.kind()
                    )));
                }
            }
        }
    }
}

fn builtin_of(id: &str, kind: PluginKind) -> anyhow::Result<(Manifest, &'static [u8])> {
    let b = builtin::get(id).with_context(|| format!("no built-in plugin `{id}`"))?;
    if b.manifest.kind != kind {
        bail!(
            "`{id}` is a {}, not a {}",
            b.manifest.kind.world(),
            kind.world()
        );
    }
    Ok((b.manifest, b.wasm))
}

async fn local_llm(host: &Arc<PluginHost>, o: &LlmOptions) -> anyhow::Result<LocalLlm> {
    let (manifest, wasm) = builtin_of(&o.adapter, PluginKind::LlmAdapter)?;
    let adapter = host
        .adapter(&sha256_hex(wasm), async { Ok(Arc::new(wasm.to_vec())) })
        .await?;
    let cfg: serde_json::Map<String, Value> =
        serde_json::from_str(&o.config).context("--llm-config must be a JSON object")?;
    let config: Vec<(String, String)> = cfg
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect();
    let mut secrets = HashMap::new();
    for s in &o.secrets {
        let (name, var) = s
            .split_once('=')
            .with_context(|| format!("--llm-secret `{s}`: expected name=ENV_VAR"))?;
        let value = std::env::var(var).with_context(|| {
            format!("--llm-secret {name}: environment variable {var} is not set")
        })?;
        secrets.insert(name.to_owned(), value);
    }
    let mut granted: Vec<String> = manifest
        .capabilities
        .outbound_hosts
        .iter()
        .filter(|h| !h.contains('*'))
        .cloned()
        .collect();
    if let Some(h) = cfg
        .get("baseUrl")
        .and_then(Value::as_str)
        .and_then(evistream::registry::binding::url_host)
    {
        granted = vec![h];
    }
    // The CLI grants exactly the credential host (baseUrl, or the provider's own).
    let policy = host.outbound_policy(&manifest, &granted, &granted, &secrets)?;
    Ok(LocalLlm {
        host: host.clone(),
        adapter,
        manifest,
        config,
        policy,
    })
}

/// Extracts `form` from `files`; prints JSON to stdout. Returns how many files failed.
pub async fn run(
    config: &Config,
    form: &Path,
    files: &[PathBuf],
    llm: Option<LlmOptions>,
) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(form).with_context(|| format!("reading {}", form.display()))?;
    let v: Value = serde_json::from_str(&text).context("the form is not JSON")?;
    // A form object ({"name", "description", "fields"}) or a bare list of fields.
    let (name, description, raw) = match &v {
        Value::Array(_) => ("form".to_owned(), None, v.clone()),
        _ => (
            v["name"].as_str().unwrap_or("form").to_owned(),
            v["description"].as_str().map(str::to_owned),
            v["fields"].clone(),
        ),
    };
    let raw: Vec<fields::Field> = serde_json::from_value(raw).context("form fields")?;
    let checked = fields::validate(&raw).map_err(|e| anyhow::anyhow!("the form: {e}"))?;
    let prog = program::compile(&name, description.as_deref(), &checked, &[]);
    let (program_text, program_hash) = prog.canonical();

    let host = Arc::new(PluginHost::from_config(config)?);
    let (conv_manifest, converter) = host.builtin_converter(builtin::DEFAULT_CONVERTER).await?;
    let llm = match &llm {
        Some(o) => Some(Arc::new(local_llm(&host, o).await?)),
        None => None,
    };
    let extractor_id = if llm.is_some() {
        builtin::LLM_EXTRACTOR
    } else {
        builtin::DEFAULT_EXTRACTOR
    };
    let (x_manifest, x_wasm) = builtin_of(extractor_id, PluginKind::FormExtractor)?;
    let x_sha = sha256_hex(x_wasm);
    let extractor = host
        .extractor(&x_sha, async { Ok(Arc::new(x_wasm.to_vec())) })
        .await?;
    let mut documents = Vec::new();
    let mut failed = 0;
    for file in files {
        let outcome: anyhow::Result<Value> = async {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let doc = converter
                .convert(
                    &host.runtime,
                    bytes,
                    Vec::new(),
                    host.convert_limits(&conv_manifest),
                )
                .await??;
            let imports = ExtractorImports {
                llm: llm.clone().map(|l| l as Arc<dyn LlmBackend>),
                progress: None,
                label: format!("{}@{}", x_manifest.id, x_manifest.version),
            };
            let x = extractor
                .extract(
                    &host.runtime,
                    &program_text,
                    SourceText {
                        text: &doc.markdown,
                        pages: &doc.pages,
                    },
                    host.extract_limits(&x_manifest),
                    Duration::from_secs(600),
                    imports,
                )
                .await??;
            let grounder = Grounder::new(&doc.markdown, &doc.pages);
            let mut warnings = x.warnings.clone();
            let values: Vec<Value> = x
                .values
                .iter()
                .map(|v| {
                    let (evidence, verdict) = ground(&grounder, v, &mut warnings);
                    json!({
                        "path": v.path, "value": v.value, "status": v.status,
                        "confidence": v.confidence, "grounding": verdict.to_uppercase(),
                        "evidence": evidence,
                    })
                })
                .collect();
            Ok(json!({
                "file": file.display().to_string(),
                "pageCount": doc.page_count,
                "values": values,
                "warnings": warnings,
                "models": x.models,
            }))
        }
        .await;
        match outcome {
            Ok(d) => documents.push(d),
            Err(e) => {
                eprintln!("{}: {e:#}", file.display());
                failed += 1;
                documents
                    .push(json!({ "file": file.display().to_string(), "error": format!("{e:#}") }));
            }
        }
    }
    let out = json!({
        "form": name,
        "programHash": program_hash,
        "extractor": plugin_ref(&x_manifest.id, &x_manifest.version, &x_sha),
        "converter": plugin_ref(&conv_manifest.id, &conv_manifest.version, &converter.sha256),
        "documents": documents,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(failed)
}
