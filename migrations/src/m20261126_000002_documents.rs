//! Documents get their blob, size, conversion outcome and job; converted
//! text lives in `document_texts` with the converter's provenance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Documents {
    Table,
    Id,
    BlobKey,
    SizeBytes,
    PageCount,
    Title,
    JobId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DocumentTexts {
    Table,
    DocumentId,
    OrganizationId,
    Markdown,
    Pages,
    Warnings,
    ConverterId,
    ConverterVersion,
    ConverterSha256,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds one at a time.
        for col in [
            string_len(Documents::BlobKey, 255).default("").take(),
            big_integer(Documents::SizeBytes).default(0).take(),
            integer_null(Documents::PageCount),
            text_null(Documents::Title),
            string_len_null(Documents::JobId, 36),
            big_integer(Documents::UpdatedAt).default(0).take(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Documents::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(DocumentTexts::Table)
                .col(string_len(DocumentTexts::DocumentId, 36).primary_key())
                .col(string_len(DocumentTexts::OrganizationId, 36))
                .col(text(DocumentTexts::Markdown))
                .col(text(DocumentTexts::Pages))
                .col(text(DocumentTexts::Warnings))
                .col(string_len(DocumentTexts::ConverterId, 100))
                .col(string_len(DocumentTexts::ConverterVersion, 50))
                .col(string_len(DocumentTexts::ConverterSha256, 64))
                .col(big_integer(DocumentTexts::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(DocumentTexts::Table, DocumentTexts::DocumentId)
                        .to(Documents::Table, Documents::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
