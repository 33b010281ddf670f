//! The blob store (OpenDAL): local filesystem by default, any S3-compatible
//! service in production.

pub mod quota;

use opendal::Operator;

use crate::config::{Config, StorageBackend};

/// Why the blob store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Incomplete or invalid settings.
    #[error("storage configuration: {0}")]
    Config(String),
    /// The backend answered with an error.
    #[error("storage: {0}")]
    Backend(#[from] opendal::Error),
}

/// Handle to the blob store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    op: Operator,
    backend: StorageBackend,
}

impl BlobStore {
    /// Opens the configured backend.
    pub fn open(config: &Config) -> Result<Self, StorageError> {
        // HTTP-based services (S3) fail with ConfigInvalid until a transport
        // is installed; idempotent, first install wins.
        opendal::install_default();
        let s = &config.storage;
        let op = match s.backend {
            StorageBackend::Fs => {
                let root = if s.fs_root.is_empty() {
                    config.data_dir.join("blobs")
                } else {
                    s.fs_root.clone().into()
                };
                std::fs::create_dir_all(&root)
                    .map_err(|e| StorageError::Config(format!("{}: {e}", root.display())))?;
                let b = opendal::services::Fs::default().root(&root.to_string_lossy());
                Operator::new(b)?
            }
            StorageBackend::S3 => {
                if s.s3_bucket.is_empty() {
                    return Err(StorageError::Config("storage.s3_bucket is required".into()));
                }
                let mut b = opendal::services::S3::default()
                    .bucket(&s.s3_bucket)
                    .region(&s.s3_region)
                    .root(&s.s3_root);
                if !s.s3_endpoint.is_empty() {
                    b = b.endpoint(&s.s3_endpoint);
                }
                if !s.s3_access_key_id.is_empty() {
                    b = b
                        .access_key_id(&s.s3_access_key_id)
                        .secret_access_key(&s.s3_secret_access_key);
                }
                Operator::new(b)?
            }
        };
        Ok(Self {
            op,
            backend: s.backend,
        })
    }

    /// The OpenDAL operator, for services that read and write blobs.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    /// Removes the blob `key`; a failure is logged (its row is already
    /// gone, and an orphaned blob is harmless), never returned.
    pub async fn remove(&self, key: &str) {
        if key.is_empty() {
            return;
        }
        if let Err(e) = self.operator().delete(key).await {
            tracing::warn!(key, error = %e, "blob not deleted");
        }
    }

    /// Removes every blob under the folder `prefix` (ending in `/`); a
    /// failure is logged, never returned, as for [`Self::remove`].
    pub async fn remove_folder(&self, prefix: &str) {
        if prefix.is_empty() || !prefix.ends_with('/') {
            return;
        }
        if let Err(e) = self.operator().delete_with(prefix).recursive(true).await {
            tracing::warn!(prefix, error = %e, "blobs not deleted");
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    /// Readiness: a write, read and delete of a small probe object.
    pub async fn check(&self) -> Result<(), StorageError> {
        let key = format!(".readyz/{}", uuid::Uuid::new_v4());
        self.op.write(&key, b"ok".to_vec()).await?;
        let back = self.op.read(&key).await?;
        self.op.delete(&key).await?;
        if back.to_vec() != b"ok" {
            return Err(StorageError::Config("probe object read back wrong".into()));
        }
        Ok(())
    }
}

/// Where staged blobs live until they are committed.
const STAGING: &str = "staging/";
/// Staged blobs older than this are left over from a crash and swept.
const STAGING_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A blob written under a temporary key and moved to its final key only
/// once complete: a request killed mid-write (client gone, node stopped)
/// leaves no object under a real key, and its staged bytes are deleted
/// when the guard drops (or by [`BlobStore::sweep_staging`] after a crash).
pub struct Staged {
    op: Operator,
    /// The temporary key.
    pub key: String,
    done: bool,
}

impl BlobStore {
    /// A new staging key for a blob of `purpose`.
    pub fn stage(&self, purpose: &str) -> Staged {
        Staged {
            op: self.op.clone(),
            key: format!("{STAGING}{purpose}-{}", uuid::Uuid::now_v7()),
            done: false,
        }
    }

    /// Deletes staged blobs left by a crash (older than an hour).
    pub async fn sweep_staging(&self) -> Result<usize, StorageError> {
        let mut swept = 0;
        let now = std::time::SystemTime::now();
        for entry in self.op.list(STAGING).await? {
            let old = match entry.metadata().last_modified() {
                Some(t) => now
                    .duration_since(std::time::SystemTime::from(t))
                    .is_ok_and(|age| age > STAGING_MAX_AGE),
                None => match self.op.stat(entry.path()).await {
                    Ok(m) => m.last_modified().is_some_and(|t| {
                        now.duration_since(std::time::SystemTime::from(t))
                            .is_ok_and(|age| age > STAGING_MAX_AGE)
                    }),
                    Err(_) => false,
                },
            };
            if old && self.op.delete(entry.path()).await.is_ok() {
                swept += 1;
            }
        }
        Ok(swept)
    }
}

impl Staged {
    /// Moves the staged blob to `key` (rename where the backend has it,
    /// else server-side copy and delete).
    pub async fn commit(mut self, key: &str) -> Result<(), opendal::Error> {
        if self.op.info().capability().rename {
            self.op.rename(&self.key, key).await?;
        } else {
            self.op.copy(&self.key, key).await?;
            let _ = self.op.delete(&self.key).await;
        }
        self.done = true;
        Ok(())
    }

    /// Deletes the staged blob now.
    pub async fn discard(mut self) {
        let _ = self.op.delete(&self.key).await;
        self.done = true;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped mid-way (the request was cancelled): delete in the background.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let op = self.op.clone();
            let key = std::mem::take(&mut self.key);
            rt.spawn(async move {
                let _ = op.delete(&key).await;
            });
        }
    }
}
