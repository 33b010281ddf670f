//! Each project's plugins: one converter (default: the built-in
//! `pdf-text`), one extractor, one LLM adapter with its configuration, the
//! hosts it is granted, and its secrets — sealed at rest with the server
//! key and never returned through the API.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use super::{PluginInfo, find, sealed};
use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{project, project_plugins};
use crate::db::now_ms;
use crate::error::{ServiceError, ServiceResult};
use crate::plugins::builtin;
use crate::plugins::host::requested;
use crate::plugins::manifest::{Manifest, PluginKind};
use crate::projects;
use crate::tenancy::Access;

/// A project's plugins, resolved.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The project.
    pub project_id: String,
    /// Its organization.
    pub organization_id: String,
    /// The converter.
    pub converter: PluginInfo,
    /// The extractor, when one is bound.
    pub extractor: Option<PluginInfo>,
    /// The LLM adapter, when one is bound.
    pub llm_adapter: Option<PluginInfo>,
    /// The adapter's configuration (string values).
    pub llm_config: BTreeMap<String, String>,
    /// Hosts granted to the adapter explicitly.
    pub llm_allowed_hosts: Vec<String>,
    sealed_secrets: Option<String>,
}

/// Where an adapter may reach and where its secrets may go: the rule a
/// project binding and `evistream extract` share.
#[derive(Debug, Clone, Copy)]
pub struct AdapterReach<'a> {
    /// The adapter, when one is bound.
    pub adapter: Option<&'a PluginInfo>,
    /// Its configuration (`baseUrl`, …).
    pub config: &'a BTreeMap<String, String>,
    /// Hosts granted explicitly.
    pub allowed: &'a [String],
}

impl AdapterReach<'_> {
    /// Hosts the adapter may reach: those granted explicitly, plus the host
    /// of the configured `baseUrl` — or, without one and for a built-in
    /// adapter, the exact hosts its manifest names (the provider's default
    /// endpoint). An installed adapter gets no host it was not granted.
    pub fn granted_hosts(&self) -> Vec<String> {
        let mut hosts = self.allowed.to_vec();
        hosts.extend(self.credential_hosts());
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// See [`Binding::credential_hosts`].
    pub fn credential_hosts(&self) -> Vec<String> {
        credential_hosts(self.adapter, self.config, self.allowed)
    }

    /// See [`Binding::credential_targets`].
    pub fn credential_targets(&self) -> Vec<String> {
        if let Some(o) = self.config.get("baseUrl").and_then(|u| origin(u)) {
            return vec![o];
        }
        let built_in = self.adapter.is_some_and(|a| a.built_in());
        self.credential_hosts()
            .into_iter()
            .map(|h| {
                if built_in {
                    format!("https://{h}:443")
                } else {
                    h
                }
            })
            .collect()
    }
}

impl Binding {
    /// The adapter's reach under this binding.
    pub fn reach(&self) -> AdapterReach<'_> {
        AdapterReach {
            adapter: self.llm_adapter.as_ref(),
            config: &self.llm_config,
            allowed: &self.llm_allowed_hosts,
        }
    }

    /// See [`AdapterReach::granted_hosts`].
    pub fn granted_hosts(&self) -> Vec<String> {
        self.reach().granted_hosts()
    }

    /// The hosts the secrets were entered for, and the only ones they are
    /// sent to: the host of `baseUrl`; without one, a built-in adapter's
    /// provider hosts (from its manifest) or an installed adapter's
    /// explicitly granted hosts. Beside a `baseUrl`, extra allowed hosts
    /// never receive credentials; and any change of these hosts drops the
    /// secrets (see [`configure`]).
    pub fn credential_hosts(&self) -> Vec<String> {
        self.reach().credential_hosts()
    }

    /// Where the host injects the secrets, as narrowly as it is known:
    /// `scheme://host:port` of `baseUrl`, or `https://host:443` of a
    /// built-in adapter's provider hosts, or (an installed adapter without
    /// `baseUrl`) the granted host names.
    pub fn credential_targets(&self) -> Vec<String> {
        self.reach().credential_targets()
    }

    /// Names of the secrets set (never their values), sorted. Opens the
    /// sealed secrets: asked for only where the names are shown.
    pub fn secret_names(&self, app: &App) -> ServiceResult<Vec<String>> {
        let mut names: Vec<String> = self.secrets(app)?.into_keys().collect();
        names.sort();
        Ok(names)
    }

    /// The adapter's secrets, opened.
    pub fn secrets(&self, app: &App) -> ServiceResult<HashMap<String, String>> {
        let Some(s) = &self.sealed_secrets else {
            return Ok(HashMap::new());
        };
        let plain = sealed::open(&app.encryption_key, &aad(&self.project_id), s)
            .map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))?;
        serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))
    }

    /// The bound converter, loaded into the plugin runtime (compiled once)
    /// and bound to its manifest's limits.
    pub async fn converter(
        &self,
        app: &App,
    ) -> Result<
        std::sync::Arc<dyn crate::plugins::converter::PdfConverter>,
        crate::plugins::PluginError,
    > {
        let info = &self.converter;
        app.plugins
            .converter(&info.manifest, &info.sha256, super::bytes(app, info))
            .await
    }
}

