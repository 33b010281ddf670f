//! Evaluation and export end to end on real papers, on SQLite and
//! PostgreSQL: ground truth imported (bad paths, types and documents
//! refused), evaluation numbers that can be computed by hand from the
//! results, and exports (CSV_WIDE, CSV_LONG, JSON, codebook) downloaded
//! with the caller's token and parsed back.

use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, ok, refused};
use serde_json::{Value, json};

const PAPERS: [&str; 2] = ["PMC3321528.pdf", "PMC4183415.pdf"];

fn fields() -> Value {
    json!([
        { "name": "sample_size", "type": "INTEGER", "description": "Total number of participants randomised" },
        { "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"], "description": "Trial design" },
        { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"], "description": "Masking" },
        { "name": "arms", "type": "ARRAY", "fields": [
            { "name": "name", "type": "TEXT" }, { "name": "n", "type": "INTEGER", "unit": "participants" } ] },
    ])
}

/// Converted papers, an approved form, a finished run: (project, version, docs).
async fn extracted(srv: &TestServer, token: &str, org: &str) -> (String, String, Vec<String>) {
    let project = srv.project(token, org, "Evaluation").await;
    let docs = srv.converted_papers(token, &project, &PAPERS).await;
    let v = srv.approved_version(token, &project, fields()).await;
    srv.run_extraction(token, &project, &v).await;
    (project, v, docs)
}

