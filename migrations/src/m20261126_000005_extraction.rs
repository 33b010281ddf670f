//! Extraction runs (one per startExtraction: the form version, program hash
//! and the plugins it ran with), one result per (run, document), and the
//! values with their evidence, grounding and provenance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ExtractionRuns {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    FormVersionId,
    JobId,
    ProgramHash,
    ExtractorId,
    ExtractorVersion,
    ExtractorSha256,
    ExtractorBuiltin,
    AdapterId,
    AdapterVersion,
    AdapterSha256,
    DocumentCount,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ExtractionResults {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    RunId,
    DocumentId,
    FormVersionId,
    Converter,
    Models,
    Warnings,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ExtractionValues {
    Table,
    Id,
    OrganizationId,
    ResultId,
    Ordinal,
    Path,
    Value,
    Status,
    Confidence,
    Evidence,
    Grounding,
    AuthorUserId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ExtractionRuns::Table)
                .col(string_len(ExtractionRuns::Id, 36).primary_key())
                .col(string_len(ExtractionRuns::OrganizationId, 36))
                .col(string_len(ExtractionRuns::ProjectId, 36))
                .col(string_len(ExtractionRuns::FormVersionId, 36))
                .col(string_len(ExtractionRuns::JobId, 36))
                .col(string_len(ExtractionRuns::ProgramHash, 64))
                .col(string_len(ExtractionRuns::ExtractorId, 64))
                .col(string_len(ExtractionRuns::ExtractorVersion, 50))
                .col(string_len(ExtractionRuns::ExtractorSha256, 64))
                .col(boolean(ExtractionRuns::ExtractorBuiltin))
                .col(string_len_null(ExtractionRuns::AdapterId, 64))
                .col(string_len_null(ExtractionRuns::AdapterVersion, 50))
                .col(string_len_null(ExtractionRuns::AdapterSha256, 64))
                .col(integer(ExtractionRuns::DocumentCount))
                .col(string_len_null(ExtractionRuns::CreatedBy, 36))
                .col(big_integer(ExtractionRuns::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ExtractionResults::Table)
                .col(string_len(ExtractionResults::Id, 36).primary_key())
                .col(string_len(ExtractionResults::OrganizationId, 36))
                .col(string_len(ExtractionResults::ProjectId, 36))
                .col(string_len(ExtractionResults::RunId, 36))
                .col(string_len(ExtractionResults::DocumentId, 36))
                .col(string_len(ExtractionResults::FormVersionId, 36))
                .col(string_len(ExtractionResults::Converter, 200))
                .col(text(ExtractionResults::Models))
                .col(text(ExtractionResults::Warnings))
                .col(big_integer(ExtractionResults::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_extraction_results_run_document")
                .table(ExtractionResults::Table)
                .col(ExtractionResults::RunId)
                .col(ExtractionResults::DocumentId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_extraction_results_version")
                .table(ExtractionResults::Table)
                .col(ExtractionResults::FormVersionId)
                .col(ExtractionResults::DocumentId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ExtractionValues::Table)
                .col(string_len(ExtractionValues::Id, 36).primary_key())
                .col(string_len(ExtractionValues::OrganizationId, 36))
                .col(string_len(ExtractionValues::ResultId, 36))
                .col(integer(ExtractionValues::Ordinal))
                .col(string_len(ExtractionValues::Path, 500))
                .col(text(ExtractionValues::Value))
                .col(string_len(ExtractionValues::Status, 20))
                .col(double(ExtractionValues::Confidence))
                .col(text(ExtractionValues::Evidence))
                .col(string_len(ExtractionValues::Grounding, 20))
                .col(string_len_null(ExtractionValues::AuthorUserId, 36))
                .col(big_integer(ExtractionValues::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ExtractionValues::Table, ExtractionValues::ResultId)
                        .to(ExtractionResults::Table, ExtractionResults::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_extraction_values_result")
                .table(ExtractionValues::Table)
                .col(ExtractionValues::ResultId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
