//! Fencing and node leases for scale-out.
//!
//! - `jobs.lease_token`: a fencing token, incremented by every claim. A
//!   unit's completion writes are conditional on (owner, token, unexpired
//!   lease), so a worker that was frozen past its lease writes nothing.
//! - `ix_jobs_finished`: retention prunes finished jobs by `finished_at`.
//! - `node_leases`: named leases a node holds for a while (the one node
//!   that reports queue depth and prunes old jobs), on both databases
//!   without an extra connection per node.

use sea_orm_migration::{prelude::*, schema::*};

/// The migration.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    LeaseToken,
    FinishedAt,
}

#[derive(DeriveIden)]
enum NodeLeases {
    Table,
    Name,
    Owner,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .add_column(big_integer(Jobs::LeaseToken).default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_jobs_finished")
                .table(Jobs::Table)
                .col(Jobs::FinishedAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(NodeLeases::Table)
                .col(string_len(NodeLeases::Name, 64).primary_key())
                .col(string_len(NodeLeases::Owner, 128))
                .col(big_integer(NodeLeases::ExpiresAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(NodeLeases::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("ix_jobs_finished")
                .table(Jobs::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .drop_column(Jobs::LeaseToken)
                .to_owned(),
        )
        .await
    }
}
