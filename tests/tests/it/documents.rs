//! Documents end to end: upload by the GraphQL multipart spec, conversion
//! through the built-in converter plugin as a job, the text with page
//! ranges, download, deduplication, delete, and every bad upload refused
//! with its code (empty, not a PDF, truncated, oversize, another
//! organization's project, no CSRF-safe header, a VIEWER).

use std::path::PathBuf;
use std::time::Duration;

use evistream::db::entities::document;
use evistream::jobs::JobRegistry;
use evistream_tests::ws::Subscription;
use evistream_tests::{DbKind, TestDb, TestServer, assert_code, eventually, ops};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

fn corpus_pdf(name: &str) -> Vec<u8> {
    let p = ops::repo_root().join("../shared/corpus/rct/pdf").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("corpus PDF {}: {e}", p.display()))
}

/// Page count from the corpus manifest (the publisher's number of pages).
fn corpus_pages(pmcid: &str) -> i64 {
    let p: PathBuf = ops::repo_root().join("../shared/corpus/rct/manifest.csv");
    let text = std::fs::read_to_string(p).expect("manifest.csv");
    let line = text
        .lines()
        .find(|l| l.starts_with(pmcid))
        .expect("pmcid in manifest");
    // pmcid,title,journal,year,doi,pages,…; titles may hold commas, so count from the DOI.
    let fields: Vec<&str> = line.split(',').collect();
    let doi = fields
        .iter()
        .position(|f| f.starts_with("10."))
        .expect("doi");
    fields[doi + 1].parse().expect("pages")
}

async fn document(srv: &TestServer, token: &str, id: &str) -> Value {
    let r = srv.op(Some(token), "Document", json!({ "id": id })).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["document"].clone()
}

async fn wait_converted(srv: &TestServer, token: &str, id: &str) -> Value {
    eventually(Duration::from_secs(120), || async {
        let d = document(srv, token, id).await;
        (d["status"] == "COMPLETED" || d["status"] == "FAILED").then_some(d)
    })
    .await
}

async fn start(db: DbKind) -> (TestDb, TestServer) {
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    config.limits.max_upload_bytes = 2 << 20;
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    (tdb, srv)
}

