//! The dashboard's first load in Debian's chromium over loopback, with the
//! browser cache disabled (every load is a first load): bytes transferred
//! (compressed, as the browser counts them) and time to interactive of the
//! sign-in page (navigation start until its "Sign in" button is in the
//! page), against a named baseline in the same browser and run: the
//! navigation of `/favicon.svg`, the smallest asset the same server sends.
//! Also the bytes the embedded assets take (brotli, as the binary holds
//! them) beside their plain size.
//!
//! Run: `cargo bench -p evistream-tests --bench dashboard` (needs chromium
//! and chromedriver: `tests/scripts/ensure-tools.sh`).

use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::browser::Browser;
use evistream_tests::{DbKind, TestDb, TestServer};
use serde_json::json;

const RUNS: usize = 15;

/// Records when the sign-in button first appears (set before any script of
/// the page runs).
const WATCH: &str = "new MutationObserver((_, o) => { \
  const b = [...document.querySelectorAll('button')].find(b => b.textContent === 'Sign in'); \
  if (b) { window.__interactive = performance.now(); o.disconnect(); } \
}).observe(document, { childList: true, subtree: true });";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let tdb = TestDb::new(DbKind::Sqlite).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let shots = tempfile::tempdir().unwrap();
    let b = Browser::launch(shots.path()).await.unwrap();
    b.cdp("Network.enable", json!({})).await.unwrap();
    b.cdp("Network.setCacheDisabled", json!({ "cacheDisabled": true }))
        .await
        .unwrap();
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": WATCH }),
    )
    .await
    .unwrap();

    let (mut tti, mut base, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        b.goto(&format!("{}/favicon.svg", srv.base)).await.unwrap();
        let t = b
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;",
                vec![],
            )
            .await
            .unwrap();
        base.push(t.as_f64().unwrap());

        b.goto(&format!("{}/", srv.base)).await.unwrap();
        let t = b
            .wait_js(
                "the sign-in button",
                "return window.__interactive || null;",
                vec![],
            )
            .await
            .unwrap();
        tti.push(t.as_f64().unwrap());
        // Let late requests (if any) finish before counting.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let n = b
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 return n.transferSize + performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, 0);",
                vec![],
            )
            .await
            .unwrap();
        bytes.push(n.as_f64().unwrap());
    }
    let (tti, base) = (median(tti), median(base));
    println!(
        "first load of the sign-in page: {:.0} bytes transferred (median of {RUNS}; contract: <= 300000)",
        median(bytes)
    );
    println!("time to interactive (sign-in button present): {tti:.1} ms (median of {RUNS})");
    println!("baseline, /favicon.svg navigation: {base:.1} ms");
    println!("ratio: {:.2}x the baseline", tti / base);

    // The embedded assets: every file of host/ui, brotli as served.
    let root = evistream_tests::ops::repo_root().join("host/ui");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let http = reqwest::Client::new();
    let (mut plain, mut br) = (0u64, 0u64);
    for f in &files {
        let path = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        plain += std::fs::metadata(f).unwrap().len();
        let r = http
            .get(format!("{}/{path}", srv.base))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        br += r.bytes().await.unwrap().len() as u64;
    }
    println!(
        "embedded assets: {} files, {plain} bytes plain, {br} bytes brotli (what the binary holds)",
        files.len()
    );

    b.close().await;
    srv.node.shutdown().await;
    tdb.drop_db().await;
}
