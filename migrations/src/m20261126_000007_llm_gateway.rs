//! The LLM gateway's response cache (per organization, keyed by adapter,
//! model, configuration and canonical request) and its accounting: one row
//! per call with tokens, cost and whether the cache answered.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LlmCache {
    Table,
    Key,
    OrganizationId,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LlmCalls {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    JobId,
    Adapter,
    Model,
    InputTokens,
    OutputTokens,
    CostUsd,
    Cached,
    Attempts,
    LatencyMs,
    Outcome,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LlmCache::Table)
                .col(string_len(LlmCache::Key, 64).primary_key())
                .col(string_len(LlmCache::OrganizationId, 36))
                .col(text(LlmCache::Response))
                .col(big_integer(LlmCache::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(LlmCalls::Table)
                .col(string_len(LlmCalls::Id, 36).primary_key())
                .col(string_len(LlmCalls::OrganizationId, 36))
                .col(string_len(LlmCalls::ProjectId, 36))
                .col(string_len_null(LlmCalls::JobId, 36))
                .col(string_len(LlmCalls::Adapter, 200))
                .col(string_len(LlmCalls::Model, 200))
                .col(big_integer(LlmCalls::InputTokens))
                .col(big_integer(LlmCalls::OutputTokens))
                .col(double(LlmCalls::CostUsd))
                .col(boolean(LlmCalls::Cached))
                .col(integer(LlmCalls::Attempts))
                .col(big_integer(LlmCalls::LatencyMs))
                .col(string_len(LlmCalls::Outcome, 40))
                .col(big_integer(LlmCalls::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_llm_calls_project")
                .table(LlmCalls::Table)
                .col(LlmCalls::ProjectId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