/// What `configureProjectPlugins` changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct BindingInput {
    /// `id` or `id@version` of a converter.
    pub converter: Option<String>,
    /// `id` or `id@version` of an extractor; empty clears.
    pub extractor: Option<String>,
    /// `id` or `id@version` of an LLM adapter; empty clears it and its settings.
    pub llm_adapter: Option<String>,
    /// JSON object of scalar configuration values.
    pub llm_config: Option<serde_json::Value>,
    /// JSON object of secret strings; `{}` clears.
    pub llm_secrets: Option<serde_json::Value>,
    /// Hosts granted to the adapter (beyond the host of `baseUrl`).
    pub llm_allowed_hosts: Option<Vec<String>>,
}

/// See [`Binding::credential_hosts`].
fn credential_hosts(
    adapter: Option<&PluginInfo>,
    config: &BTreeMap<String, String>,
    allowed: &[String],
) -> Vec<String> {
    let mut hosts = match (config.get("baseUrl").and_then(|u| url_host(u)), adapter) {
        (Some(h), _) => vec![h],
        (None, Some(a)) if a.built_in() => a
            .manifest
            .capabilities
            .outbound_hosts
            .iter()
            .filter(|h| !h.contains('*'))
            .cloned()
            .collect(),
        (None, _) => allowed.to_vec(),
    };
    hosts.sort();
    hosts.dedup();
    hosts
}

fn aad(project_id: &str) -> String {
    format!("project-plugins:{project_id}")
}

/// The host name of `url` (`https://host:port/path` → `host`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The binding of a project the caller can see (VIEWER+).
pub async fn get(app: &App, access: &Access, project_id: &str) -> ServiceResult<Binding> {
    let p = projects::get(app, access, project_id, Role::Viewer).await?;
    load(app, &p).await
}

/// The binding of `project` (already authorized, or a job's).
pub async fn load(app: &App, project: &project::Model) -> ServiceResult<Binding> {
    let row = project_plugins::Entity::find_by_id(project.id.as_str())
        .one(&app.db)
        .await?;
    resolve(app, project, row).await
}

async fn resolve(
    app: &App,
    project: &project::Model,
    row: Option<project_plugins::Model>,
) -> ServiceResult<Binding> {
    let org = project.organization_id.as_str();
    let stored = |id: &Option<String>, v: &Option<String>| id.clone().map(|i| (i, v.clone()));
    let (conv, ext, llm) = match &row {
        Some(r) => (
            stored(&r.converter_id, &r.converter_version),
            stored(&r.extractor_id, &r.extractor_version),
            stored(&r.llm_adapter_id, &r.llm_adapter_version),
        ),
        None => (None, None, None),
    };
    let pick = |pair: Option<(String, Option<String>)>| async move {
        match pair {
            None => Ok::<_, ServiceError>(None),
            Some((id, v)) => find(app, org, &id, v.as_deref()).await.and_then(|p| {
                p.map(Some).ok_or_else(|| {
                    ServiceError::Internal(anyhow::anyhow!(
                        "project {} is bound to plugin {id} {v:?}, which is gone",
                        project.id
                    ))
                })
            }),
        }
    };
    let converter = match pick(conv).await? {
        Some(c) => c,
        None => find(app, org, builtin::DEFAULT_CONVERTER, None)
            .await?
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("no built-in converter")))?,
    };
    let extractor = pick(ext).await?;
    let llm_adapter = pick(llm).await?;
    let (llm_config, llm_allowed_hosts, sealed_secrets) = match &row {
        Some(r) => (
            serde_json::from_str(&r.llm_config).unwrap_or_default(),
            serde_json::from_str(&r.llm_allowed_hosts).unwrap_or_default(),
            r.llm_secrets.clone(),
        ),
        None => (BTreeMap::new(), Vec::new(), None),
    };
    Ok(Binding {
        project_id: project.id.clone(),
        organization_id: project.organization_id.clone(),
        converter,
        extractor,
        llm_adapter,
        llm_config,
        llm_allowed_hosts,
        sealed_secrets,
    })
}

