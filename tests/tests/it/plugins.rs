//! The plugin sandbox against hostile components: an infinite loop times out
//! while the server keeps serving, a memory bomb hits the memory cap, a
//! panic becomes a trap with its message, oversize or inconsistent output is
//! refused, a component of the wrong world or garbage bytes are refused at
//! load, and compiled components are cached by content hash.

use std::sync::Arc;
use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream::plugins::converter::{ConvertError, PdfConverter};
use evistream::plugins::runtime::engine::{self, EngineSettings};
use evistream::plugins::{CallLimits, PluginError, PluginRuntime, sha256_hex};
use evistream_tests::{DbKind, TestDb, TestServer, fixtures};

fn runtime(dir: &std::path::Path) -> PluginRuntime {
    PluginRuntime::new(&EngineSettings::default(), &dir.join("plugin-cache")).expect("runtime")
}

fn limits() -> CallLimits {
    CallLimits {
        memory_bytes: 128 << 20,
        timeout: Duration::from_secs(2),
        max_output_bytes: 16 << 20,
        ..Default::default()
    }
}

/// The converter in `bytes`, its calls under `limits`.
async fn load(
    rt: &PluginRuntime,
    bytes: Vec<u8>,
    limits: CallLimits,
) -> Result<Arc<dyn PdfConverter>, PluginError> {
    rt.converter(&sha256_hex(&bytes), async { Ok(Arc::new(bytes)) }, limits)
        .await
}

async fn hostile(rt: &PluginRuntime) -> Arc<dyn PdfConverter> {
    load(rt, fixtures::wasm("hostile_converter"), limits())
        .await
        .expect("hostile converter loads")
}

