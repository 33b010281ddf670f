//! Quotas of what the server derives for an organization: every export
//! snapshot and cached page image is a row of `derived_blobs` (its key,
//! owner and size), so a tenant's stored derivatives are summed without
//! listing the blob store; exports gain their content hash (an identical
//! export is reused, not written again) and size.

use sea_orm_migration::{prelude::*, schema::*};

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DerivedBlobs {
    Table,
    Key,
    OrganizationId,
    Kind,
    Bytes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Exports {
    Table,
    ContentSha256,
    SizeBytes,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DerivedBlobs::Table)
                .col(string_len(DerivedBlobs::Key, 400).primary_key())
                .col(string_len(DerivedBlobs::OrganizationId, 36))
                .col(string_len(DerivedBlobs::Kind, 16))
                .col(big_integer(DerivedBlobs::Bytes))
                .col(big_integer(DerivedBlobs::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_derived_blobs_org")
                .table(DerivedBlobs::Table)
                .col(DerivedBlobs::OrganizationId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Exports::Table)
                .add_column(string_len_null(Exports::ContentSha256, 64))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Exports::Table)
                .add_column(big_integer(Exports::SizeBytes).default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_exports_created")
                .table(Exports::Table)
                .col(Exports::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_exports_created")
                .table(Exports::Table)
                .to_owned(),
        )
        .await?;
        for c in [Exports::SizeBytes, Exports::ContentSha256] {
            m.alter_table(
                Table::alter()
                    .table(Exports::Table)
                    .drop_column(c)
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(DerivedBlobs::Table).to_owned())
            .await
    }
}
