//! Human review: a project's review settings, one review per (document,
//! form version) with its status, and the append-only decisions from which
//! every reviewed value is derived (nothing is overwritten).

use sea_orm_migration::{prelude::*, schema::*};

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReviewSettings {
    Table,
    ProjectId,
    OrganizationId,
    Mode,
    ReviewersPerDocument,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Reviews {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    DocumentId,
    FormVersionId,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReviewDecisions {
    Table,
    Id,
    OrganizationId,
    ReviewId,
    Path,
    Verdict,
    UserId,
    Value,
    Extracted,
    Evidence,
    Note,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReviewSettings::Table)
                .col(string_len(ReviewSettings::ProjectId, 36).primary_key())
                .col(string_len(ReviewSettings::OrganizationId, 36))
                .col(string_len(ReviewSettings::Mode, 16))
                .col(integer(ReviewSettings::ReviewersPerDocument))
                .col(string_len_null(ReviewSettings::UpdatedBy, 36))
                .col(big_integer(ReviewSettings::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Reviews::Table)
                .col(string_len(Reviews::Id, 36).primary_key())
                .col(string_len(Reviews::OrganizationId, 36))
                .col(string_len(Reviews::ProjectId, 36))
                .col(string_len(Reviews::DocumentId, 36))
                .col(string_len(Reviews::FormVersionId, 36))
                .col(string_len(Reviews::Status, 32))
                .col(big_integer(Reviews::CreatedAt))
                .col(big_integer(Reviews::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_reviews_document_version")
                .table(Reviews::Table)
                .col(Reviews::DocumentId)
                .col(Reviews::FormVersionId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ReviewDecisions::Table)
                .col(string_len(ReviewDecisions::Id, 36).primary_key())
                .col(string_len(ReviewDecisions::OrganizationId, 36))
                .col(string_len(ReviewDecisions::ReviewId, 36))
                .col(string_len(ReviewDecisions::Path, 500))
                .col(string_len(ReviewDecisions::Verdict, 16))
                .col(string_len_null(ReviewDecisions::UserId, 36))
                .col(text_null(ReviewDecisions::Value))
                .col(text_null(ReviewDecisions::Extracted))
                .col(json_binary(ReviewDecisions::Evidence))
                .col(text_null(ReviewDecisions::Note))
                .col(big_integer(ReviewDecisions::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ReviewDecisions::Table, ReviewDecisions::ReviewId)
                        .to(Reviews::Table, Reviews::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_review_decisions_review")
                .table(ReviewDecisions::Table)
                .col(ReviewDecisions::ReviewId)
                .col(ReviewDecisions::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ReviewDecisions::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Reviews::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ReviewSettings::Table).to_owned())
            .await
    }
}
