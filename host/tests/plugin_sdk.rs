//! The third-party plugin path, end to end, with the real binary: for each
//! kind, `evistream plugin new` into a temporary folder, the crate's own
//! native test, `cargo build --release --target wasm32-wasip2` (a standalone
//! crate that needs no file of this repository but the SDK), `evistream
//! plugin check` passing, then `installPlugin` into an organization, a
//! binding, and the plugin at work: a corpus PDF converted through the
//! converter, an extraction run through the extractor, and the LLM
//! connection checked through the adapter against a local fake provider.
//!
//! The templates' builds share one target dir under ~/.cache (never the
//! repository), so after the first run they are incremental.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use evistream::jobs::JobRegistry;
use evistream_tests::llm::FakeLlm;
use evistream_tests::{DbKind, TestDb, TestServer, corpus_pdf, ok};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_evistream");

fn target_dir() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(home).join(".cache/evistream/template-target")
}

/// Runs `cmd`, failing with its output when it fails; returns stdout.
fn run(cmd: &mut Command, what: &str) -> String {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// cargo for the new crate: none of this build's flags or target dir.
fn cargo(dir: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(dir).env("CARGO_TARGET_DIR", target_dir());
    for v in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MANIFEST_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

/// `plugin new` → native test → wasm build → `plugin check`; the
/// component's bytes and its manifest's text.
fn scaffold(kind: &str, name: &str, root: &Path) -> (Vec<u8>, String) {
    let dir = root.join(name);
    let out = run(
        Command::new(BIN)
            .args(["plugin", "new", "--kind", kind, name, "--dir"])
            .arg(&dir),
        &format!("plugin new --kind {kind}"),
    );
    assert!(
        out.contains("plugin check"),
        "it says what to run next: {out}"
    );
    for f in ["Cargo.toml", "src/lib.rs", "manifest.toml", "README.md"] {
        assert!(dir.join(f).is_file(), "{kind}: {f} written");
    }
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(!toml.contains("{{"), "every placeholder is filled: {toml}");
    run(
        cargo(&dir).args(["test", "--quiet"]),
        &format!("{kind}: cargo test"),
    );
    run(
        cargo(&dir).args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"]),
        &format!("{kind}: cargo build --target wasm32-wasip2"),
    );
    let wasm = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let data = tempfile::tempdir().unwrap();
    let report = run(
        Command::new(BIN)
            .args(["plugin", "check", "--json", "--manifest"])
            .arg(dir.join("manifest.toml"))
            .arg(&wasm)
            .env("EVISTREAM_DATA_DIR", data.path()),
        &format!("{kind}: plugin check"),
    );
    let report: Value = serde_json::from_str(&report).expect("the report is JSON");
    assert_eq!(report["passed"], json!(true), "{report:#}");
    let bytes = std::fs::read(&wasm).unwrap();
    eprintln!("{kind}: {} bytes of wasm", bytes.len());
    (
        bytes,
        std::fs::read_to_string(dir.join("manifest.toml")).unwrap(),
    )
}

async fn install(
    srv: &TestServer,
    token: &str,
    org: &str,
    manifest: &str,
    wasm: Vec<u8>,
) -> String {
    let r = srv.install_plugin(token, org, manifest, wasm).await;
    ok(&r, "installPlugin")["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_of_each_kind_goes_from_plugin_new_to_a_bound_project() {
    let root = tempfile::tempdir().unwrap();
    let converter = scaffold("converter", "my-converter", root.path());
    let extractor = scaffold("extractor", "my-extractor", root.path());
    let adapter = scaffold("llm-adapter", "my-adapter", root.path());

    let fake = FakeLlm::start().await;
    let tdb = TestDb::new(DbKind::Sqlite).await.unwrap();
    let mut config = tdb.config();
    config.plugins.allow_private_networks = true; // the fake provider is on loopback
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let a = srv.register("plugin-dev").await;
    let project = srv
        .project(&a.token, &a.org_id, "Third-party plugins")
        .await;

    // The converter converts a corpus paper.
    let id = install(&srv, &a.token, &a.org_id, &converter.1, converter.0).await;
    assert_eq!(id, "my-converter");
    let r = srv
        .op(
            Some(&a.token),
            "ConfigureProjectPlugins",
            json!({ "projectId": project, "converter": id }),
        )
        .await;
    assert_eq!(
        ok(&r, "configureProjectPlugins")["converter"]["id"],
        "my-converter"
    );
    let name = "PMC3580751.pdf";
    let r = srv
        .upload(Some(&a.token), &project, name, corpus_pdf(name))
        .await;
    let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
    srv.wait_converted(&a.token, &doc, name).await;
    let r = srv
        .op(Some(&a.token), "Document", json!({ "id": doc }))
        .await;
    let d = ok(&r, "document");
    assert!(d["pageCount"].as_u64().unwrap() > 1, "{}", d["pageCount"]);
    assert!(
        d["text"].as_str().unwrap().len() > 5_000,
        "the paper's text came through the third-party converter"
    );

    // The extractor runs over it.
    let id = install(&srv, &a.token, &a.org_id, &extractor.1, extractor.0).await;
    let r = srv
        .op(
            Some(&a.token),
            "ConfigureProjectPlugins",
            json!({ "projectId": project, "extractor": id }),
        )
        .await;
    assert_eq!(
        ok(&r, "configureProjectPlugins")["extractor"]["id"],
        "my-extractor"
    );
    let version = srv
        .approved_version(
            &a.token,
            &project,
            json!([
                {"name": "randomised", "type": "TEXT", "description": "How participants were randomised"},
                {"name": "participants", "type": "INTEGER"}
            ]),
        )
        .await;
    srv.run_extraction(&a.token, &project, &version).await;
    let r = srv
        .op(
            Some(&a.token),
            "Results",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let results = ok(&r, "results");
    let node = &results["edges"][0]["node"];
    assert!(
        node["provenance"]["extractor"]
            .as_str()
            .unwrap()
            .starts_with("my-extractor@0.1.0"),
        "{node}"
    );
    let values = node["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "one value per field: {node}");

    // The adapter answers the connection check through the fake provider.
    let id = install(&srv, &a.token, &a.org_id, &adapter.1, adapter.0).await;
    srv.bind_llm(
        &a.token,
        &project,
        &id,
        &fake.base_url,
        "test-model",
        "sk-third-party",
    )
    .await;
    let r = srv
        .op(
            Some(&a.token),
            "CheckLlmConnection",
            json!({ "projectId": project }),
        )
        .await;
    let check = ok(&r, "checkLlmConnection");
    // The fake answers as `<model>-fake`: the answer came from it.
    assert_eq!(check["model"], "test-model-fake", "{check}");
    let (headers, _) = fake
        .requests()
        .last()
        .cloned()
        .expect("the fake was called");
    assert_eq!(
        headers["authorization"], "Bearer sk-third-party",
        "the host added the key the binding holds"
    );
    srv.stop().await;
    tdb.drop_db().await;
}
