//! sea-orm entities, one module per table. Tenant-owned tables carry
//! `organization_id`; reads go through the scoped helpers in the services.

macro_rules! entity_common {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

/// Accounts.
pub mod user {
    use sea_orm::entity::prelude::*;
    /// A person who logs in.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        pub name: Option<String>,
        pub password_hash: String,
        pub created_at: i64,
    }
    entity_common!();
}

/// Tenants.
pub mod organization {
    use sea_orm::entity::prelude::*;
    /// A tenant: everything else belongs to one.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub personal: bool,
        pub created_at: i64,
    }
    entity_common!();
}

/// Who belongs to which organization, with which role.
pub mod membership {
    use sea_orm::entity::prelude::*;
    /// A user's role in an organization.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "memberships")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub user_id: String,
        pub role: crate::auth::Role,
        pub created_at: i64,
    }
    entity_common!();
}

/// Hashed API keys.
pub mod api_key {
    use sea_orm::entity::prelude::*;
    /// An organization-scoped credential with a role.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub name: String,
        pub role: crate::auth::Role,
        pub key_hash: String,
        pub prefix: String,
        pub created_by_user_id: Option<String>,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }
    entity_common!();
}

/// Hashed, rotating refresh tokens.
pub mod refresh_token {
    use sea_orm::entity::prelude::*;
    /// One refresh token of a rotation family.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub family_id: String,
        pub token_hash: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }
    entity_common!();
}

