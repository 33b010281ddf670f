//! Plugins installed by organizations (the component itself lives in the
//! blob store under its sha256) and each project's plugin binding, with the
//! LLM secrets sealed by the server's key.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Plugins {
    Table,
    Id,
    OrganizationId,
    PluginId,
    Version,
    Kind,
    License,
    Description,
    Manifest,
    Sha256,
    SizeBytes,
    BlobKey,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProjectPlugins {
    Table,
    ProjectId,
    OrganizationId,
    ConverterId,
    ConverterVersion,
    ExtractorId,
    ExtractorVersion,
    LlmAdapterId,
    LlmAdapterVersion,
    LlmConfig,
    LlmAllowedHosts,
    LlmSecrets,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Plugins::Table)
                .col(string_len(Plugins::Id, 36).primary_key())
                .col(string_len(Plugins::OrganizationId, 36))
                .col(string_len(Plugins::PluginId, 64))
                .col(string_len(Plugins::Version, 50))
                .col(string_len(Plugins::Kind, 20))
                .col(string_len(Plugins::License, 200))
                .col(text(Plugins::Description))
                .col(text(Plugins::Manifest))
                .col(string_len(Plugins::Sha256, 64))
                .col(big_integer(Plugins::SizeBytes))
                .col(string_len(Plugins::BlobKey, 255))
                .col(string_len_null(Plugins::CreatedBy, 36))
                .col(big_integer(Plugins::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("plugins_org_id_version")
                .table(Plugins::Table)
                .col(Plugins::OrganizationId)
                .col(Plugins::PluginId)
                .col(Plugins::Version)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectPlugins::Table)
                .col(string_len(ProjectPlugins::ProjectId, 36).primary_key())
                .col(string_len(ProjectPlugins::OrganizationId, 36))
                .col(string_len_null(ProjectPlugins::ConverterId, 64))
                .col(string_len_null(ProjectPlugins::ConverterVersion, 50))
                .col(string_len_null(ProjectPlugins::ExtractorId, 64))
                .col(string_len_null(ProjectPlugins::ExtractorVersion, 50))
                .col(string_len_null(ProjectPlugins::LlmAdapterId, 64))
                .col(string_len_null(ProjectPlugins::LlmAdapterVersion, 50))
                .col(text(ProjectPlugins::LlmConfig))
                .col(text(ProjectPlugins::LlmAllowedHosts))
                .col(text_null(ProjectPlugins::LlmSecrets))
                .col(big_integer(ProjectPlugins::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectPlugins::Table, ProjectPlugins::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
