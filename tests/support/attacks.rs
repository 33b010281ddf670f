//! Hostile GraphQL requests and data, shared by the regression tests and
//! the hostile-tenant bench (which sends them at full size).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A query whose argument nests `levels` brackets.
pub fn nested_literal(levels: usize) -> String {
    format!(
        "query {{ me(x: {}1{}) {{ id }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// Fragments that each spread the next twice: 2^`levels` fields once expanded.
pub fn fragment_fan_out(levels: usize) -> String {
    let mut q = String::from("query { ...f0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment f{i} on Query {{ ...f{n} ...f{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!("fragment f{levels} on Query {{ __typename }}\n"));
    q
}

/// `fragments` fragments, each nesting `depth` fields before it spreads the
/// next: a shallow text whose nesting, once expanded, is their product.
pub fn fragment_chain(fragments: usize, depth: usize) -> String {
    let mut q = String::from("query { ...c0 }\n");
    for i in 0..fragments {
        let next = if i + 1 < fragments {
            format!("...c{}", i + 1)
        } else {
            "id".into()
        };
        q.push_str(&format!(
            "fragment c{i} on Query {{ {}{next} {}}}\n",
            "me { ".repeat(depth),
            "} ".repeat(depth)
        ));
    }
    q
}

/// `n` aliases of `__typename`.
pub fn aliases(n: usize) -> String {
    let fields: String = (0..n).map(|i| format!("a{i}: __typename ")).collect();
    format!("{{ {fields} }}")
}

/// A request another tenant keeps sending while an attack runs.
#[derive(Debug, Clone)]
pub enum Probe {
    /// GET this URL (`/livez`); it must answer 2xx.
    Get(String),
    /// The `Me` query at this `/graphql` URL with this token; it must
    /// answer the user.
    Me {
        /// `http://…/graphql`.
        url: String,
        /// The other tenant's access token.
        token: String,
    },
}

/// The slowest answer to `probe`, sent back to back (20 ms apart) until
/// `work` ends, and how many were sent; with `work`'s output. The probes
/// run on a thread and runtime of their own, so a stalled node cannot
/// also stall (and so hide) the probing.
pub async fn slowest_during<W: std::future::Future>(
    work: W,
    probe: Probe,
) -> (W::Output, Duration, usize) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("probe runtime");
            rt.block_on(async move {
                let http = reqwest::Client::new();
                let me = super::ops::operation("Me");
                let mut worst = Duration::ZERO;
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    match &probe {
                        Probe::Get(url) => {
                            let r = http.get(url).send().await.expect("probe sent");
                            assert!(r.status().is_success(), "{url}: {}", r.status());
                        }
                        Probe::Me { url, token } => {
                            let r: Value = http
                                .post(url)
                                .bearer_auth(token)
                                .json(&json!({ "query": me }))
                                .send()
                                .await
                                .expect("probe sent")
                                .json()
                                .await
                                .expect("probe answered");
                            assert!(r["data"]["me"]["id"].is_string(), "{r}");
                        }
                    }
                    worst = worst.max(t.elapsed());
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (worst, n)
            })
        })
    };
    let out = work.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, n) = tokio::task::spawn_blocking(move || prober.join().expect("the prober"))
        .await
        .expect("joined");
    (out, worst, n)
}
