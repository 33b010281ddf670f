//! Typed columns read back as their types or fail loudly: a malformed JSON
//! value is refused by PostgreSQL (`jsonb`) when written and is an error
//! when read on SQLite, never an empty list; a stored enum outside its
//! values is an error, never a default.

use evistream::db::entities::{extraction_result, job};
use evistream_tests::{DbKind, TestDb, dual_db_test};
use sea_orm::{ConnectionTrait, EntityTrait};

const ROW: &str = "INSERT INTO extraction_results (id, organization_id, project_id, run_id, \
    document_id, form_version_id, converter, models, warnings, created_at) VALUES ";

dual_db_test!(
    malformed_json_and_unknown_states_fail_loudly,
    |kind| async move {
        let tdb = TestDb::new(kind).await.unwrap();
        let db = evistream::db::connect(&tdb.config().effective_database_url(), 2)
            .await
            .unwrap();
        evistream::db::migrate(&db).await.unwrap();
        db.execute_unprepared(&format!(
            "{ROW} ('good', 'o', 'p', 'r', 'd', 'v', 'c', '[\"m1\"]', '[]', 1)"
        ))
        .await
        .unwrap();
        let good = extraction_result::Entity::find_by_id("good")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(good.models.0, ["m1"]);
        assert!(good.warnings.0.is_empty());

        let bad = db
            .execute_unprepared(&format!(
                "{ROW} ('bad', 'o', 'p', 'r2', 'd', 'v', 'c', 'not json', '[]', 1)"
            ))
            .await;
        match kind {
            DbKind::Postgres => {
                let e = bad.expect_err("jsonb refuses the value").to_string();
                assert!(e.contains("json"), "{e}");
            }
            DbKind::Sqlite => {
                bad.unwrap();
                let read = extraction_result::Entity::find_by_id("bad").one(&db).await;
                assert!(
                    read.is_err(),
                    "read as an error, not an empty list: {read:?}"
                );
            }
        }

        db.execute_unprepared("INSERT INTO organizations (id, name, personal, created_at) VALUES ('o', 'o', false, 0)")
        .await
        .unwrap();
        db.execute_unprepared(
            "INSERT INTO jobs (id, organization_id, kind, payload, state, attempts, \
         max_attempts, progress, cancel_requested, run_at, created_at, updated_at) \
         VALUES ('j', 'o', 'k', '{}', 'exploded', 0, 1, 0, false, 0, 0, 0)",
        )
        .await
        .unwrap();
        let read = job::Entity::find_by_id("j").one(&db).await;
        assert!(read.is_err(), "an unknown state is an error: {read:?}");
        tdb.drop_db().await;
    }
);