/// The sandbox's verdict apart from the converter's own.
async fn run(
    c: &dyn PdfConverter,
    mode: &str,
) -> Result<Result<String, ConvertError>, PluginError> {
    match c
        .convert(
            b"%PDF-1.7 fake".to_vec(),
            vec![("mode".into(), mode.into())],
        )
        .await
    {
        Ok(d) => Ok(Ok(d.markdown)),
        Err(ConvertError::Plugin(p)) => Err(p),
        Err(refused) => Ok(Err(refused)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_call_returns_the_document() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let c = hostile(&rt).await;
    let out = run(&*c, "ok")
        .await
        .expect("no plugin error")
        .expect("converted");
    assert_eq!(out, "# Echo\n\n13 bytes");
    // The converter's own verdict is not a crash.
    let r = run(&*c, "malformed").await.expect("no plugin error");
    assert!(
        matches!(r, Err(ConvertError::Malformed(ref m)) if m == "not a PDF at all"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out_while_the_server_keeps_serving() {
    let _shared = evistream_tests::shared().await;
    let tdb = TestDb::new(DbKind::Sqlite).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let rt = runtime(&tdb.path());
    let c = hostile(&rt).await;
    let c2 = c.clone();
    let looping = tokio::spawn(async move { run(&*c2, "loop").await });
    // Two loops at once occupy every plugin thread; the API must not notice.
    let c3 = c.clone();
    let looping2 = tokio::spawn(async move { run(&*c3, "loop").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut served = 0;
    while !looping.is_finished() {
        let r = srv
            .http
            .get(format!("{}/livez", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let q = srv.gql(None, "{ __typename }", serde_json::json!({})).await;
        assert_eq!(q["data"]["__typename"], "Query");
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served >= 5,
        "the API answered while the guest looped ({served} rounds)"
    );
    for h in [looping, looping2] {
        match h.await.unwrap() {
            Err(PluginError::Timeout { limit_ms }) => assert_eq!(limit_ms, 2_000),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    // The runtime is still healthy afterwards.
    assert!(run(&*c, "ok").await.unwrap().is_ok());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_cap() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let c = hostile(&rt).await;
    match run(&*c, "membomb").await {
        Err(PluginError::OutOfMemory { limit_bytes }) => assert_eq!(limit_bytes, 128 << 20),
        other => panic!("expected out of memory, got {other:?}"),
    }
    assert!(run(&*c, "ok").await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_trap_with_its_message() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let c = hostile(&rt).await;
    match run(&*c, "panic").await {
        Err(PluginError::Trap(msg)) => {
            assert!(msg.contains("hostile converter panics on purpose"), "{msg}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    // A fresh store per call: the next call is unaffected.
    assert!(run(&*c, "ok").await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_or_inconsistent_output_is_refused() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let c = hostile(&rt).await;
    match run(&*c, "oversize").await {
        Err(PluginError::InvalidOutput(m)) => assert!(m.contains("exceeds the limit"), "{m}"),
        other => panic!("expected invalid output, got {other:?}"),
    }
    match run(&*c, "badpages").await {
        Err(PluginError::InvalidOutput(m)) => assert!(m.contains("outside the text"), "{m}"),
        other => panic!("expected invalid output, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_world_and_garbage_are_refused_at_load() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    match load(&rt, fixtures::wasm("wrong_world"), limits()).await {
        Err(PluginError::Incompatible(m)) => assert!(m.contains("pdf-converter"), "{m}"),
        Err(e) => panic!("expected incompatible, got {e:?}"),
        Ok(_) => panic!("a form-extractor loaded as a converter"),
    }
    match load(&rt, b"\0asm garbage".to_vec(), limits()).await {
        Err(PluginError::Incompatible(m)) => assert!(m.contains("not a valid component"), "{m}"),
        Err(e) => panic!("expected incompatible, got {e:?}"),
        Ok(_) => panic!("garbage loaded"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_by_content_hash() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let bytes = fixtures::wasm("hostile_converter");
    let first = load(&rt, bytes.clone(), limits()).await.unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("plugin-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].starts_with(first.sha256()), "{cached:?}");
    assert_eq!(first.sha256(), sha256_hex(&bytes));
    // A second runtime (another node's, or after a restart) loads it from disk.
    let second = load(&runtime(dir.path()), bytes, limits()).await.unwrap();
    assert_eq!(second.sha256(), first.sha256());
    assert!(run(&*second, "ok").await.unwrap().is_ok());
    // A corrupt cache entry is recompiled, not trusted.
    let path = dir.path().join("plugin-cache").join(&cached[0]);
    std::fs::write(&path, b"corrupt").unwrap();
    let third = load(
        &runtime(dir.path()),
        fixtures::wasm("hostile_converter"),
        limits(),
    )
    .await
    .unwrap();
    assert!(run(&*third, "ok").await.unwrap().is_ok());
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1000,
        "entry rewritten"
    );
}

/// The built-in converter, as a component in the sandbox, on every corpus
/// paper: text, pages in order covering it, the PDF's page count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_converter_converts_every_corpus_paper() {
    let _shared = evistream_tests::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let b = evistream::plugins::builtin::get("pdf-text").expect("pdf-text is built in");
    assert_eq!(
        b.manifest.kind,
        evistream::plugins::manifest::PluginKind::PdfConverter
    );
    let limits = CallLimits {
        memory_bytes: 512 << 20,
        timeout: Duration::from_secs(60),
        max_output_bytes: 64 << 20,
        ..Default::default()
    };
    let c = load(&rt, b.wasm.to_vec(), limits).await.unwrap();
    let corpus = evistream_tests::ops::repo_root().join("../shared/corpus/rct");
    let manifest = std::fs::read_to_string(corpus.join("manifest.csv")).expect("corpus manifest");
    let mut n = 0;
    for line in manifest.lines().skip(1) {
        let pmcid = line.split(',').next().unwrap();
        let fields: Vec<&str> = line.split(',').collect();
        let doi = fields.iter().position(|f| f.starts_with("10.")).unwrap();
        let pages: u32 = fields[doi + 1].parse().unwrap();
        let pdf = std::fs::read(corpus.join(format!("pdf/{pmcid}.pdf"))).unwrap();
        let doc = c
            .convert(pdf, vec![])
            .await
            .unwrap_or_else(|e| panic!("{pmcid}: {e}"));
        let chars = doc.markdown.chars().count() as u32;
        assert!(chars > 5_000, "{pmcid}: {chars} characters");
        assert_eq!(doc.page_count, pages, "{pmcid}");
        assert_eq!(doc.pages.len() as u32, pages, "{pmcid}");
        assert_eq!(doc.pages[0].start, 0, "{pmcid}");
        assert_eq!(doc.pages.last().unwrap().end, chars, "{pmcid}");
        assert!(
            doc.pages.windows(2).all(|w| w[0].end == w[1].start),
            "{pmcid}: contiguous pages"
        );
        n += 1;
    }
    assert_eq!(n, 12, "every paper of the corpus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_pool_wait_for_a_slot_instead_of_failing() {
    let _shared = evistream_tests::shared().await;
    // A pool of 2 instances: one slot for converters and extractors, one
    // for adapters. Four long calls at once would exhaust the pool; they
    // queue instead, and each ends the way it would alone.
    let dir = tempfile::tempdir().unwrap();
    let engine: &'static _ = Box::leak(Box::new(
        engine::create(&EngineSettings {
            pool_instances: 2,
            ..EngineSettings::default()
        })
        .expect("engine"),
    ));
    if engine.allocation != engine::Allocation::Pooling {
        eprintln!("pooling allocator unavailable here; nothing to exhaust");
        return;
    }
    let rt = PluginRuntime::with_engine(engine, &dir.path().join("cache"));
    let short = CallLimits {
        timeout: Duration::from_millis(300),
        ..limits()
    };
    let c = load(&rt, fixtures::wasm("hostile_converter"), short)
        .await
        .expect("hostile converter loads");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { run(&*c, "loop").await })
        })
        .collect();
    let started = std::time::Instant::now();
    for call in calls {
        let r = call.await.expect("joined");
        assert!(
            matches!(r, Err(PluginError::Timeout { .. })),
            "expected a timeout, got {r:?}"
        );
    }
    // One at a time: four deadlines back to back.
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert_eq!(
        run(&*c, "ok")
            .await
            .expect("no plugin error")
            .expect("converted"),
        "# Echo\n\n13 bytes"
    );
}
