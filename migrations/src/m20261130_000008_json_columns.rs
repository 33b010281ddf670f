//! The JSON columns (page ranges, warnings, models, evidence) become `jsonb`
//! on PostgreSQL, so the server reads them as typed JSON and a malformed
//! value is refused by the database. SQLite keeps its text (its JSON).

use sea_orm_migration::prelude::*;

/// (table, column) of every JSON column.
const COLUMNS: &[(&str, &str)] = &[
    ("document_texts", "pages"),
    ("document_texts", "warnings"),
    ("extraction_results", "models"),
    ("extraction_results", "warnings"),
    ("extraction_values", "evidence"),
];

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

async fn retype(manager: &SchemaManager<'_>, to: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for (table, column) in COLUMNS {
        db.execute_unprepared(&format!(
            "ALTER TABLE {table} ALTER COLUMN {column} TYPE {to} USING {column}::{to}"
        ))
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "jsonb").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "text").await
    }
}
