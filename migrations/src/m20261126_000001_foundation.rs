//! Accounts, tenancy, projects, jobs and the audit log.
//!
//! Ids are opaque text (UUIDv7) and timestamps are integer milliseconds since
//! the Unix epoch: both compare the same way on SQLite and PostgreSQL, which
//! the job queue's `run_at <= now` and lease checks rely on.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    Personal,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    OrganizationId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrganizationId,
    Name,
    Role,
    KeyHash,
    Prefix,
    CreatedByUserId,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrganizationId,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Documents {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    Filename,
    Sha256,
    Status,
    Error,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Forms {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    Name,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    ParentId,
    Kind,
    Payload,
    State,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseOwner,
    LeaseExpiresAt,
    Progress,
    Error,
    CancelRequested,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    OrganizationId,
    ActorUserId,
    ActorApiKeyId,
    Action,
    ObjectType,
    ObjectId,
    Details,
    CreatedAt,
}

fn id_pk<T: IntoIden>(col: T) -> ColumnDef {
    string_len(col, 36).primary_key().take()
}

fn fk(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(id_pk(Users::Id))
                .col(string_len_uniq(Users::Email, 254))
                .col(string_len_null(Users::Name, 200))
                .col(text(Users::PasswordHash))
                .col(big_integer(Users::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Organizations::Table)
                .col(id_pk(Organizations::Id))
                .col(string_len(Organizations::Name, 200))
                .col(boolean(Organizations::Personal))
                .col(big_integer(Organizations::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(id_pk(Memberships::Id))
                .col(string_len(Memberships::OrganizationId, 36))
                .col(string_len(Memberships::UserId, 36))
                .col(string_len(Memberships::Role, 16))
                .col(big_integer(Memberships::CreatedAt))
                .foreign_key(&mut fk(
                    Memberships::Table,
                    Memberships::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .foreign_key(&mut fk(
                    Memberships::Table,
                    Memberships::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_memberships_org_user")
                .table(Memberships::Table)
                .col(Memberships::OrganizationId)
                .col(Memberships::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_user")
                .table(Memberships::Table)
                .col(Memberships::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(id_pk(ApiKeys::Id))
                .col(string_len(ApiKeys::OrganizationId, 36))
                .col(string_len(ApiKeys::Name, 200))
                .col(string_len(ApiKeys::Role, 16))
                .col(string_len_uniq(ApiKeys::KeyHash, 64))
                .col(string_len(ApiKeys::Prefix, 16))
                .col(string_len_null(ApiKeys::CreatedByUserId, 36))
                .col(big_integer(ApiKeys::CreatedAt))
                .col(big_integer_null(ApiKeys::LastUsedAt))
                .col(big_integer_null(ApiKeys::RevokedAt))
                .foreign_key(&mut fk(
                    ApiKeys::Table,
                    ApiKeys::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(id_pk(RefreshTokens::Id))
                .col(string_len(RefreshTokens::UserId, 36))
                .col(string_len(RefreshTokens::FamilyId, 36))
                .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                .col(big_integer(RefreshTokens::CreatedAt))
                .col(big_integer(RefreshTokens::ExpiresAt))
                .col(big_integer_null(RefreshTokens::UsedAt))
                .col(big_integer_null(RefreshTokens::RevokedAt))
                .foreign_key(&mut fk(
                    RefreshTokens::Table,
                    RefreshTokens::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_refresh_tokens_family")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::FamilyId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Projects::Table)
                .col(id_pk(Projects::Id))
                .col(string_len(Projects::OrganizationId, 36))
                .col(string_len(Projects::Name, 200))
                .col(text_null(Projects::Description))
                .col(big_integer(Projects::CreatedAt))
                .col(big_integer(Projects::UpdatedAt))
                .foreign_key(&mut fk(
                    Projects::Table,
                    Projects::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_projects_org")
                .table(Projects::Table)
                .col(Projects::OrganizationId)
                .col(Projects::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Documents::Table)
                .col(id_pk(Documents::Id))
                .col(string_len(Documents::OrganizationId, 36))
                .col(string_len(Documents::ProjectId, 36))
                .col(string_len(Documents::Filename, 255))
                .col(string_len(Documents::Sha256, 64))
                .col(string_len(Documents::Status, 16))
                .col(text_null(Documents::Error))
                .col(big_integer(Documents::CreatedAt))
                .foreign_key(&mut fk(
                    Documents::Table,
                    Documents::ProjectId,
                    Projects::Table,
                    Projects::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_documents_project_sha256")
                .table(Documents::Table)
                .col(Documents::ProjectId)
                .col(Documents::Sha256)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Forms::Table)
                .col(id_pk(Forms::Id))
                .col(string_len(Forms::OrganizationId, 36))
                .col(string_len(Forms::ProjectId, 36))
                .col(string_len(Forms::Name, 200))
                .col(text_null(Forms::Description))
                .col(big_integer(Forms::CreatedAt))
                .foreign_key(&mut fk(
                    Forms::Table,
                    Forms::ProjectId,
                    Projects::Table,
                    Projects::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_forms_project")
                .table(Forms::Table)
                .col(Forms::ProjectId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(id_pk(Jobs::Id))
                .col(string_len(Jobs::OrganizationId, 36))
                .col(string_len_null(Jobs::ProjectId, 36))
                .col(string_len_null(Jobs::ParentId, 36))
                .col(string_len(Jobs::Kind, 100))
                .col(text(Jobs::Payload))
                .col(string_len(Jobs::State, 16))
                .col(integer(Jobs::Attempts))
                .col(integer(Jobs::MaxAttempts))
                .col(big_integer(Jobs::RunAt))
                .col(string_len_null(Jobs::LeaseOwner, 100))
                .col(big_integer_null(Jobs::LeaseExpiresAt))
                .col(double(Jobs::Progress))
                .col(text_null(Jobs::Error))
                .col(boolean(Jobs::CancelRequested))
                .col(big_integer(Jobs::CreatedAt))
                .col(big_integer(Jobs::UpdatedAt))
                .col(big_integer_null(Jobs::StartedAt))
                .col(big_integer_null(Jobs::FinishedAt))
                .foreign_key(&mut fk(
                    Jobs::Table,
                    Jobs::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_jobs_claim")
                .table(Jobs::Table)
                .col(Jobs::State)
                .col(Jobs::RunAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_jobs_org")
                .table(Jobs::Table)
                .col(Jobs::OrganizationId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_jobs_parent")
                .table(Jobs::Table)
                .col(Jobs::ParentId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(id_pk(AuditLog::Id))
                .col(string_len_null(AuditLog::OrganizationId, 36))
                .col(string_len_null(AuditLog::ActorUserId, 36))
                .col(string_len_null(AuditLog::ActorApiKeyId, 36))
                .col(string_len(AuditLog::Action, 64))
                .col(string_len(AuditLog::ObjectType, 32))
                .col(string_len(AuditLog::ObjectId, 36))
                .col(text_null(AuditLog::Details))
                .col(big_integer(AuditLog::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_org")
                .table(AuditLog::Table)
                .col(AuditLog::OrganizationId)
                .col(AuditLog::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
