//! The plugin registry: the built-in plugins shipped in the binary and the
//! components organizations install (validated against their declared world
//! before they are accepted, stored in the blob store by sha256), and each
//! project's binding of one converter, one extractor and one LLM adapter.

pub mod binding;
pub mod sealed;

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr};
use tokio::io::AsyncReadExt;

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{plugin, project_plugins};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::plugins::PluginError;
use crate::plugins::admission::{self, Refusal};
use crate::plugins::builtin;
use crate::plugins::manifest::{Manifest, PluginKind};
use crate::plugins::sha256_hex;
use crate::tenancy::Access;

/// Where a plugin's component comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Shipped in the binary.
    Builtin(&'static [u8]),
    /// Installed: the blob key.
    Blob(String),
}

/// A plugin as the registry knows it.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Its manifest.
    pub manifest: Manifest,
    /// sha256 of the component.
    pub sha256: String,
    /// Size of the component.
    pub size_bytes: u64,
    /// Installing organization (None for built-ins).
    pub organization_id: Option<String>,
    /// When it was installed (None for built-ins).
    pub installed_at: Option<i64>,
    /// Where the bytes are.
    pub source: Source,
}

impl PluginInfo {
    /// Whether it ships with the server.
    pub fn built_in(&self) -> bool {
        matches!(self.source, Source::Builtin(_))
    }

    /// The entry of a built-in plugin.
    pub fn from_builtin(b: builtin::Builtin) -> Self {
        Self {
            sha256: sha256_hex(b.wasm),
            size_bytes: b.wasm.len() as u64,
            organization_id: None,
            installed_at: None,
            source: Source::Builtin(b.wasm),
            manifest: b.manifest,
        }
    }

    fn from_row(r: plugin::Model) -> ServiceResult<Self> {
        let manifest: Manifest = serde_json::from_str(&r.manifest).map_err(|e| {
            ServiceError::Internal(anyhow::anyhow!("stored manifest of plugin {}: {e}", r.id))
        })?;
        Ok(Self {
            manifest,
            sha256: r.sha256,
            size_bytes: r.size_bytes as u64,
            organization_id: Some(r.organization_id),
            installed_at: Some(r.created_at),
            source: Source::Blob(r.blob_key),
        })
    }
}

/// The component's bytes, checked against its recorded sha256.
pub async fn bytes(app: &App, info: &PluginInfo) -> Result<Arc<Vec<u8>>, PluginError> {
    match &info.source {
        Source::Builtin(b) => Ok(Arc::new(b.to_vec())),
        Source::Blob(key) => {
            let b = app
                .blobs
                .operator()
                .read(key)
                .await
                .map_err(|e| PluginError::Internal(format!("reading the component: {e}")))?
                .to_vec();
            if sha256_hex(&b) != info.sha256 {
                return Err(PluginError::Internal(format!(
                    "the stored component of {} {} does not match its sha256",
                    info.manifest.id, info.manifest.version
                )));
            }
            Ok(Arc::new(b))
        }
    }
}

/// Built-in plugins, and those installed in the caller's organizations
/// (or only in `organization_id`), optionally of one kind.
pub async fn list(
    app: &App,
    access: &Access,
    organization_id: Option<&str>,
    kind: Option<PluginKind>,
) -> ServiceResult<Vec<PluginInfo>> {
    let orgs = match organization_id {
        Some(o) => {
            access.require(o, Role::Viewer, "organization")?;
            vec![o.to_owned()]
        }
        None => access.organization_ids(),
    };
    let mut out: Vec<PluginInfo> = builtin::all()
        .into_iter()
        .map(PluginInfo::from_builtin)
        .collect();
    let rows = plugin::Entity::find()
        .filter(plugin::Column::OrganizationId.is_in(orgs))
        .order_by_asc(plugin::Column::PluginId)
        .order_by_asc(plugin::Column::CreatedAt)
        .all(&app.db)
        .await?;
    for r in rows {
        out.push(PluginInfo::from_row(r)?);
    }
    if let Some(k) = kind {
        out.retain(|p| p.manifest.kind == k);
    }
    Ok(out)
}

/// Finds plugin `id` (at `version`, or the built-in, or the newest
/// installed) as organization `org` sees it. No access check: callers have
/// already resolved `org` from an object the caller may see.
pub async fn find(
    app: &App,
    org: &str,
    id: &str,
    version: Option<&str>,
) -> ServiceResult<Option<PluginInfo>> {
    if let Some(b) = builtin::get(id)
        && version.is_none_or(|v| v == b.manifest.version)
    {
        return Ok(Some(PluginInfo::from_builtin(b)));
    }
    let mut q = crate::tenancy::scoped::<plugin::Entity>(crate::tenancy::Scope::Organization(org))
        .filter(plugin::Column::PluginId.eq(id));
    if let Some(v) = version {
        q = q.filter(plugin::Column::Version.eq(v));
    }
    let row = q
        .order_by_desc(plugin::Column::CreatedAt)
        .one(&app.db)
        .await?;
    row.map(PluginInfo::from_row).transpose()
}

