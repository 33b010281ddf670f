//! Persistence: the connection (SQLite or PostgreSQL) and the sea-orm entities.

pub mod entities;
pub mod types;

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

/// Milliseconds since the Unix epoch: the one timestamp representation in the database.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Opens the pool. SQLite gets WAL, a busy timeout and foreign keys on, so
/// API requests and workers can write from several connections.
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx logs every statement at INFO otherwise.
        .sqlx_logging(false)
        // A connection killed by the server (restart, failover) is noticed
        // before use instead of failing a request.
        .test_before_acquire(true);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    }
    let db = Database::connect(opts).await?;
    Ok(db)
}

/// Begins a transaction that will write. On SQLite it takes the write lock
/// up front (`BEGIN IMMEDIATE`), so it waits under the busy timeout instead
/// of failing with SQLITE_BUSY when it upgrades a read snapshot that another
/// writer has meanwhile changed; on PostgreSQL it is a plain `BEGIN`.
pub async fn write_txn(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::TransactionTrait;
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    db.begin_with_options(sea_orm::TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: sqlite.then_some(sea_orm::SqliteTransactionMode::Immediate),
    })
    .await
}

/// Applies all pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    evistream_migrations::Migrator::up(db, None).await
}

/// Cheap liveness check of the database.
pub async fn ping(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// True on PostgreSQL.
pub fn is_postgres(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}
