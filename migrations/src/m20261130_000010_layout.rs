//! Where a converted document's text lies on its pages: the blob key of
//! its layout (page sizes and text runs, written by a 0.2 converter);
//! null for texts converted without one.

use sea_orm_migration::{prelude::*, schema::*};

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DocumentTexts {
    Table,
    LayoutKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DocumentTexts::Table)
                .add_column(string_len_null(DocumentTexts::LayoutKey, 300))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DocumentTexts::Table)
                .drop_column(DocumentTexts::LayoutKey)
                .to_owned(),
        )
        .await
    }
}
