//! Documents: upload (streamed to the blob store, deduplicated by sha256
//! within a project), conversion through the project's converter plugin as
//! a background job, reading the text with page provenance, download, delete.

pub mod convert;
pub mod layout;
pub mod pages;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{document, document_text};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::jobs::queue::NewJob;
use crate::jobs::{announce, queue};
use crate::projects;
use crate::tenancy::Access;

/// Job kind of a document conversion.
pub const CONVERT_JOB: &str = "document.convert";

/// The payload of a conversion job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConvertJob {
    /// The document to convert.
    pub document_id: String,
}

impl crate::jobs::JobPayload for ConvertJob {
    const KIND: &'static str = CONVERT_JOB;
}

crate::db::types::stored_enum!(
    /// Conversion state of a document.
    DocumentStatus {
        /// Uploaded, waiting for conversion.
        Pending = "pending",
        /// Being converted.
        Processing = "processing",
        /// Text available.
        Completed = "completed",
        /// Conversion failed; see `error`.
        Failed = "failed",
    }
);

/// Longest filename kept (longer ones are shortened, keeping the extension).
const MAX_FILENAME: usize = 255;

/// The filename kept of an upload: its last path component, shortened
/// when long; BAD_USER_INPUT when it holds a control character.
fn clean_filename(raw: &str) -> ServiceResult<String> {
    crate::validate::text(raw, "the filename", crate::validate::Lines::One)?;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned = base.trim();
    let name = if cleaned.is_empty() {
        "document.pdf"
    } else {
        cleaned
    };
    if name.chars().count() <= MAX_FILENAME {
        return Ok(name.to_owned());
    }
    Ok(name.chars().take(MAX_FILENAME - 4).collect::<String>() + ".pdf")
}

/// What an upload produced.
pub struct Uploaded {
    /// The document (new, or the existing one with the same bytes).
    pub document: document::Model,
    /// False when the bytes were already in the project.
    pub created: bool,
}

/// Stores an uploaded PDF and queues its conversion. REVIEWER or above.
/// Reads `file` in chunks: the upload is never held whole in memory.
pub async fn upload(
    app: &App,
    access: &Access,
    project_id: &str,
    filename: &str,
    mut file: tokio::fs::File,
) -> ServiceResult<Uploaded> {
    let project = projects::get(app, access, project_id, Role::Reviewer).await?;
    let filename = clean_filename(filename)?;
    let limit = app.config.limits.max_upload_bytes;
    let id = new_id();
    let key = format!("{}original.pdf", folder(&project.organization_id, &id));
    let op = app.blobs.operator();
    // Written under a staging key, moved to `key` once complete: a killed
    // upload leaves nothing under a document key.
    let staged = app.blobs.stage("upload");
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let mut writer: Option<opendal::Writer> = None;
    let mut head: Vec<u8> = Vec::with_capacity(8);
    let fail =
        |e: std::io::Error| ServiceError::Internal(anyhow::Error::new(e).context("reading upload"));
    let not_pdf =
        || ServiceError::bad_input("the file is not a PDF (it does not start with %PDF-)");
    loop {
        let n = file.read(&mut buf).await.map_err(fail)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if head.len() < 5 {
            head.extend_from_slice(&chunk[..chunk.len().min(5 - head.len())]);
        }
        if head.len() >= 5 && &head[..5] != b"%PDF-" {
            if let Some(mut w) = writer.take() {
                let _ = w.abort().await;
            }
            staged.discard().await;
            return Err(not_pdf());
        }
        size += n as u64;
        if size > limit {
            if let Some(mut w) = writer.take() {
                let _ = w.abort().await;
            }
            staged.discard().await;
            return Err(ServiceError::PayloadTooLarge(format!(
                "the file is larger than the limit of {limit} bytes"
            )));
        }
        hasher.update(chunk);
        if writer.is_none() {
            writer = Some(op.writer(&staged.key).await.map_err(blob_err)?);
        }
        if let Some(w) = writer.as_mut() {
            w.write(chunk.to_vec()).await.map_err(blob_err)?;
        }
    }
    if size == 0 {
        return Err(ServiceError::bad_input("the file is empty"));
    }
    if head.len() < 5 {
        if let Some(mut w) = writer.take() {
            let _ = w.abort().await;
        }
        staged.discard().await;
        return Err(not_pdf());
    }
    if let Some(mut w) = writer.take() {
        w.close().await.map_err(blob_err)?;
    }
    let sha = hex::encode(hasher.finalize());

    if let Some(existing) = find_by_sha(app, &project.id, &sha).await? {
        staged.discard().await;
        return Ok(Uploaded {
            document: existing,
            created: false,
        });
    }
    staged.commit(&key).await.map_err(blob_err)?;
    let now = now_ms();
    let txn = crate::db::write_txn(&app.db).await?;
    let job = queue::enqueue(
        &txn,
        NewJob {
            project_id: Some(project.id.clone()),
            ..NewJob::of(
                &project.organization_id,
                &ConvertJob {
                    document_id: id.clone(),
                },
                3,
            )
        },
    )
    .await?;
    let inserted = document::ActiveModel {
        id: Set(id.clone()),
        organization_id: Set(project.organization_id.clone()),
        project_id: Set(project.id.clone()),
        filename: Set(filename),
        sha256: Set(sha.clone()),
        status: Set(DocumentStatus::Pending),
        error: Set(None),
        created_at: Set(now),
        blob_key: Set(key.clone()),
        size_bytes: Set(size as i64),
        page_count: Set(None),
        title: Set(None),
        job_id: Set(Some(job.id.clone())),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await;
    let doc = match inserted {
        Ok(d) => d,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            // Two uploads of the same bytes raced; the other one won.
            txn.rollback().await?;
            let _ = op.delete(&key).await;
            let existing = find_by_sha(app, &project.id, &sha)
                .await?
                .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("duplicate vanished")))?;
            return Ok(Uploaded {
                document: existing,
                created: false,
            });
        }
        Err(e) => {
            let _ = op.delete(&key).await;
            return Err(e.into());
        }
    };
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(
            &project.organization_id,
            "document.upload",
            "document",
            &doc.id,
        )
        .details(serde_json::json!({ "sha256": sha, "bytes": size })),
    )
    .await?;
    txn.commit().await?;
    announce(&app.bus, &job).await;
    Ok(Uploaded {
        document: doc,
        created: true,
    })
}

