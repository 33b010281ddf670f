//! Blob storage on a real S3-compatible server (moto on loopback, started
//! by the test): readiness, upload → conversion → download → delete of a real
//! paper, with the PDF really in the bucket; and readiness failing when the
//! store goes away. The local filesystem backend is exercised by every other
//! document test.

use std::time::Duration;

use evistream::db::entities::document;
use evistream::jobs::JobRegistry;
use evistream_tests::s3::S3Server;
use evistream_tests::{DbKind, TestDb, TestServer, eventually, ops};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

evistream_tests::dual_db_test!(documents_live_in_s3, |db: DbKind| async move {
    let s3 = S3Server::start().await.unwrap();
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    s3.configure(&mut config);
    // An independent client of the same bucket, to look behind the server.
    let bucket = evistream::storage::BlobStore::open(&config).unwrap();
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let ready: Value = srv
        .http
        .get(format!("{}/readyz", srv.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["components"]["blobs"]["status"], "ok", "{ready}");

    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "S3 trials").await;
    let pdf =
        std::fs::read(ops::repo_root().join("../shared/corpus/rct/pdf/PMC3580751.pdf")).unwrap();
    let r = srv
        .upload(Some(&owner.token), &project, "paper.pdf", pdf.clone())
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let id = r["data"]["uploadDocument"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The object is in the bucket, under the document's key.
    let row = document::Entity::find_by_id(id.as_str())
        .one(&srv.node.app.db)
        .await
        .unwrap()
        .unwrap();
    let stored = bucket.operator().read(&row.blob_key).await.unwrap();
    assert_eq!(
        stored.to_vec(),
        pdf,
        "object {} in the bucket",
        row.blob_key
    );

    // Converted from S3.
    let d = eventually(Duration::from_secs(120), || async {
        let r = srv
            .op(Some(&owner.token), "Document", json!({ "id": id }))
            .await;
        let d = r["data"]["document"].clone();
        (d["status"] == "COMPLETED" || d["status"] == "FAILED").then_some(d)
    })
    .await;
    assert_eq!(d["status"], "COMPLETED", "{d}");

    // Downloaded through the API.
    let resp = srv
        .http
        .get(format!("{}/documents/{id}/original", srv.base))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), pdf);

    // Deleted from the bucket.
    let r = srv
        .op(Some(&owner.token), "DeleteDocument", json!({ "id": id }))
        .await;
    assert_eq!(r["data"]["deleteDocument"], true, "{r}");
    assert!(!bucket.operator().exists(&row.blob_key).await.unwrap());
    srv.stop().await;
    tdb.drop_db().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_store_is_gone() {
    let _shared = evistream_tests::shared().await;
    let mut s3 = S3Server::start().await.unwrap();
    let tdb = TestDb::new(DbKind::Sqlite).await.unwrap();
    let mut config = tdb.config();
    s3.configure(&mut config);
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let resp = srv
        .http
        .get(format!("{}/readyz", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s3.stop();
    let resp = srv
        .http
        .get(format!("{}/readyz", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["components"]["blobs"]["status"], "error", "{body}");
    assert_eq!(body["components"]["database"]["status"], "ok");
    srv.stop().await;
}