/// The extracted value of `path` in document `doc`.
fn value_of(results: &Value, doc: &str, path: &str) -> Value {
    results["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["document"]["id"] == doc)
        .and_then(|e| {
            e["node"]["values"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["path"] == path)
                .map(|v| v["value"].clone())
        })
        .unwrap_or(Value::Null)
}

async fn download(srv: &TestServer, url: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let _ = srv;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

evistream_tests::dual_db_test!(evaluation_and_exports, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let a = srv.register("alice").await;
    let (project, version, docs) = extracted(&srv, &a.token, &a.org_id).await;
    let r = srv
        .op(
            Some(&a.token),
            "Results",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let results = ok(&r, "results").clone();

    // Bad ground truth is refused, naming what is wrong.
    let import = |records: Value| {
        let srv = &srv;
        let token = a.token.clone();
        let (project, version) = (project.clone(), version.clone());
        async move {
            srv.op(
                Some(&token),
                "ImportGroundTruth",
                json!({ "projectId": project, "formVersionId": version, "records": records }),
            )
            .await
        }
    };
    let r = import(json!([{ "documentId": docs[0], "values": { "sample_sizes": 3 } }])).await;
    refused(&r, "importGroundTruth", "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`sample_sizes`"),
        "{r}"
    );
    let r = import(json!([{ "documentId": docs[0], "values": { "sample_size": "many" } }])).await;
    refused(&r, "importGroundTruth", "BAD_USER_INPUT");
    let r = import(json!([{ "documentId": docs[0], "values": { "design": "factorial" } }])).await;
    refused(&r, "importGroundTruth", "BAD_USER_INPUT");
    let r = import(json!([{ "documentId": uuid::Uuid::now_v7().to_string(), "values": {} }])).await;
    refused(&r, "importGroundTruth", "NOT_FOUND");

    // Reference values built from the results, so the expected numbers are known:
    // sample_size right for doc 0 and wrong for doc 1, design wrong, blinding right.
    let s0 = value_of(&results, &docs[0], "sample_size");
    let s1 = value_of(&results, &docs[1], "sample_size");
    let d0 = value_of(&results, &docs[0], "design");
    let wrong_design = ["parallel", "crossover", "cluster"]
        .into_iter()
        .find(|o| d0 != json!(o))
        .unwrap();
    let b0 = value_of(&results, &docs[0], "blinding");
    let records = json!([
        { "documentId": docs[0], "values": { "sample_size": s0, "design": wrong_design, "blinding": b0 } },
        { "documentId": docs[1], "values": { "sample_size": s1.as_i64().unwrap_or(0) + 1000 } },
    ]);
    let r = import(records).await;
    assert_eq!(ok(&r, "importGroundTruth")["imported"], 2);
    let r = srv
        .op(
            Some(&a.token),
            "Evaluation",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let e = ok(&r, "evaluation");
    assert_eq!(
        e["overall"],
        json!({ "support": 4, "correct": 2.0, "accuracy": 0.5 }),
        "{e}"
    );
    let by_path = |p: &str| {
        e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_path("sample_size")["comparator"], "integer_exact");
    assert_eq!(by_path("sample_size")["accuracy"], 0.5);
    assert_eq!(by_path("design")["accuracy"], 0.0);
    assert_eq!(by_path("blinding")["accuracy"], 1.0);
    // A re-import replaces a document's record.
    let r = import(json!([{ "documentId": docs[1], "values": { "sample_size": s1 } }])).await;
    ok(&r, "importGroundTruth");
    let r = srv
        .op(
            Some(&a.token),
            "Evaluation",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    assert_eq!(ok(&r, "evaluation")["overall"]["correct"], 3.0);

    // Exports.
    let export = |format: &str| {
        let srv = &srv;
        let token = a.token.clone();
        let (project, version, format) = (project.clone(), version.clone(), format.to_owned());
        async move {
            let r = srv
                .op(
                    Some(&token),
                    "ExportResults",
                    json!({ "projectId": project, "formVersionId": version, "format": format }),
                )
                .await;
            ok(&r, "exportResults")["url"].as_str().unwrap().to_owned()
        }
    };
    let url = export("CSV_WIDE").await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/exports/"),
        "{url}"
    );
    let (status, _) = download(&srv, &url, None).await;
    assert_eq!(status, 401);
    let other = srv.register("mallory").await;
    let (status, _) = download(&srv, &url, Some(&other.token)).await;
    assert_eq!(status, 404, "another organization's export is not found");
    let (status, body) = download(&srv, &url, Some(&a.token)).await;
    assert_eq!(status, 200);
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..2], ["document_id", "filename"]);
    assert!(
        header.contains(&"sample_size".to_owned()) && header.contains(&"program_hash".to_owned())
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let col = header.iter().position(|h| h == "sample_size").unwrap();
    for row in &rows {
        let doc = &row[0];
        let want = value_of(&results, doc, "sample_size");
        let want = if want.is_null() {
            String::new()
        } else {
            want.to_string()
        };
        assert_eq!(&row[col], want, "the CSV says what the API says");
    }

    let (_, body) = download(&srv, &export("CSV_LONG").await, Some(&a.token)).await;
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    for h in [
        "path",
        "value",
        "status",
        "confidence",
        "quote",
        "page",
        "grounding",
        "program_hash",
        "extractor",
        "converter",
    ] {
        assert!(header.contains(&h.to_owned()), "{h} in {header:?}");
    }
    let long: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let total_values: usize = results["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(long.len(), total_values);
    let gcol = header.iter().position(|h| h == "grounding").unwrap();
    assert!(long.iter().any(|r| &r[gcol] == "EXACT"));

    let json_url = export("JSON").await;
    let (_, body) = download(&srv, &json_url, Some(&a.token)).await;
    let j: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["documents"].as_array().unwrap().len(), 2);
    assert_eq!(j["formVersion"]["id"], json!(version));
    let paths: Vec<&str> = j["codebook"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "sample_size",
            "design",
            "blinding",
            "arms",
            "arms[].name",
            "arms[].n"
        ]
    );
    let (status, body) = download(&srv, &format!("{json_url}/codebook.csv"), Some(&a.token)).await;
    assert_eq!(status, 200);
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let cb: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(cb.len(), 6);
    assert_eq!(&cb[1][0], "design");
    assert_eq!(&cb[1][3], "parallel; crossover; cluster");
    assert_eq!(&cb[5][5], "participants");

    // The signed links a browser follows: no header, minutes long, only
    // for the export they were made for.
    let r = srv
        .gql(
            Some(&a.token),
            "mutation($p: ID!, $v: ID!) { exportResults(projectId: $p, formVersionId: $v, format: CSV_WIDE) { url downloadUrl codebookDownloadUrl } }",
            json!({ "p": project, "v": version }),
        )
        .await;
    let links = ok(&r, "exportResults").clone();
    let signed = links["downloadUrl"].as_str().unwrap().to_owned();
    assert!(signed.contains("signature="), "{signed}");
    let (status, body) = download(&srv, &signed, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("document_id,filename"), "{body}");
    let (status, body) = download(&srv, links["codebookDownloadUrl"].as_str().unwrap(), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("sample_size"));
    // An altered signature, an extended expiry, another export's id, the
    // codebook's signature on the results: all refused, nothing served.
    let sig = signed.split("signature=").nth(1).unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &sig[..sig.len() - 1],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    let expires: i64 = signed
        .split("expires=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    let other_export = export("JSON").await;
    let other_id = other_export.rsplit('/').next().unwrap();
    let this_id = signed
        .split("/exports/")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .unwrap();
    let codebook_sig = links["codebookDownloadUrl"]
        .as_str()
        .unwrap()
        .split("signature=")
        .nth(1)
        .unwrap()
        .to_owned();
    for bad in [
        signed.replace(&sig, &flipped),
        signed.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        ),
        signed.replace(this_id, other_id),
        signed.replace(&sig, &codebook_sig),
        signed.replace(&sig, "zz"),
    ] {
        let (status, body) = download(&srv, &bad, None).await;
        assert_eq!(status, 403, "{bad}: {body}");
        assert!(!body.contains("document_id"), "{body}");
    }

    srv.stop().await;
    tdb.drop_db().await;
});
