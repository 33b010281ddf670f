//! A hostile tenant's own converter, big documents and derived blobs: each
//! test replays one attack scaled down, on SQLite and PostgreSQL, and
//! asserts the refusal (named by the invariant it breaks), the time, the
//! memory, and that another organization's `me` keeps answering (9 in
//! 10 within 100 ms, none past 1 s) while it runs.
//!
//! - a converter's document is checked against the contract's invariants
//!   and bounded counts: cells inside their row's stretch of text and not
//!   overlapping, runs of at least a character and few enough per page, a
//!   page count equal to the page ranges, bounded pages;
//! - a page image must be a PNG of the width asked and of a bounded size;
//! - fields are priced by what they build: a request loads a document's
//!   text once, and the response budget refuses fields as they go;
//! - at most one export mutation per request; an identical export is
//!   reused; the organization's derived blobs have a quota.

use std::time::{Duration, Instant};

use evistream::config::Config;
use evistream::jobs::JobRegistry;
use evistream_tests::attacks::{Probe, slowest_during};
use evistream_tests::fixtures;
use evistream_tests::{
    DbKind, Session, TestDb, TestServer, assert_code, dual_db_test, eventually, ok, rss_mib,
};
use serde_json::{Value, json};

fn manifest() -> String {
    "id = \"hostile-layout\"\nversion = \"1.0.0\"\nkind = \"pdf-converter\"\nwit = \"0.2.0\"\n\
     license = \"MIT\"\ndescription = \"breaks the layout invariants on request\"\n"
        .to_owned()
}

/// A node, an attacker with the hostile converter bound to a project, and
/// a bystander of another organization.
struct Stage {
    tdb: TestDb,
    srv: TestServer,
    attacker: Session,
    project: String,
    bystander: Session,
}

async fn stage(kind: DbKind, tune: impl FnOnce(&mut Config)) -> Stage {
    let tdb = TestDb::new(kind).await.unwrap();
    let mut c = tdb.config();
    tune(&mut c);
    let srv = TestServer::start(c, JobRegistry::new()).await.unwrap();
    let attacker = srv.register("attacker").await;
    let bystander = srv.register("bystander").await;
    let project = srv
        .project(&attacker.token, &attacker.org_id, "hostile")
        .await;
    srv.bind_own_converter(
        &attacker.token,
        &attacker.org_id,
        &project,
        &manifest(),
        fixtures::wasm("hostile_layout"),
    )
    .await;
    Stage {
        tdb,
        srv,
        attacker,
        project,
        bystander,
    }
}

impl Stage {
    fn probe(&self) -> Probe {
        Probe::Me {
            url: format!("{}/graphql", self.srv.base),
            token: self.bystander.token.clone(),
        }
    }

    /// Uploads a "PDF" asking the converter for `mode`; waits for the
    /// conversion's end; the document.
    async fn convert(&self, mode: &str) -> Value {
        let pdf = format!("%PDF-1.7\n% mode={mode}\n").into_bytes();
        let r = self
            .srv
            .upload(
                Some(&self.attacker.token),
                &self.project,
                &format!("{mode}.pdf"),
                pdf,
            )
            .await;
        let id = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        eventually(Duration::from_secs(120), || async {
            let r = self
                .srv
                .gql(
                    Some(&self.attacker.token),
                    "query($id: ID!) { document(id: $id) { id status error pageCount } }",
                    json!({ "id": id }),
                )
                .await;
            let d = ok(&r, "document").clone();
            let s = d["status"].as_str().unwrap_or_default();
            (s == "COMPLETED" || s == "FAILED").then_some(d)
        })
        .await
    }

    async fn stop(self) {
        self.srv.stop().await;
        self.tdb.drop_db().await;
    }
}

