//! Converts one PDF and prints the markdown (or, with `--json`-free flags,
//! the page ranges, metadata and warnings after it).
//!
//! `cargo run -p pdf-text --release --example convert -- FILE.pdf [--info]`

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: convert FILE.pdf [--info]");
        std::process::exit(2);
    };
    let info = args.any(|a| a == "--info");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    match pdf_text::convert(&bytes) {
        Ok(doc) => {
            print!("{}", doc.markdown);
            if info {
                println!("\n---\n{:?}", doc.metadata);
                for p in &doc.pages {
                    println!("page {}: {}..{}", p.number, p.start, p.end);
                }
                for w in &doc.warnings {
                    println!("warning: {w}");
                }
            }
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
