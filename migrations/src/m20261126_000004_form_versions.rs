//! Immutable form versions: the fields as submitted, the extraction program
//! compiled from them (canonical JSON and its sha256), the review state and
//! the reviewer feedback a regenerated version was made with.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FormVersions {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    FormId,
    Number,
    Status,
    Fields,
    Program,
    ProgramHash,
    Feedback,
    ParentId,
    Error,
    CreatedBy,
    CreatedAt,
    ReviewedBy,
    ReviewedAt,
}

#[derive(DeriveIden)]
enum Forms {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FormVersions::Table)
                .col(string_len(FormVersions::Id, 36).primary_key())
                .col(string_len(FormVersions::OrganizationId, 36))
                .col(string_len(FormVersions::ProjectId, 36))
                .col(string_len(FormVersions::FormId, 36))
                .col(integer(FormVersions::Number))
                .col(string_len(FormVersions::Status, 20))
                .col(text(FormVersions::Fields))
                .col(text_null(FormVersions::Program))
                .col(string_len_null(FormVersions::ProgramHash, 64))
                .col(text_null(FormVersions::Feedback))
                .col(string_len_null(FormVersions::ParentId, 36))
                .col(text_null(FormVersions::Error))
                .col(string_len_null(FormVersions::CreatedBy, 36))
                .col(big_integer(FormVersions::CreatedAt))
                .col(string_len_null(FormVersions::ReviewedBy, 36))
                .col(big_integer_null(FormVersions::ReviewedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(FormVersions::Table, FormVersions::FormId)
                        .to(Forms::Table, Forms::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_form_versions_number")
                .table(FormVersions::Table)
                .col(FormVersions::FormId)
                .col(FormVersions::Number)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