dual_db_test!(
    exclusive a_converters_document_that_breaks_an_invariant_is_refused_by_name,
    |kind| async move {
        let s = stage(kind, |_| {}).await;
        let cases = [
            ("wide-cells", "cells-in-rows"),
            ("overlapping-cells", "cells-in-rows"),
            ("tiny-runs", "runs-per-page"),
            ("empty-runs", "run-size"),
            ("page-count", "page-count"),
            ("many-pages", "page-limit"),
        ];
        let (docs, answers) = slowest_during(
            async {
                let mut docs = Vec::new();
                for (mode, _) in cases {
                    docs.push(s.convert(mode).await);
                }
                docs
            },
            s.probe(),
        )
        .await;
        for ((mode, invariant), d) in cases.iter().zip(&docs) {
            assert_eq!(d["status"], "FAILED", "{mode}: {d}");
            let error = d["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!("invariant {invariant} broken")),
                "{mode} names {invariant}: {error}"
            );
            // Nothing of it is kept: no page count to sign URLs with.
            assert!(d["pageCount"].is_null(), "{mode}: {d}");
        }
        answers.assert_kept_answering("the hostile conversions");
        // A valid document of the same converter converts.
        let good = s.convert("ok").await;
        assert_eq!(good["status"], "COMPLETED", "{good}");
        s.stop().await;
    }
);

