//! `evistream extract`: the extraction pipeline run locally, without a
//! server — the form compiled to its program, then each PDF through
//! [`run_document`] with the built-in converter and the built-in extractor
//! (`lexical-extractor`, or `llm-extractor` with `--llm-adapter`) — printed
//! as JSON. LLM calls retry as the gateway's do, and reach only what a
//! project binding with the same configuration would.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use evistream::config::Config;
use evistream::extraction::pipeline::{DocumentInput, run_document};
use evistream::extraction::plugin_ref;
use evistream::forms::{fields, program};
use evistream::llm::gateway::RetryPolicy;
use evistream::plugins::extractor::{ExtractorImports, LlmBackend};
use evistream::plugins::llm::{Completion, CompletionRequest, LlmAdapter, LlmError, LlmFailure};
use evistream::plugins::manifest::{Manifest, PluginKind};
use evistream::plugins::policy::OutboundPolicy;
use evistream::plugins::{PluginHost, builtin, sha256_hex};
use evistream::registry::PluginInfo;
use evistream::registry::binding::AdapterReach;
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

/// An adapter called directly with the gateway's retry policy (no cache:
/// nothing persists).
struct LocalLlm {
    adapter: Arc<dyn LlmAdapter>,
    config: Vec<(String, String)>,
    policy: OutboundPolicy,
    retry: RetryPolicy,
}

#[async_trait::async_trait]
impl LlmBackend for LocalLlm {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, LlmFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (r, _) = self
                .adapter
                .complete(self.config.clone(), &request, self.policy.clone())
                .await;
            match r {
                Ok(c) => return Ok(c),
                Err(LlmError::Provider(f)) => match self.retry.delay(&f, attempt) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(f),
                },
                Err(LlmError::Plugin(e)) => {
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

async fn local_llm(config: &Config, host: &PluginHost, o: &LlmOptions) -> anyhow::Result<LocalLlm> {
    let (manifest, wasm) = builtin_of(&o.adapter, PluginKind::LlmAdapter)?;
    let adapter = host
        .adapter(&manifest, &sha256_hex(wasm), async {
            Ok(Arc::new(wasm.to_vec()))
        })
        .await?;
    let cfg: serde_json::Map<String, Value> =
        serde_json::from_str(&o.config).context("--llm-config must be a JSON object")?;
    let settings: BTreeMap<String, String> = cfg
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
    // The binding's rule, for a project bound to this built-in adapter with
    // this configuration and no extra hosts.
    let info = builtin::get(&o.adapter)
        .map(PluginInfo::from_builtin)
        .context("no built-in adapter")?;
    let reach = AdapterReach {
        adapter: Some(&info),
        config: &settings,
        allowed: &[],
    };
    let policy = host.outbound_policy(
        &manifest,
        &reach.granted_hosts(),
        &reach.credential_targets(),
        &secrets,
    )?;
    Ok(LocalLlm {
        adapter,
        config: settings.into_iter().collect(),
        policy,
        retry: RetryPolicy::from(&config.llm),
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
    let (program_text, program_hash) = program::canonical(&prog);

    let host = PluginHost::from_config(config)?;
    let (conv_manifest, converter) = host.builtin_converter(builtin::DEFAULT_CONVERTER).await?;
    let llm: Option<Arc<dyn LlmBackend>> = match &llm {
        Some(o) => Some(Arc::new(local_llm(config, &host, o).await?)),
        None => None,
    };
    let extractor_id = if llm.is_some() {
        builtin::LLM_EXTRACTOR
    } else {
        builtin::DEFAULT_EXTRACTOR
    };
    let (x_manifest, x_wasm) = builtin_of(extractor_id, PluginKind::FormExtractor)?;
    let extractor = host
        .extractor(&x_manifest, &sha256_hex(x_wasm), async {
            Ok(Arc::new(x_wasm.to_vec()))
        })
        .await?;
    let mut documents = Vec::new();
    let mut failed = 0;
    for file in files {
        let outcome: anyhow::Result<Value> = async {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let imports = ExtractorImports {
                llm: llm.clone(),
                progress: None,
                label: format!("{}@{}", x_manifest.id, x_manifest.version),
            };
            let input = DocumentInput::Pdf {
                bytes,
                converter: converter.as_ref(),
            };
            let run = run_document(input, &program_text, extractor.as_ref(), imports).await?;
            let values: Vec<Value> = run
                .values
                .iter()
                .map(|v| {
                    json!({
                        "path": v.value.path, "value": v.value.value, "status": v.value.status,
                        "confidence": v.value.confidence, "grounding": v.grounding,
                        "evidence": v.evidence,
                    })
                })
                .collect();
            Ok(json!({
                "file": file.display().to_string(),
                "pageCount": run.converted.as_ref().map(|c| c.page_count),
                "values": values,
                "warnings": run.warnings,
                "models": run.models,
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
        "extractor": plugin_ref(&x_manifest.id, &x_manifest.version, extractor.sha256()),
        "converter": plugin_ref(&conv_manifest.id, &conv_manifest.version, converter.sha256()),
        "documents": documents,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(failed)
}
