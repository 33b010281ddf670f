//! Studies and analysis roles: a study groups a project's documents
//! (reports of one trial) through `study_documents` (a document is in at
//! most one study; without a row it is its own study), and
//! `analysis_roles` says which fields of a form version hold what a
//! meta-analysis needs.

use sea_orm_migration::{prelude::*, schema::*};

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Studies {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    Name,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StudyDocuments {
    Table,
    DocumentId,
    StudyId,
    OrganizationId,
    ProjectId,
    LinkedBy,
    LinkedAt,
}

#[derive(DeriveIden)]
enum AnalysisRoles {
    Table,
    FormVersionId,
    OrganizationId,
    ProjectId,
    Roles,
    UpdatedBy,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Studies::Table)
                .col(string_len(Studies::Id, 36).primary_key())
                .col(string_len(Studies::OrganizationId, 36))
                .col(string_len(Studies::ProjectId, 36))
                .col(string_len(Studies::Name, 500))
                .col(string_len_null(Studies::CreatedBy, 36))
                .col(big_integer(Studies::CreatedAt))
                .col(big_integer(Studies::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_studies_project")
                .table(Studies::Table)
                .col(Studies::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(StudyDocuments::Table)
                .col(string_len(StudyDocuments::DocumentId, 36).primary_key())
                .col(string_len(StudyDocuments::StudyId, 36))
                .col(string_len(StudyDocuments::OrganizationId, 36))
                .col(string_len(StudyDocuments::ProjectId, 36))
                .col(string_len_null(StudyDocuments::LinkedBy, 36))
                .col(big_integer(StudyDocuments::LinkedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_study_documents_study")
                .table(StudyDocuments::Table)
                .col(StudyDocuments::StudyId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_study_documents_project")
                .table(StudyDocuments::Table)
                .col(StudyDocuments::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalysisRoles::Table)
                .col(string_len(AnalysisRoles::FormVersionId, 36).primary_key())
                .col(string_len(AnalysisRoles::OrganizationId, 36))
                .col(string_len(AnalysisRoles::ProjectId, 36))
                .col(text(AnalysisRoles::Roles))
                .col(string_len_null(AnalysisRoles::UpdatedBy, 36))
                .col(big_integer(AnalysisRoles::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AnalysisRoles::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(StudyDocuments::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Studies::Table).to_owned())
            .await
    }
}
