//! Runs the extractor natively over cases dumped by the extraction
//! benchmark (`EVISTREAM_BENCH_DUMP=DIR cargo bench -p evistream-tests
//! --bench extraction -- lexical`) and prints every gold value next to what
//! it reads now, to study the heuristics without a server.
//!
//! Run: `cargo run --release --example cases -- DIR`

use serde_json::Value;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: cases DIR");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("case"))
        })
        .collect();
    files.sort();
    let (mut right, mut total) = (0, 0);
    for f in files {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
        let paper = case["paper"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(format!("{dir}/{paper}.md")).expect("text");
        let program = case["program"].to_string();
        let out = lexical_extractor::extract(&program, &text, &[], |_, _| {}).expect("extract");
        println!("{} {paper} {}", f.display(), case["ico"]);
        for (k, want) in case["gold"].as_object().into_iter().flatten() {
            let got = out.values.iter().find(|v| v.path == *k);
            let got_v = got.map(|v| v.value.clone()).unwrap_or(Value::Null);
            let hit = match (want.as_f64(), got_v.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() <= 0.01 * a.abs().max(1e-9),
                _ => want == &got_v,
            };
            total += 1;
            right += usize::from(hit);
            let quote = got
                .and_then(|v| v.evidence.as_ref())
                .map(|(q, _)| q.chars().take(140).collect::<String>())
                .unwrap_or_default();
            println!(
                "  {} {k:<24} want {want:<10} got {got_v:<10} | {quote}",
                if hit { "✓" } else { "✗" }
            );
        }
    }
    println!("\n{right}/{total} right");
}
