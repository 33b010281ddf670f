//! Plugin runtime costs, as ratios against named baselines in the same run:
//! - instantiate + trivial call, pooling allocator vs on-demand (baseline);
//! - loading a precompiled component from the cache vs compiling it
//!   (baseline), for the built-in converter and a small fixture.
//!
//! Run: `cargo bench -p evistream-tests --bench plugins` (prints a table).

use std::sync::Arc;
use std::time::{Duration, Instant};

use evistream::plugins::converter::PdfConverter;
use evistream::plugins::runtime::engine::{self, EngineSettings};
use evistream::plugins::{CallLimits, PluginError, PluginRuntime, builtin, sha256_hex};
use evistream_tests::fixtures;

const CALLS: usize = 2_000;

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// A fresh runtime's load of `bytes` (nothing loaded in memory yet).
async fn load(
    rt: &PluginRuntime,
    bytes: &Arc<Vec<u8>>,
) -> Result<Arc<dyn PdfConverter>, PluginError> {
    let limits = CallLimits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(10),
        max_output_bytes: 1 << 20,
        ..Default::default()
    };
    let b = bytes.clone();
    rt.converter(&sha256_hex(bytes), async { Ok(b) }, limits)
        .await
}

async fn per_call(c: &dyn PdfConverter) -> Duration {
    // Warm up, then measure: one fresh store + instance + call each time.
    for _ in 0..100 {
        c.convert(b"%PDF".to_vec(), vec![]).await.unwrap();
    }
    let t = Instant::now();
    for _ in 0..CALLS {
        c.convert(b"%PDF".to_vec(), vec![]).await.unwrap();
    }
    t.elapsed() / CALLS as u32
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Arc::new(fixtures::wasm("hostile_converter"));

    println!("== instantiate + trivial call ({CALLS} calls, fresh store each)");
    let on_demand = leak(
        engine::create(&EngineSettings {
            pooling: false,
            ..EngineSettings::default()
        })
        .unwrap(),
    );
    let pooled = leak(engine::create(&EngineSettings::default()).unwrap());
    let mut results = Vec::new();
    for (name, eng) in [("on-demand (baseline)", on_demand), ("pooling", pooled)] {
        let rt = PluginRuntime::with_engine(eng, &dir.path().join(name.replace(' ', "_")));
        let c = load(&rt, &fixture).await.unwrap();
        let d = per_call(c.as_ref()).await;
        println!(
            "{name:<24} {:>8.1} µs/call  allocation={:?}",
            d.as_secs_f64() * 1e6,
            eng.allocation
        );
        results.push(d);
    }
    println!(
        "pooling / on-demand: {:.2}",
        results[1].as_secs_f64() / results[0].as_secs_f64()
    );

    println!("\n== compile vs load from the precompiled cache");
    let mut components: Vec<(String, Arc<Vec<u8>>)> =
        vec![("hostile-converter fixture".into(), fixture.clone())];
    if let Some(b) = builtin::get(builtin::DEFAULT_CONVERTER) {
        components.push((
            format!("{} (built-in)", b.manifest.id),
            Arc::new(b.wasm.to_vec()),
        ));
    }
    for (name, bytes) in components {
        let cache = dir.path().join(format!("cache-{}", name.len()));
        let t = Instant::now();
        load(&PluginRuntime::with_engine(on_demand, &cache), &bytes)
            .await
            .unwrap();
        let compile = t.elapsed();
        let mut loads = Vec::new();
        for _ in 0..20 {
            let rt = PluginRuntime::with_engine(on_demand, &cache);
            let t = Instant::now();
            load(&rt, &bytes).await.unwrap();
            loads.push(t.elapsed());
        }
        loads.sort();
        let load = loads[loads.len() / 2];
        println!(
            "{name:<28} {:>7} KiB  compile {:>8.1} ms (baseline)  cached load {:>6.2} ms  ratio {:.4}",
            bytes.len() / 1024,
            compile.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3,
            load.as_secs_f64() / compile.as_secs_f64()
        );
    }
}