/// Resolves `reference` (`id` or `id@version`) to a plugin of `kind` that
/// organization `org` can use, and the version to store (None: built-in).
async fn resolve_ref(
    app: &App,
    org: &str,
    reference: &str,
    kind: PluginKind,
) -> ServiceResult<(PluginInfo, Option<String>)> {
    let (id, version) = match reference.trim().split_once('@') {
        Some((i, v)) => (i.trim(), Some(v.trim())),
        None => (reference.trim(), None),
    };
    let p = find(app, org, id, version)
        .await?
        .ok_or(ServiceError::NotFound("plugin"))?;
    if p.manifest.kind != kind {
        return Err(ServiceError::bad_input(format!(
            "`{id}` is a {}, not a {}",
            p.manifest.kind.world(),
            kind.world()
        )));
    }
    let stored = (!p.built_in()).then(|| p.manifest.version.clone());
    Ok((p, stored))
}

fn config_map(m: &Manifest, v: &serde_json::Value) -> ServiceResult<BTreeMap<String, String>> {
    let obj = v
        .as_object()
        .ok_or_else(|| ServiceError::bad_input("llmConfig must be a JSON object"))?;
    if obj.len() > 50 {
        return Err(ServiceError::bad_input("llmConfig has more than 50 keys"));
    }
    let declared = &m.capabilities.config_keys;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if !declared.is_empty() && !declared.contains(k) {
            return Err(ServiceError::bad_input(format!(
                "llmConfig key `{k}` is not one {} reads ({})",
                m.id,
                declared.join(", ")
            )));
        }
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ServiceError::bad_input(format!(
                    "llmConfig `{k}` must be a string, number or boolean"
                )));
            }
        };
        if s.len() > 8192 {
            return Err(ServiceError::bad_input(format!(
                "llmConfig `{k}` is too long"
            )));
        }
        crate::validate::text(k, "an llmConfig key", crate::validate::Lines::One)?;
        crate::validate::text(&s, &format!("llmConfig `{k}`"), crate::validate::Lines::One)?;
        out.insert(k.clone(), s);
    }
    if let Some(u) = out.get("baseUrl") {
        let host = url_host(u).ok_or_else(|| {
            ServiceError::bad_input(format!("baseUrl `{u}` is not an http(s) URL with a host"))
        })?;
        if !requested(m, &host) {
            return Err(not_requested(m, &host));
        }
    }
    Ok(out)
}

fn not_requested(m: &Manifest, host: &str) -> ServiceError {
    ServiceError::bad_input(format!(
        "{} does not request access to `{host}` (its manifest requests: {})",
        m.id,
        if m.capabilities.outbound_hosts.is_empty() {
            "no hosts".to_owned()
        } else {
            m.capabilities.outbound_hosts.join(", ")
        }
    ))
}

