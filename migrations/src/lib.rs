//! Database migrations for eviStream. Every migration runs on SQLite and
//! PostgreSQL; one file per migration (sea-orm names a migration after its file).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_foundation;
mod m20261126_000002_documents;
mod m20261126_000003_plugins;
mod m20261126_000004_form_versions;
mod m20261126_000005_extraction;
mod m20261126_000006_evaluation_export;
mod m20261126_000007_llm_gateway;
mod m20261130_000008_json_columns;
mod m20261130_000009_review;
mod m20261130_000010_layout;
mod m20261206_000011_job_fencing;
mod m20261206_000012_derived_blobs;
mod m20261208_000013_studies_analysis;

/// Applies every eviStream migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_documents::Migration),
            Box::new(m20261126_000003_plugins::Migration),
            Box::new(m20261126_000004_form_versions::Migration),
            Box::new(m20261126_000005_extraction::Migration),
            Box::new(m20261126_000006_evaluation_export::Migration),
            Box::new(m20261126_000007_llm_gateway::Migration),
            Box::new(m20261130_000008_json_columns::Migration),
            Box::new(m20261130_000009_review::Migration),
            Box::new(m20261130_000010_layout::Migration),
            Box::new(m20261206_000011_job_fencing::Migration),
            Box::new(m20261206_000012_derived_blobs::Migration),
            Box::new(m20261208_000013_studies_analysis::Migration),
        ]
    }
}