/// Projects.
pub mod project {
    use sea_orm::entity::prelude::*;
    /// A collection of documents and forms inside an organization.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub name: String,
        pub description: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Plugins installed by organizations.
pub mod plugin {
    use sea_orm::entity::prelude::*;
    /// An installed component: manifest fields, and the blob under its sha256.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub plugin_id: String,
        pub version: String,
        pub kind: String,
        pub license: String,
        pub description: String,
        pub manifest: String,
        pub sha256: String,
        pub size_bytes: i64,
        pub blob_key: String,
        pub created_by: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// Which plugins a project uses.
pub mod project_plugins {
    use sea_orm::entity::prelude::*;
    /// A project's binding; a missing version means the built-in of that id.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "project_plugins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        pub organization_id: String,
        pub converter_id: Option<String>,
        pub converter_version: Option<String>,
        pub extractor_id: Option<String>,
        pub extractor_version: Option<String>,
        pub llm_adapter_id: Option<String>,
        pub llm_adapter_version: Option<String>,
        /// JSON object of string values.
        pub llm_config: String,
        /// JSON array of host names granted to the adapter.
        pub llm_allowed_hosts: String,
        /// Sealed JSON object of secrets (see `registry::sealed`).
        pub llm_secrets: Option<String>,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Uploaded documents.
pub mod document {
    use sea_orm::entity::prelude::*;
    /// A PDF in a project.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "documents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub filename: String,
        pub sha256: String,
        pub status: crate::documents::DocumentStatus,
        pub error: Option<String>,
        pub created_at: i64,
        pub blob_key: String,
        pub size_bytes: i64,
        pub page_count: Option<i32>,
        pub title: Option<String>,
        pub job_id: Option<String>,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Converted text of a document, with the converter's provenance.
pub mod document_text {
    use sea_orm::entity::prelude::*;
    /// The latest conversion of one document.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "document_texts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub document_id: String,
        pub organization_id: String,
        pub markdown: String,
        /// Page ranges `{number, start, end}` (code points).
        pub pages: super::super::types::Pages,
        /// Reviewer-facing warnings of the conversion.
        pub warnings: super::super::types::Strings,
        pub converter_id: String,
        pub converter_version: String,
        pub converter_sha256: String,
        pub created_at: i64,
        /// Blob key of the text's layout (where it lies on the pages), when
        /// the converter gave one.
        pub layout_key: Option<String>,
    }
    entity_common!();
}

/// Extraction forms.
pub mod form {
    use sea_orm::entity::prelude::*;
    /// An extraction form in a project.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "forms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub name: String,
        pub description: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// Immutable versions of a form, with their compiled programs.
pub mod form_version {
    use sea_orm::entity::prelude::*;
    /// One version of a form.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "form_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub form_id: String,
        pub number: i32,
        pub status: crate::forms::FormVersionStatus,
        /// The validated fields, JSON.
        pub fields: String,
        /// The extraction program, canonical JSON.
        pub program: Option<String>,
        pub program_hash: Option<String>,
        /// Reviewer feedback this version was regenerated with.
        pub feedback: Option<String>,
        pub parent_id: Option<String>,
        pub error: Option<String>,
        pub created_by: Option<String>,
        pub created_at: i64,
        pub reviewed_by: Option<String>,
        pub reviewed_at: Option<i64>,
    }
    entity_common!();
}

/// One startExtraction: what ran.
pub mod extraction_run {
    use sea_orm::entity::prelude::*;
    /// An extraction run over documents with one form version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "extraction_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub form_version_id: String,
        /// The parent job.
        pub job_id: String,
        pub program_hash: String,
        pub extractor_id: String,
        pub extractor_version: String,
        pub extractor_sha256: String,
        pub extractor_builtin: bool,
        pub adapter_id: Option<String>,
        pub adapter_version: Option<String>,
        pub adapter_sha256: Option<String>,
        pub document_count: i32,
        pub created_by: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// One document's extraction in a run.
pub mod extraction_result {
    use sea_orm::entity::prelude::*;
    /// The values of one document from one run.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "extraction_results")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub run_id: String,
        pub document_id: String,
        pub form_version_id: String,
        /// `id@version#sha256` of the converter that made the text.
        pub converter: String,
        /// Model names.
        pub models: super::super::types::Strings,
        /// Reviewer-facing warnings.
        pub warnings: super::super::types::Strings,
        pub created_at: i64,
    }
    entity_common!();
}

/// Extracted values with evidence.
pub mod extraction_value {
    use sea_orm::entity::prelude::*;
    /// One value at a path.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "extraction_values")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub result_id: String,
        /// Order as the extractor returned them.
        pub ordinal: i32,
        pub path: String,
        /// JSON.
        pub value: String,
        pub status: crate::plugins::extractor::ValueStatus,
        pub confidence: f64,
        /// Grounded evidence.
        pub evidence: super::super::types::EvidenceList,
        /// Best verdict over the evidence.
        pub grounding: crate::extraction::pipeline::Grounding,
        /// Set for a person's edit; null for the extractor's value.
        pub author_user_id: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// Reference values for evaluation.
pub mod ground_truth {
    use sea_orm::entity::prelude::*;
    /// A document's reference values for a form version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ground_truth")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub form_version_id: String,
        pub document_id: String,
        /// JSON object: concrete path → value.
        pub values: String,
        pub imported_by: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// Result exports.
pub mod export {
    use sea_orm::entity::prelude::*;
    /// A snapshot of results in one format.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "exports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub form_version_id: String,
        pub format: String,
        pub blob_key: String,
        pub codebook_key: String,
        pub created_by: Option<String>,
        pub created_at: i64,
        /// sha256 of the export and its codebook: an identical export is reused.
        pub content_sha256: Option<String>,
        /// Bytes of the export and its codebook.
        pub size_bytes: i64,
    }
    entity_common!();
}

/// What the server stored on an organization's behalf that it derived
/// (exports, cached page images), for the organization's storage quota.
pub mod derived_blob {
    use sea_orm::entity::prelude::*;
    /// One derived blob.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "derived_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub organization_id: String,
        /// `export` or `page-image`.
        pub kind: String,
        pub bytes: i64,
        pub created_at: i64,
    }
    entity_common!();
}

/// Cached LLM responses.
pub mod llm_cache {
    use sea_orm::entity::prelude::*;
    /// A completion, by the sha256 of what was asked.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "llm_cache")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub organization_id: String,
        /// The completion, JSON.
        pub response: String,
        pub created_at: i64,
    }
    entity_common!();
}

/// LLM calls, for accounting.
pub mod llm_call {
    use sea_orm::entity::prelude::*;
    /// One completion through the gateway.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "llm_calls")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub job_id: Option<String>,
        pub adapter: String,
        pub model: String,
        pub input_tokens: i64,
        pub output_tokens: i64,
        pub cost_usd: f64,
        pub cached: bool,
        pub attempts: i32,
        pub latency_ms: i64,
        pub outcome: String,
        pub created_at: i64,
    }
    entity_common!();
}

/// Durable background jobs.
pub mod job {
    use sea_orm::entity::prelude::*;
    /// One job row; see `jobs::queue` for the state machine.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: Option<String>,
        pub parent_id: Option<String>,
        pub kind: String,
        pub payload: String,
        pub state: crate::jobs::JobState,
        pub attempts: i32,
        pub max_attempts: i32,
        pub run_at: i64,
        pub lease_owner: Option<String>,
        pub lease_expires_at: Option<i64>,
        /// Fencing token: incremented by every claim (see `jobs::queue::Lease`).
        pub lease_token: i64,
        pub progress: f64,
        pub error: Option<String>,
        pub cancel_requested: bool,
        pub created_at: i64,
        pub updated_at: i64,
        pub started_at: Option<i64>,
        pub finished_at: Option<i64>,
    }
    entity_common!();
}

