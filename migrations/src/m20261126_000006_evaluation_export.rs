//! Ground truth per (form version, document) for evaluation, and exports
//! (snapshots of the results in the blob store, downloadable by members).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GroundTruth {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    FormVersionId,
    DocumentId,
    Values,
    ImportedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Exports {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    FormVersionId,
    Format,
    BlobKey,
    CodebookKey,
    CreatedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroundTruth::Table)
                .col(string_len(GroundTruth::Id, 36).primary_key())
                .col(string_len(GroundTruth::OrganizationId, 36))
                .col(string_len(GroundTruth::ProjectId, 36))
                .col(string_len(GroundTruth::FormVersionId, 36))
                .col(string_len(GroundTruth::DocumentId, 36))
                .col(text(GroundTruth::Values))
                .col(string_len_null(GroundTruth::ImportedBy, 36))
                .col(big_integer(GroundTruth::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_ground_truth_version_document")
                .table(GroundTruth::Table)
                .col(GroundTruth::FormVersionId)
                .col(GroundTruth::DocumentId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Exports::Table)
                .col(string_len(Exports::Id, 36).primary_key())
                .col(string_len(Exports::OrganizationId, 36))
                .col(string_len(Exports::ProjectId, 36))
                .col(string_len(Exports::FormVersionId, 36))
                .col(string_len(Exports::Format, 20))
                .col(string_len(Exports::BlobKey, 255))
                .col(string_len(Exports::CodebookKey, 255))
                .col(string_len_null(Exports::CreatedBy, 36))
                .col(big_integer(Exports::CreatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