fn secret_map(m: &Manifest, v: &serde_json::Value) -> ServiceResult<BTreeMap<String, String>> {
    let obj = v
        .as_object()
        .ok_or_else(|| ServiceError::bad_input("llmSecrets must be a JSON object"))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if !m.capabilities.secrets.iter().any(|s| &s.name == k) {
            return Err(ServiceError::bad_input(format!(
                "{} declares no secret `{k}` (it declares: {})",
                m.id,
                m.capabilities
                    .secrets
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let s = v
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 4096)
            .ok_or_else(|| {
                ServiceError::bad_input(format!("secret `{k}` must be a non-empty string"))
            })?;
        // Injected into a request header: a line break would add headers.
        crate::validate::text(s, &format!("secret `{k}`"), crate::validate::Lines::One)?;
        out.insert(k.clone(), s.to_owned());
    }
    Ok(out)
}

/// Binds plugins and their settings to a project (ADMIN+).
pub async fn configure(
    app: &App,
    access: &Access,
    project_id: &str,
    input: BindingInput,
) -> ServiceResult<Binding> {
    let p = projects::get(app, access, project_id, Role::Admin).await?;
    let org = p.organization_id.as_str();
    let existing = project_plugins::Entity::find_by_id(p.id.as_str())
        .one(&app.db)
        .await?;
    let mut row = existing.clone().unwrap_or(project_plugins::Model {
        project_id: p.id.clone(),
        organization_id: p.organization_id.clone(),
        converter_id: None,
        converter_version: None,
        extractor_id: None,
        extractor_version: None,
        llm_adapter_id: None,
        llm_adapter_version: None,
        llm_config: "{}".into(),
        llm_allowed_hosts: "[]".into(),
        llm_secrets: None,
        updated_at: 0,
    });
    if let Some(c) = input.converter.as_deref().filter(|c| !c.trim().is_empty()) {
        let (info, v) = resolve_ref(app, org, c, PluginKind::PdfConverter).await?;
        row.converter_id = Some(info.manifest.id);
        row.converter_version = v;
    }
    match input.extractor.as_deref().map(str::trim) {
        Some("") => (row.extractor_id, row.extractor_version) = (None, None),
        Some(e) => {
            let (info, v) = resolve_ref(app, org, e, PluginKind::FormExtractor).await?;
            row.extractor_id = Some(info.manifest.id);
            row.extractor_version = v;
        }
        None => {}
    }
    let previous_adapter = row.llm_adapter_id.clone();
    // Where the stored secrets may go today: any change of it drops them,
    // so whoever may edit the binding cannot redirect another's key.
    let previous_reach = match &existing {
        Some(r) => Some(reach_of(app, org, r).await?),
        None => None,
    };
    match input.llm_adapter.as_deref().map(str::trim) {
        Some("") => {
            row.llm_adapter_id = None;
            row.llm_adapter_version = None;
        }
        Some(a) => {
            let (info, v) = resolve_ref(app, org, a, PluginKind::LlmAdapter).await?;
            row.llm_adapter_id = Some(info.manifest.id);
            row.llm_adapter_version = v;
        }
        None => {}
    }
    let adapter = match &row.llm_adapter_id {
        Some(id) => find(app, org, id, row.llm_adapter_version.as_deref()).await?,
        None => None,
    };
    match &adapter {
        None => {
            if input.llm_config.is_some()
                || input.llm_secrets.is_some()
                || input.llm_allowed_hosts.is_some()
            {
                return Err(ServiceError::bad_input(
                    "llmConfig, llmSecrets and llmAllowedHosts need an LLM adapter",
                ));
            }
            row.llm_config = "{}".into();
            row.llm_allowed_hosts = "[]".into();
            row.llm_secrets = None;
        }
        Some(a) => {
            let m = &a.manifest;
            // Settings of another adapter do not carry over.
            if previous_adapter.as_deref() != Some(m.id.as_str()) {
                row.llm_config = "{}".into();
                row.llm_allowed_hosts = "[]".into();
                row.llm_secrets = None;
            }
            let config = match &input.llm_config {
                Some(v) => config_map(m, v)?,
                None => config_map(
                    m,
                    &serde_json::from_str(&row.llm_config).unwrap_or_default(),
                )?,
            };
            row.llm_config = serde_json::to_string(&config).unwrap_or_else(|_| "{}".into());
            if let Some(hosts) = &input.llm_allowed_hosts {
                let mut clean = Vec::new();
                for h in hosts {
                    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                    let ok = !h.is_empty()
                        && h.len() <= 253
                        && h.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
                    if !ok {
                        return Err(ServiceError::bad_input(format!(
                            "`{h}` is not a host name or address"
                        )));
                    }
                    if !requested(m, &h) {
                        return Err(not_requested(m, &h));
                    }
                    clean.push(h);
                }
                clean.sort();
                clean.dedup();
                row.llm_allowed_hosts =
                    serde_json::to_string(&clean).unwrap_or_else(|_| "[]".into());
            }
            if let Some(v) = &input.llm_secrets {
                let secrets = secret_map(m, v)?;
                row.llm_secrets = (!secrets.is_empty()).then(|| {
                    let json = serde_json::to_vec(&secrets).unwrap_or_default();
                    sealed::seal(&app.encryption_key, &aad(&p.id), &json)
                });
            }
        }
    }
    let mut secrets_dropped = false;
    if input.llm_secrets.is_none()
        && row.llm_secrets.is_some()
        && previous_reach.is_some_and(|before| before != reach_of_adapter(adapter.as_ref(), &row))
    {
        row.llm_secrets = None;
        secrets_dropped = true;
    }
    row.updated_at = now_ms();
    let txn = crate::db::write_txn(&app.db).await?;
    let am = project_plugins::ActiveModel {
        project_id: Set(row.project_id.clone()),
        organization_id: Set(row.organization_id.clone()),
        converter_id: Set(row.converter_id.clone()),
        converter_version: Set(row.converter_version.clone()),
        extractor_id: Set(row.extractor_id.clone()),
        extractor_version: Set(row.extractor_version.clone()),
        llm_adapter_id: Set(row.llm_adapter_id.clone()),
        llm_adapter_version: Set(row.llm_adapter_version.clone()),
        llm_config: Set(row.llm_config.clone()),
        llm_allowed_hosts: Set(row.llm_allowed_hosts.clone()),
        llm_secrets: Set(row.llm_secrets.clone()),
        updated_at: Set(row.updated_at),
    };
    if existing.is_some() {
        am.update(&txn).await?;
    } else {
        am.insert(&txn).await?;
    }
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(org, "project.plugins", "project", &p.id).details(serde_json::json!({
            "converter": row.converter_id, "extractor": row.extractor_id,
            "llmAdapter": row.llm_adapter_id,
            "secretsChanged": input.llm_secrets.is_some(),
            "secretsDropped": secrets_dropped,
        })),
    )
    .await?;
    txn.commit().await?;
    resolve(app, &p, Some(row)).await
}

/// Where a binding row's secrets can travel, and how: the adapter (id and
/// version: another component may use them differently), the `baseUrl`'s
/// scheme, host and port, the credential hosts and every granted host.
#[derive(Debug, PartialEq, Eq)]
struct SecretReach {
    adapter: Option<(String, Option<String>)>,
    origin: Option<String>,
    credential: Vec<String>,
    granted: Vec<String>,
}

/// `scheme://host:port` of an http(s) URL, lower case, the port explicit.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let host = url_host(url)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, p)| p)?,
        None => authority.split_once(':').map_or("", |(_, p)| p),
    };
    let port: u16 = match after_host.trim_start_matches(':') {
        "" => match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        },
        p => p.parse().ok()?,
    };
    Some(format!("{scheme}://{host}:{port}"))
}