dual_db_test!(
    a_fake_or_misshapen_page_image_is_refused,
    |kind| async move {
        let s = stage(kind, |_| {}).await;
        let mut sizes = Vec::new();
        for mode in ["fake-png", "wrong-width", "ok"] {
            let d = s.convert(mode).await;
            assert_eq!(d["status"], "COMPLETED", "{d}");
            let r = s
                .srv
                .gql(
                    Some(&s.attacker.token),
                    "query($id: ID!) { document(id: $id) { pageImageUrl(page: 1, width: 400) } }",
                    json!({ "id": d["id"] }),
                )
                .await;
            // Absolute: the server names its own address.
            let url = ok(&r, "document")["pageImageUrl"]
                .as_str()
                .unwrap()
                .to_owned();
            let rss = rss_mib();
            let started = Instant::now();
            for _ in 0..5 {
                let png = s
                    .srv
                    .http
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                sizes.push((
                    mode,
                    png.len(),
                    evistream::plugins::invariants::png_dimensions(&png),
                ));
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{mode}");
            assert!(
                rss_mib() - rss < 200.0,
                "{mode}: memory grew by {}",
                rss_mib() - rss
            );
            let r = s
                .srv
                .gql(
                    Some(&s.attacker.token),
                    "query($id: ID!) { document(id: $id) { warnings } }",
                    json!({ "id": d["id"] }),
                )
                .await;
            let warnings = ok(&r, "document")["warnings"].to_string();
            if mode == "ok" {
                assert!(!warnings.contains("could not be rendered"), "{warnings}");
            } else {
                assert!(
                    warnings.contains("invariant page-image broken"),
                    "{mode}: {warnings}"
                );
            }
        }
        // The fake and the misshapen ones answer the placeholder; the good one its PNG.
        let placeholder = evistream::documents::pages::PLACEHOLDER_PNG.len();
        for (mode, len, dims) in sizes {
            match mode {
                "ok" => assert_eq!(dims.map(|d| d.0), Some(400), "{mode}"),
                _ => assert_eq!(len, placeholder, "{mode}"),
            }
        }
        s.stop().await;
    }
);

dual_db_test!(
    exclusive fields_are_priced_by_the_bytes_they_build,
    |kind| async move {
        let s = stage(kind, |_| {}).await;
        let d = s.convert("big-text").await;
        assert_eq!(d["status"], "COMPLETED", "{d}");
        let id = d["id"].as_str().unwrap().to_owned();
        // 16 aliases of the small fields of a 20 MB text: one read of it.
        let small: String = (0..16)
            .map(|i| format!("w{i}: warnings c{i}: converter p{i}: pages {{ number }} "))
            .collect();
        let rss = rss_mib();
        let started = Instant::now();
        let (r, answers) = slowest_during(
            s.srv.gql(
                Some(&s.attacker.token),
                &format!("query($id: ID!) {{ document(id: $id) {{ {small} }} }}"),
                json!({ "id": id }),
            ),
            s.probe(),
        )
        .await;
        let document = ok(&r, "document");
        assert_eq!(document["w15"], json!([]));
        assert!(started.elapsed() < Duration::from_secs(5));
        let grew = rss_mib() - rss;
        assert!(grew < 120.0, "16 aliases of small fields grew memory by {grew} MiB");
        answers.assert_kept_answering("16 aliases on a big text");

        // Aliases of the text itself: refused field by field once the
        // response budget (32 MB) is spent, before they are built.
        let big: String = (0..8).map(|i| format!("t{i}: text ")).collect();
        let rss = rss_mib();
        let r = s
            .srv
            .gql(
                Some(&s.attacker.token),
                &format!("query($id: ID!) {{ document(id: $id) {{ {big} }} }}"),
                json!({ "id": id }),
            )
            .await;
        assert_code(&r, "RESPONSE_TOO_LARGE");
        let grew = rss_mib() - rss;
        assert!(grew < 150.0, "8 aliases of a 20 MB text grew memory by {grew} MiB");
        s.stop().await;
    }
);

dual_db_test!(
    exports_are_one_per_request_reused_when_identical_and_within_a_quota,
    |kind| async move {
        // Room for one export of this project's big codebook (about
        // 0.85 MB with its codebook CSV), not two.
        let s = stage(kind, |c| c.limits.max_derived_storage_mb = 1).await;
        let srv = &s.srv;
        let t = Some(s.attacker.token.as_str());
        let fields: Vec<Value> = (0..200)
            .map(|i| json!({ "name": format!("f{i}"), "type": "TEXT", "description": "d".repeat(2_000), "hints": "h".repeat(2_000) }))
            .collect();
        let version = srv
            .approved_version(&s.attacker.token, &s.project, json!(fields))
            .await;
        let export = |format: &str| {
            format!("exportResults(projectId: $p, formVersionId: $v, format: {format}) {{ url }}")
        };
        let vars = json!({ "p": s.project, "v": version });
        // Two in one request: refused, nothing written.
        let two = format!(
            "mutation($p: ID!, $v: ID!) {{ a: {} b: {} }}",
            export("JSON"),
            export("JSON")
        );
        let r = srv.gql(t, &two, vars.clone()).await;
        assert_code(&r, "BAD_USER_INPUT");
        // Nor across a batch.
        let one = |format: &str| format!("mutation($p: ID!, $v: ID!) {{ {} }}", export(format));
        let batch = json!([
            { "query": one("JSON"), "variables": vars },
            { "query": one("CSV_LONG"), "variables": vars },
        ]);
        let r: Value = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .bearer_auth(&s.attacker.token)
            .json(&batch)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{r}"
        );
        // One at a time: the same export twice is the same snapshot.
        let a = srv.gql(t, &one("JSON"), vars.clone()).await;
        let b = srv.gql(t, &one("JSON"), vars.clone()).await;
        assert_eq!(
            ok(&a, "exportResults")["url"],
            ok(&b, "exportResults")["url"]
        );
        // Another snapshot would pass the quota: QUOTA_EXCEEDED.
        let wide = srv.gql(t, &one("CSV_WIDE"), vars.clone()).await;
        assert_code(&wide, "QUOTA_EXCEEDED");
        // Another organization is not affected.
        let other = srv
            .project(&s.bystander.token, &s.bystander.org_id, "theirs")
            .await;
        let v = srv
            .approved_version(
                &s.bystander.token,
                &other,
                json!([{ "name": "n", "type": "INTEGER" }]),
            )
            .await;
        let r = srv
            .gql(
                Some(&s.bystander.token),
                &one("JSON"),
                json!({ "p": other, "v": v }),
            )
            .await;
        ok(&r, "exportResults");
        s.stop().await;
    }
);

dual_db_test!(
    a_component_declared_with_another_contract_version_is_refused,
    |kind| async move {
        let s = stage(kind, |_| {}).await;
        // The 0.2 converter declared as 0.1, and a 0.1 one declared as 0.2.
        for (wasm, declared) in [("hostile_layout", "0.1.0"), ("hostile_converter", "0.2.0")] {
            let manifest = format!(
                "id = \"liar-{}\"\nversion = \"1.0.0\"\nkind = \"pdf-converter\"\nwit = \"{declared}\"\nlicense = \"MIT\"\n",
                declared.replace('.', "-")
            );
            let r = s
                .srv
                .install_plugin(
                    &s.attacker.token,
                    &s.attacker.org_id,
                    &manifest,
                    fixtures::wasm(wasm),
                )
                .await;
            assert_code(&r, "PLUGIN_FAILED");
            assert_eq!(
                r["errors"][0]["extensions"]["reason"], "INCOMPATIBLE",
                "{r}"
            );
            let message = r["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("declares contract {declared}")),
                "{message}"
            );
        }
        s.stop().await;
    }
);