/// Who did what to which object.
pub mod audit_entry {
    use sea_orm::entity::prelude::*;
    /// One audit log entry.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: Option<String>,
        pub actor_user_id: Option<String>,
        pub actor_api_key_id: Option<String>,
        pub action: String,
        pub object_type: String,
        pub object_id: String,
        pub details: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// A project's review settings.
pub mod review_setting {
    use sea_orm::entity::prelude::*;
    /// How a project's documents are reviewed.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "review_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        pub organization_id: String,
        pub mode: crate::review::ReviewMode,
        pub reviewers_per_document: i32,
        pub updated_by: Option<String>,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Reviews: one per (document, form version).
pub mod review {
    use sea_orm::entity::prelude::*;
    /// The human record of one document against one form version.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reviews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub document_id: String,
        pub form_version_id: String,
        pub status: crate::review::ReviewStatus,
        pub created_at: i64,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Review decisions: append-only.
pub mod review_decision {
    use sea_orm::entity::prelude::*;
    /// One person's decision on one value (never updated, never deleted
    /// but with its review).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "review_decisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub review_id: String,
        /// Concrete path (`arms[0].name`).
        pub path: String,
        pub verdict: crate::review::DecisionKind,
        pub user_id: Option<String>,
        /// JSON of the value decided (null: none).
        pub value: Option<String>,
        /// JSON of the extractor's value when the decision was made.
        pub extracted: Option<String>,
        /// The reviewer's quote, grounded by the host.
        pub evidence: super::super::types::EvidenceList,
        pub note: Option<String>,
        pub created_at: i64,
    }
    entity_common!();
}

/// Studies: reports of one trial, grouped.
pub mod study {
    use sea_orm::entity::prelude::*;
    /// A study of a project.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "studies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub project_id: String,
        pub name: String,
        pub created_by: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
    entity_common!();
}

/// Which study a document is linked into (none: its own study).
pub mod study_document {
    use sea_orm::entity::prelude::*;
    /// A document's link.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "study_documents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub document_id: String,
        pub study_id: String,
        pub organization_id: String,
        pub project_id: String,
        pub linked_by: Option<String>,
        pub linked_at: i64,
    }
    entity_common!();
}

/// A form version's analysis roles.
pub mod analysis_roles {
    use sea_orm::entity::prelude::*;
    /// The role → field mapping, as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "analysis_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub form_version_id: String,
        pub organization_id: String,
        pub project_id: String,
        pub roles: String,
        pub updated_by: Option<String>,
        pub updated_at: i64,
    }
    entity_common!();
}