fn reach_of_adapter(adapter: Option<&PluginInfo>, row: &project_plugins::Model) -> SecretReach {
    let config: BTreeMap<String, String> =
        serde_json::from_str(&row.llm_config).unwrap_or_default();
    let allowed: Vec<String> = serde_json::from_str(&row.llm_allowed_hosts).unwrap_or_default();
    let reach = AdapterReach {
        adapter,
        config: &config,
        allowed: &allowed,
    };
    let (credential, granted) = (reach.credential_hosts(), reach.granted_hosts());
    SecretReach {
        adapter: row
            .llm_adapter_id
            .clone()
            .map(|id| (id, row.llm_adapter_version.clone())),
        origin: config.get("baseUrl").and_then(|u| origin(u)),
        credential,
        granted,
    }
}

async fn reach_of(
    app: &App,
    org: &str,
    row: &project_plugins::Model,
) -> ServiceResult<SecretReach> {
    let adapter = match &row.llm_adapter_id {
        Some(id) => find(app, org, id, row.llm_adapter_version.as_deref()).await?,
        None => None,
    };
    Ok(reach_of_adapter(adapter.as_ref(), row))
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://api.openai.com/v1").as_deref(),
            Some("api.openai.com")
        );
        assert_eq!(
            url_host("http://127.0.0.1:11434").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("http://[::1]:8080/x").as_deref(), Some("::1"));
        assert_eq!(
            url_host("http://user@Example.COM/").as_deref(),
            Some("example.com")
        );
        assert_eq!(url_host("not a url"), None);
        assert_eq!(
            super::origin("HTTPS://Api.Example.com:8443/v1?x").as_deref(),
            Some("https://api.example.com:8443")
        );
        assert_eq!(
            super::origin("https://api.example.com/v1").as_deref(),
            Some("https://api.example.com:443")
        );
        assert_eq!(
            super::origin("http://[::1]:11434/v1").as_deref(),
            Some("http://::1:11434")
        );
        assert_ne!(
            super::origin("https://api.example.com/v1"),
            super::origin("http://api.example.com/v1")
        );
    }
}