fn blob_err(e: opendal::Error) -> ServiceError {
    ServiceError::Internal(anyhow::Error::new(e).context("blob store"))
}

async fn find_by_sha(
    app: &App,
    project_id: &str,
    sha: &str,
) -> ServiceResult<Option<document::Model>> {
    Ok(document::Entity::find()
        .filter(document::Column::ProjectId.eq(project_id))
        .filter(document::Column::Sha256.eq(sha))
        .one(&app.db)
        .await?)
}

/// A document the caller can see (and holds `min` in its organization).
pub async fn get(
    app: &App,
    access: &Access,
    id: &str,
    min: Role,
) -> ServiceResult<document::Model> {
    let d = crate::tenancy::load::<document::Entity, _>(&app.db, access, id, min).await?;
    Ok(d)
}

/// The converted text of a document already loaded through [`get`].
pub async fn text(app: &App, doc: &document::Model) -> ServiceResult<Option<document_text::Model>> {
    Ok(document_text::Entity::find_by_id(doc.id.as_str())
        .filter(document_text::Column::OrganizationId.eq(doc.organization_id.as_str()))
        .one(&app.db)
        .await?)
}

/// Deletes a document, its text and its blob. REVIEWER or above. A queued
/// or running conversion is cancelled.
pub async fn delete(app: &App, access: &Access, id: &str) -> ServiceResult<()> {
    let d = get(app, access, id, Role::Reviewer).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    document_text::Entity::delete_by_id(d.id.as_str())
        .exec(&txn)
        .await?;
    crate::studies::forget(&txn, &d).await?;
    document::Entity::delete_by_id(d.id.as_str())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&d.organization_id, "document.delete", "document", &d.id)
            .details(serde_json::json!({ "filename": d.filename })),
    )
    .await?;
    txn.commit().await?;
    if let Some(job_id) = &d.job_id
        && let Ok(Some(j)) = queue::request_cancel(&app.db, job_id).await
    {
        announce(&app.bus, &j).await;
    }
    remove_blobs(app, &d).await;
    Ok(())
}

/// The blob folder of a document: its PDF, layouts and page images, so
/// that they go together.
pub fn folder(organization_id: &str, document_id: &str) -> String {
    format!("orgs/{organization_id}/documents/{document_id}/")
}

/// Removes a deleted document's blobs: its PDF and its layouts (which live
/// in the document's folder).
pub async fn remove_blobs(app: &App, d: &document::Model) {
    let dir = folder(&d.organization_id, &d.id);
    app.blobs.remove(&d.blob_key).await;
    app.blobs.remove_folder(&dir).await;
    // Its page images leave the organization's quota with it.
    if let Err(e) = crate::storage::quota::forget_folder(&app.db, &dir).await {
        tracing::warn!(document = %d.id, error = %e, "page images not taken off the quota");
    }
}

/// Opens the original PDF for streaming to an authorized caller.
pub async fn open_original(
    app: &App,
    access: &Access,
    id: &str,
) -> ServiceResult<(document::Model, opendal::Reader, u64)> {
    let d = get(app, access, id, Role::Viewer).await?;
    let op = app.blobs.operator();
    let meta = op.stat(&d.blob_key).await.map_err(blob_err)?;
    let reader = op.reader(&d.blob_key).await.map_err(blob_err)?;
    Ok((d, reader, meta.content_length()))
}

/// Page ranges stored with a text.
pub fn pages(t: &document_text::Model) -> Vec<crate::plugins::converter::PageRange> {
    t.pages.0.clone()
}

#[cfg(test)]
mod filename_tests {
    use super::clean_filename;

    #[test]
    fn a_filename_keeps_its_last_component_and_refuses_control_characters() {
        assert_eq!(
            clean_filename("a/b\\trial.pdf").ok().as_deref(),
            Some("trial.pdf")
        );
        assert_eq!(clean_filename("  ").ok().as_deref(), Some("document.pdf"));
        for raw in ["nul\0.pdf", "bell\u{7}.pdf", "c1\u{85}.pdf", "line\n.pdf"] {
            let e = clean_filename(raw).expect_err(raw).to_string();
            assert!(
                e.starts_with("the filename contains a control character"),
                "{e}"
            );
        }
    }
}
