//! The blob store (OpenDAL): local filesystem by default, any S3-compatible
//! service in production.

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