/// Installs a component into an organization (ADMIN+): the manifest is
/// validated, the component compiled and linked against the manifest's
/// world (a wrong world, or imports its kind may not have, are refused with
/// PLUGIN_FAILED), then stored by sha256. Installing the same id, version
/// and bytes again returns the existing plugin.
pub async fn install(
    app: &App,
    access: &Access,
    organization_id: &str,
    manifest_text: &str,
    mut file: tokio::fs::File,
) -> ServiceResult<PluginInfo> {
    access.require(organization_id, Role::Admin, "organization")?;
    // The static checks of `evistream plugin check`, in its order: the
    // manifest here, the rest (`admit`) once the component is read.
    let manifest =
        admission::parse(manifest_text).map_err(|r| ServiceError::bad_input(r.to_string()))?;
    if builtin::get(&manifest.id).is_some() {
        return Err(ServiceError::Conflict(format!(
            "`{}` is the id of a built-in plugin; choose another id",
            manifest.id
        )));
    }
    let limit = app.config.plugins.max_component_mb << 20;
    let mut wasm = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut wasm)
        .await
        .map_err(|e| ServiceError::Internal(anyhow::Error::new(e).context("reading upload")))?;
    if wasm.len() as u64 > limit {
        return Err(ServiceError::PayloadTooLarge(format!(
            "the component is larger than the limit of {limit} bytes"
        )));
    }
    if wasm.is_empty() {
        return Err(ServiceError::bad_input("the component is empty"));
    }
    let sha = sha256_hex(&wasm);
    if let Some(existing) =
        find(app, organization_id, &manifest.id, Some(&manifest.version)).await?
    {
        return if existing.sha256 == sha {
            Ok(existing)
        } else {
            Err(ServiceError::Conflict(format!(
                "{} {} is already installed with other bytes; give the new build a new version",
                manifest.id, manifest.version
            )))
        };
    }
    let wasm = Arc::new(wasm);
    admission::admit(&app.plugins, &manifest, wasm.clone())
        .await
        .map_err(|refused| {
            tracing::info!(plugin = %manifest.id, version = %manifest.version, sha256 = %sha, check = refused.check.name(), error = %refused, "plugin refused at install");
            match refused.reason {
                Refusal::Manifest(e) => ServiceError::bad_input(e.to_string()),
                Refusal::Plugin(e) => ServiceError::Plugin(e),
            }
        })?;
    let key = format!("plugins/{sha}.wasm");
    let op = app.blobs.operator();
    op.write(&key, wasm.to_vec())
        .await
        .map_err(|e| ServiceError::Internal(anyhow::Error::new(e).context("blob store")))?;
    let manifest_json = serde_json::to_string(&manifest)
        .map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))?;
    let now = now_ms();
    let txn = crate::db::write_txn(&app.db).await?;
    let row = plugin::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization_id.to_owned()),
        plugin_id: Set(manifest.id.clone()),
        version: Set(manifest.version.clone()),
        kind: Set(manifest.kind.world().to_owned()),
        license: Set(manifest.license.clone()),
        description: Set(manifest.description.clone()),
        manifest: Set(manifest_json),
        sha256: Set(sha.clone()),
        size_bytes: Set(wasm.len() as i64),
        blob_key: Set(key),
        created_by: Set(access.principal.user_id().map(str::to_owned)),
        created_at: Set(now),
    }
    .insert(&txn)
    .await;
    let row = match row {
        Ok(r) => r,
        // A concurrent install of the same id and version won.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(ServiceError::Conflict(format!(
                "{} {} is already installed",
                manifest.id, manifest.version
            )));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "plugin.install", "plugin", &row.id).details(
            serde_json::json!({
                "plugin": manifest.id, "version": manifest.version, "sha256": sha,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    PluginInfo::from_row(row)
}

/// Removes an installed plugin (ADMIN+). Refused with CONFLICT while a
/// project of the organization is bound to it.
pub async fn uninstall(
    app: &App,
    access: &Access,
    organization_id: &str,
    id: &str,
    version: &str,
) -> ServiceResult<()> {
    access.require(organization_id, Role::Admin, "organization")?;
    let row = crate::tenancy::scoped::<plugin::Entity>(crate::tenancy::Scope::Organization(
        organization_id,
    ))
    .filter(plugin::Column::PluginId.eq(id))
    .filter(plugin::Column::Version.eq(version))
    .one(&app.db)
    .await?
    .ok_or(ServiceError::NotFound("plugin"))?;
    let bound = crate::tenancy::scoped::<project_plugins::Entity>(
        crate::tenancy::Scope::Organization(organization_id),
    )
    .all(&app.db)
    .await?
    .into_iter()
    .filter(|b| {
        let uses = |i: &Option<String>, v: &Option<String>| {
            i.as_deref() == Some(id) && v.as_deref() == Some(version)
        };
        uses(&b.converter_id, &b.converter_version)
            || uses(&b.extractor_id, &b.extractor_version)
            || uses(&b.llm_adapter_id, &b.llm_adapter_version)
    })
    .count();
    if bound > 0 {
        return Err(ServiceError::Conflict(format!(
            "{id} {version} is bound to {bound} project(s); bind another plugin first"
        )));
    }
    let txn = crate::db::write_txn(&app.db).await?;
    plugin::Entity::delete_by_id(row.id.as_str())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(organization_id, "plugin.uninstall", "plugin", &row.id)
            .details(serde_json::json!({ "plugin": id, "version": version })),
    )
    .await?;
    txn.commit().await?;
    // The blob is shared by every organization that installed the same
    // bytes: delete it only when no row refers to it any more.
    let still_used = plugin::Entity::find()
        .filter(plugin::Column::Sha256.eq(row.sha256.as_str()))
        .one(&app.db)
        .await?
        .is_some();
    if !still_used && let Err(e) = app.blobs.operator().delete(&row.blob_key).await {
        tracing::warn!(key = %row.blob_key, error = %e, "plugin blob not deleted");
    }
    Ok(())
}
