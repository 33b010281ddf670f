//! `evistream plugin check` (the conformance check) on real components:
//! every first-party plugin passes; each broken fixture fails the check
//! that names what it does wrong, under its own limits (a plugin that
//! loops or allocates without end ends in TIMEOUT or OUT_OF_MEMORY, not a
//! hang); and installPlugin refuses what the static checks refuse, with the
//! same reason.

use std::time::{Duration, Instant};

use evistream::config::PluginsConfig;
use evistream::jobs::JobRegistry;
use evistream::plugins::conformance::{self, NamedPdf, Report, Verdict};
use evistream::plugins::runtime::engine::{self, EngineSettings};
use evistream::plugins::{PluginHost, PluginRuntime, builtin};
use evistream_tests::{DbKind, TestDb, TestServer, corpus_pdf, error_code, fixtures};
use serde_json::json;

fn host(dir: &std::path::Path) -> PluginHost {
    let engine = engine::shared(&EngineSettings::default()).expect("engine");
    PluginHost::new(
        PluginRuntime::with_engine(engine, &dir.join("cache")),
        PluginsConfig::default(),
    )
}

/// A manifest for fixture components: `kind`, `wit`, and short limits so a
/// plugin that loops is cut within a second.
fn manifest(id: &str, kind: &str, wit: &str, extra: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"0.1.0\"\nkind = \"{kind}\"\nwit = \"{wit}\"\n\
         license = \"Apache-2.0\"\n{extra}\n[limits]\nmemory_mb = 64\ntimeout_ms = 1000\n"
    )
}

fn verdict<'a>(r: &'a Report, name: &str) -> &'a conformance::Check {
    r.check(name)
        .unwrap_or_else(|| panic!("no check `{name}` in\n{}", r.text()))
}

fn assert_fails(r: &Report, name: &str, reason: &str) {
    let c = verdict(r, name);
    assert_eq!(
        c.verdict,
        Verdict::Fail,
        "{name} should fail:\n{}",
        r.text()
    );
    assert!(
        c.reason.contains(reason),
        "{name}: the reason should say {reason:?}:\n{}",
        r.text()
    );
    assert!(!r.passed);
}

#[tokio::test]
async fn every_first_party_plugin_passes() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let corpus = vec![NamedPdf {
        name: "PMC3580751.pdf".into(),
        bytes: corpus_pdf("PMC3580751.pdf"),
    }];
    let all = builtin::all();
    assert!(all.len() >= 6, "the built-in plugins are embedded");
    for b in all {
        let text = serde_json::to_string(&b.manifest).unwrap();
        let started = Instant::now();
        let r = conformance::check(&host, &text, b.wasm.to_vec(), &corpus).await;
        eprintln!(
            "{} checked in {} ms:\n{}",
            b.manifest.id,
            started.elapsed().as_millis(),
            r.text()
        );
        assert!(
            r.passed,
            "{} must pass its own check:\n{}",
            b.manifest.id,
            r.text()
        );
        let behaviour = r
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Pass)
            .count();
        assert!(
            behaviour > 6,
            "{}: behaviour checks ran, not only the static ones:\n{}",
            b.manifest.id,
            r.text()
        );
    }
}

#[tokio::test]
async fn a_converter_whose_pages_run_past_its_text_fails_page_ranges() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let r = conformance::check(
        &host(dir.path()),
        &manifest("broken-ranges", "pdf-converter", "0.2.0", ""),
        fixtures::wasm("broken_ranges"),
        &[],
    )
    .await;
    assert_eq!(verdict(&r, "world").verdict, Verdict::Pass);
    assert_fails(&r, "convert one-page.pdf", "page-ranges");
}

