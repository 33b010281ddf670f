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

/// Applies all pending migrations under a database-wide lock, so any
/// number of nodes may start at once on an empty or an old database: one
/// migrates, the others wait for the lock and then find the schema current.
///
/// PostgreSQL: a session advisory lock held on one pooled connection while
/// the migration runs on the others (the pool needs two connections); it
/// is released with the session if the process dies. SQLite: an exclusive
/// lock on a file beside the database (SQLite's own lock cannot be held by
/// one connection while another writes the schema).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => migrate_pg(db).await,
        _ => migrate_sqlite(db).await,
    }
}

/// Advisory lock key of the migrations: the first 8 bytes of
/// sha256("evistream:migrations"), fixed forever.
const MIGRATION_LOCK_KEY: i64 = 0x6576_6973_6d69_6772;

async fn migrate_pg(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sqlx::Row;
    let pool = db.get_postgres_connection_pool();
    let err = |what: &str, e: sea_orm::sqlx::Error| sea_orm::DbErr::Custom(format!("{what}: {e}"));
    let mut lock_conn = pool
        .acquire()
        .await
        .map_err(|e| err("connection for the migration lock", e))?;
    let got: bool = sea_orm::sqlx::query("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut *lock_conn)
        .await
        .map_err(|e| err("migration lock", e))?
        .try_get(0)
        .map_err(|e| err("migration lock", e))?;
    if !got {
        tracing::info!("another node is migrating the database; waiting for it");
        sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock_conn)
            .await
            .map_err(|e| err("migration lock", e))?;
    }
    let result = evistream_migrations::Migrator::up(db, None).await;
    // Unlock explicitly: the connection goes back to the pool, its session lives on.
    let unlocked = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await;
    if let Err(e) = unlocked {
        // A session we cannot unlock must not go back to the pool holding it.
        lock_conn.detach();
        tracing::warn!(error = %e, "migration lock not released; connection dropped");
    }
    result
}

async fn migrate_sqlite(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let file = sqlite_lock_path(db).map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| sea_orm::DbErr::Custom(format!("migration lock {}: {e}", path.display())))
    });
    let lock = match file {
        Some(f) => {
            let f = f?;
            // Blocking until the other process is done: off the async threads.
            Some(
                tokio::task::spawn_blocking(move || f.lock().map(|()| f))
                    .await
                    .map_err(|e| sea_orm::DbErr::Custom(format!("migration lock: {e}")))?
                    .map_err(|e| sea_orm::DbErr::Custom(format!("migration lock: {e}")))?,
            )
        }
        // In memory: one process by definition.
        None => None,
    };
    let result = evistream_migrations::Migrator::up(db, None).await;
    drop(lock);
    result
}

/// `<database file>.migrate.lock` of a file-backed SQLite database.
fn sqlite_lock_path(db: &DatabaseConnection) -> Option<std::path::PathBuf> {
    let opts = db.get_sqlite_connection_pool().connect_options();
    let file = opts.get_filename();
    let name = file.file_name()?.to_str()?;
    if name.is_empty() || name.starts_with(":memory:") || name.starts_with("file:") {
        return None;
    }
    Some(file.with_file_name(format!("{name}.migrate.lock")))
}

/// Cheap liveness check of the database.
pub async fn ping(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// True on PostgreSQL.
pub fn is_postgres(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}