evistream_tests::dual_db_test!(upload_converts_a_real_paper, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let owner = srv.register("owner").await;
    let project = srv.project(&owner.token, &owner.org_id, "Trials").await;
    let pdf = corpus_pdf("PMC3580751.pdf");
    let r = srv
        .upload(Some(&owner.token), &project, "PMC3580751.pdf", pdf.clone())
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let up = &r["data"]["uploadDocument"];
    assert_eq!(up["filename"], "PMC3580751.pdf");
    assert_eq!(up["status"], "PENDING");
    assert_eq!(
        up["sha256"],
        "c3bc70aa103f79a25fa6dca88ad925dc7e66645b39c28a456bd2606b44539529"
    );
    let id = up["id"].as_str().unwrap().to_owned();
    let job = up["job"]["id"].as_str().unwrap().to_owned();

    // Progress reaches subscribers until the job succeeds.
    let mut sub = Subscription::start(
        &srv.ws_url(),
        Some(&owner.token),
        &ops::operation("JobUpdated"),
        json!({ "id": job }),
    )
    .await
    .unwrap();
    let events = sub.collect(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        events.last().unwrap()["data"]["jobUpdated"]["state"],
        "SUCCEEDED",
        "{events:?}"
    );

    let d = wait_converted(&srv, &owner.token, &id).await;
    assert_eq!(d["status"], "COMPLETED", "{d}");
    assert!(d["error"].is_null());
    assert_eq!(d["pageCount"], corpus_pages("PMC3580751"));
    let text = d["text"].as_str().unwrap();
    let chars = text.chars().count() as i64;
    assert!(chars > 10_000, "a whole paper: {chars} characters");
    assert!(
        text.to_lowercase().contains("ventilator"),
        "the paper's subject is in the text"
    );
    let pages = d["pages"].as_array().unwrap();
    assert_eq!(pages.len() as i64, corpus_pages("PMC3580751"));
    let mut prev = 0;
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p["number"], i as i64 + 1);
        let (s, e) = (p["start"].as_i64().unwrap(), p["end"].as_i64().unwrap());
        assert!(s >= prev && s <= e && e <= chars, "page {i}: {p}");
        prev = e;
    }

    // Same bytes again: the same document, no new job.
    let again = srv
        .upload(Some(&owner.token), &project, "copy.pdf", pdf.clone())
        .await;
    assert_eq!(again["data"]["uploadDocument"]["id"], json!(id), "{again}");
    assert_eq!(again["data"]["uploadDocument"]["job"]["id"], json!(job));
    let p = srv
        .op(Some(&owner.token), "Project", json!({ "id": project }))
        .await;
    assert_eq!(p["data"]["project"]["documents"]["totalCount"], 1);

    // Download through the API with the same token.
    let url = format!("{}/documents/{id}/original", srv.base);
    let resp = srv
        .http
        .get(&url)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), pdf);
    let resp = srv.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let stranger = srv.register("stranger").await;
    let resp = srv
        .http
        .get(&url)
        .bearer_auth(&stranger.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let r = srv
        .op(Some(&stranger.token), "Document", json!({ "id": id }))
        .await;
    assert_code(&r, "NOT_FOUND");

    // Delete: rows and blob gone.
    let row = document::Entity::find_by_id(id.as_str())
        .one(&srv.node.app.db)
        .await
        .unwrap()
        .unwrap();
    let op = srv.node.app.blobs.operator();
    assert!(op.exists(&row.blob_key).await.unwrap());
    let r = srv
        .op(Some(&stranger.token), "DeleteDocument", json!({ "id": id }))
        .await;
    assert_code(&r, "NOT_FOUND");
    let r = srv
        .op(Some(&owner.token), "DeleteDocument", json!({ "id": id }))
        .await;
    assert_eq!(r["data"]["deleteDocument"], true, "{r}");
    assert!(!op.exists(&row.blob_key).await.unwrap());
    let r = srv
        .op(Some(&owner.token), "Document", json!({ "id": id }))
        .await;
    assert_code(&r, "NOT_FOUND");
    let resp = srv
        .http
        .get(&url)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(
    bad_uploads_are_refused_with_their_code,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Trials").await;
        let t = Some(owner.token.as_str());

        let r = srv.upload(t, &project, "empty.pdf", Vec::new()).await;
        assert_code(&r, "BAD_USER_INPUT");
        let r = srv
            .upload(
                t,
                &project,
                "notes.pdf",
                b"just some text, not a PDF".to_vec(),
            )
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not a PDF"),
            "{r}"
        );
        let r = srv.upload(t, &project, "tiny.pdf", b"%PD".to_vec()).await;
        assert_code(&r, "BAD_USER_INPUT");

        // Over the configured 2 MiB limit.
        let mut big = b"%PDF-1.7\n".to_vec();
        big.resize(3 << 20, b' ');
        let r = srv.upload(t, &project, "big.pdf", big).await;
        assert_code(&r, "PAYLOAD_TOO_LARGE");

        // Another organization's project: indistinguishable from a missing one.
        let other = srv.register("other").await;
        let theirs = srv.project(&other.token, &other.org_id, "Theirs").await;
        let pdf = corpus_pdf("PMC3580751.pdf");
        let r = srv.upload(t, &theirs, "x.pdf", pdf.clone()).await;
        assert_code(&r, "NOT_FOUND");
        let missing = srv
            .upload(t, &uuid::Uuid::now_v7().to_string(), "x.pdf", pdf.clone())
            .await;
        assert_eq!(r["errors"][0]["message"], missing["errors"][0]["message"]);

        // A VIEWER may not upload.
        let viewer = srv.register("viewer").await;
        let add = srv
            .op(
                t,
                "AddMember",
                json!({ "organizationId": owner.org_id, "email": viewer.email, "role": "VIEWER" }),
            )
            .await;
        assert!(add["errors"].is_null(), "{add}");
        let r = srv
            .upload(Some(&viewer.token), &project, "x.pdf", pdf.clone())
            .await;
        assert_code(&r, "FORBIDDEN");
        let r = srv.upload(None, &project, "x.pdf", pdf.clone()).await;
        assert_code(&r, "UNAUTHENTICATED");

        // Multipart without a header that forces a CORS preflight: refused.
        let form = reqwest::multipart::Form::new()
        .text("operations", json!({ "query": ops::operation("UploadDocument"), "variables": { "projectId": project, "file": null } }).to_string())
        .text("map", json!({ "0": ["variables.file"] }).to_string())
        .part("0", reqwest::multipart::Part::bytes(pdf.clone()).file_name("x.pdf"));
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_code(&body, "BAD_USER_INPUT");

        // Nothing was stored by any of these.
        let p = srv.op(t, "Project", json!({ "id": project })).await;
        assert_eq!(p["data"]["project"]["documents"]["totalCount"], 0, "{p}");

        // A truncated PDF is accepted and its conversion fails with a reason.
        let truncated = pdf[..pdf.len() / 3].to_vec();
        let r = srv.upload(t, &project, "truncated.pdf", truncated).await;
        assert!(r["errors"].is_null(), "{r}");
        let id = r["data"]["uploadDocument"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let d = wait_converted(&srv, &owner.token, &id).await;
        assert_eq!(d["status"], "FAILED", "{d}");
        assert!(!d["error"].as_str().unwrap().is_empty());
        assert!(d["text"].is_null());
        // The handler marks the document before the worker ends the job: wait
        // for the job's own end rather than read it in between.
        let job = r["data"]["uploadDocument"]["job"]["id"].as_str().unwrap();
        let j = srv.job_end(&owner.token, job).await;
        assert_eq!(j["state"], "FAILED", "{j}");
        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    deleting_a_project_removes_its_documents_and_blobs,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let owner = srv.register("owner").await;
        let project = srv.project(&owner.token, &owner.org_id, "Doomed").await;
        let r = srv
            .upload(
                Some(&owner.token),
                &project,
                "paper.pdf",
                corpus_pdf("PMC4709985.pdf"),
            )
            .await;
        let id = r["data"]["uploadDocument"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_converted(&srv, &owner.token, &id).await;
        let row = document::Entity::find_by_id(id.as_str())
            .one(&srv.node.app.db)
            .await
            .unwrap()
            .unwrap();
        let op = srv.node.app.blobs.operator();
        assert!(op.exists(&row.blob_key).await.unwrap());
        let r = srv
            .op(
                Some(&owner.token),
                "DeleteProject",
                json!({ "id": project }),
            )
            .await;
        assert_eq!(r["data"]["deleteProject"], true, "{r}");
        assert!(
            !op.exists(&row.blob_key).await.unwrap(),
            "the PDF went with its project"
        );
        assert!(
            document::Entity::find_by_id(id.as_str())
                .one(&srv.node.app.db)
                .await
                .unwrap()
                .is_none()
        );
        let r = srv
            .op(Some(&owner.token), "Document", json!({ "id": id }))
            .await;
        assert_code(&r, "NOT_FOUND");
        srv.stop().await;
        tdb.drop_db().await;
    }
);