#[tokio::test]
async fn a_converter_that_imports_wasi_http_fails_imports_and_is_refused_at_install_alike() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let text = manifest("http-converter", "pdf-converter", "0.2.0", "");
    let wasm = fixtures::wasm("http_converter");
    let r = conformance::check(&host(dir.path()), &text, wasm.clone(), &[]).await;
    assert_eq!(verdict(&r, "manifest").verdict, Verdict::Pass);
    assert_fails(&r, "imports", "wasi:http");
    assert_eq!(verdict(&r, "world").verdict, Verdict::Skip);
    assert_eq!(
        verdict(&r, "behaviour").verdict,
        Verdict::Skip,
        "a refused component is not run"
    );

    // The server refuses it with the same reason.
    let db = TestDb::new(DbKind::Sqlite).await.unwrap();
    let c = TestServer::start(db.config(), JobRegistry::new())
        .await
        .unwrap();
    let s = c.register("check-parity").await;
    let resp = c.install_plugin(&s.token, &s.org_id, &text, wasm).await;
    assert_eq!(error_code(&resp), Some("PLUGIN_FAILED"), "{resp}");
    let message = resp["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        verdict(&r, "imports").reason,
        "install and check give the same reason"
    );
    // And a manifest the check refuses (an unknown licence) is refused at
    // install with the check's words.
    let bad = text.replace("Apache-2.0", "Apache-2");
    let r = conformance::check(
        &host(dir.path()),
        &bad,
        fixtures::wasm("broken_ranges"),
        &[],
    )
    .await;
    assert_fails(&r, "manifest", "SPDX");
    let resp = c
        .install_plugin(&s.token, &s.org_id, &bad, fixtures::wasm("broken_ranges"))
        .await;
    assert_eq!(error_code(&resp), Some("BAD_USER_INPUT"), "{resp}");
    assert_eq!(
        resp["errors"][0]["message"].as_str().unwrap_or_default(),
        verdict(&r, "manifest").reason
    );
    // Limits beyond the server's caps: refused by both.
    let greedy = text.replace("memory_mb = 64", "memory_mb = 100000");
    let r = conformance::check(
        &host(dir.path()),
        &greedy,
        fixtures::wasm("broken_ranges"),
        &[],
    )
    .await;
    assert_fails(&r, "limits", "plugins.max_memory_mb");
    let resp = c
        .install_plugin(
            &s.token,
            &s.org_id,
            &greedy,
            fixtures::wasm("broken_ranges"),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["message"].as_str().unwrap_or_default(),
        verdict(&r, "limits").reason
    );
    c.stop().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_converter_that_loops_ends_in_timeout_and_one_that_hoards_in_out_of_memory() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let started = Instant::now();
    let r = conformance::check(
        &host,
        &manifest("forever", "pdf-converter", "0.2.0", ""),
        fixtures::wasm("forever_converter"),
        &[],
    )
    .await;
    assert_fails(&r, "convert one-page.pdf", "TIMEOUT");
    assert_eq!(
        verdict(&r, "behaviour").verdict,
        Verdict::Skip,
        "one timeout ends the run"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the check ends under the plugin's own limit"
    );
    let r = conformance::check(
        &host,
        &manifest("greedy", "pdf-converter", "0.2.0", ""),
        fixtures::wasm("greedy_converter"),
        &[],
    )
    .await;
    assert_fails(&r, "convert one-page.pdf", "OUT_OF_MEMORY");
}

#[tokio::test]
async fn an_extractor_that_invents_a_path_fails_value_paths() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let r = conformance::check(
        &host(dir.path()),
        &manifest("stray", "form-extractor", "0.1.0", ""),
        fixtures::wasm("stray_extractor"),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&r, "extract").verdict,
        Verdict::Pass,
        "{}",
        r.text()
    );
    assert_fails(&r, "value-paths", "not.in.program");
}

#[tokio::test]
async fn an_adapter_that_calls_a_host_outside_the_allow_list_fails_outbound_hosts() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let caps = "[capabilities]\noutbound_hosts = [\"*\"]\nconfig_keys = [\"baseUrl\", \"model\"]\n\
                secrets = [{ name = \"apiKey\", header = \"authorization\", format = \"Bearer {secret}\" }]";
    let r = conformance::check(
        &host(dir.path()),
        &manifest("leaky", "llm-adapter", "0.1.0", caps),
        fixtures::wasm("leaky_adapter"),
        &[],
    )
    .await;
    assert_fails(&r, "outbound-hosts", "exfil.example");
    assert_fails(&r, "rate-limited", "CAPABILITY_DENIED");
    assert_fails(&r, "secret", "no request");
}

#[tokio::test]
async fn a_corpus_paper_given_with_pdf_is_converted_too() {
    let _g = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let b = builtin::get(builtin::DEFAULT_CONVERTER).unwrap();
    let name = "PMC4709985.pdf";
    let pdf = NamedPdf {
        name: name.into(),
        bytes: corpus_pdf(name),
    };
    let r = conformance::check(
        &host(dir.path()),
        &serde_json::to_string(&b.manifest).unwrap(),
        b.wasm.to_vec(),
        &[pdf],
    )
    .await;
    let c = verdict(&r, &format!("convert {name}"));
    assert_eq!(c.verdict, Verdict::Pass, "{}", r.text());
    assert!(c.reason.contains("pages"), "{}", c.reason);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["passed"], json!(true));
    assert!(json["checks"].as_array().unwrap().iter().all(
        |c| c["name"].is_string() && ["PASS", "SKIP"].contains(&c["verdict"].as_str().unwrap())
    ));
}
