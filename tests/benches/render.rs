//! Page rendering: every page of the corpus PDFs rendered 800 pixels wide by
//! the built-in converter inside the plugin sandbox (the server's path, the
//! component compiled and cached first), against `pdftoppm -r 96 -png`
//! (poppler, the baseline; about 816 pixels wide on a letter page) on the
//! same pages, a process per page as the server renders a page per request.
//! Prints ms per page for each and the ratio.
//!
//! Run: `cargo bench -p evistream-tests --bench render`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use evistream::config::Config;
use evistream::plugins::PluginHost;

#[tokio::main]
async fn main() {
    let dir = evistream_tests::ops::repo_root().join("../shared/corpus/rct/pdf");
    let mut pdfs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    let host = PluginHost::from_config(&config).unwrap();
    let (_, converter) = host.builtin_converter("pdf-text").await.unwrap();
    let out = tempfile::tempdir().unwrap();

    let (mut ours, mut poppler) = (Duration::ZERO, Duration::ZERO);
    let (mut pages, mut bytes) = (0u32, 0usize);
    for pdf in &pdfs {
        let data = std::fs::read(pdf).unwrap();
        let n = page_count(pdf);
        // The first call of a PDF also compiles the component once: warm.
        converter.render(data.clone(), 1, 800).await.unwrap();
        for page in 1..=n {
            let t = Instant::now();
            let png = converter.render(data.clone(), page, 800).await.unwrap();
            ours += t.elapsed();
            bytes += png.len();
            let t = Instant::now();
            let ok = Command::new("pdftoppm")
                .args([
                    "-r",
                    "96",
                    "-png",
                    "-f",
                    &page.to_string(),
                    "-l",
                    &page.to_string(),
                ])
                .arg(pdf)
                .arg(out.path().join("p"))
                .status()
                .expect("pdftoppm (poppler-utils)")
                .success();
            poppler += t.elapsed();
            assert!(ok);
            pages += 1;
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(pages);
    println!("== {pages} pages of {} PDFs, 800 px wide", pdfs.len());
    println!(
        "pdftoppm -r 96 -png, a process per page (baseline)  {:7.1} ms/page",
        ms(poppler)
    );
    println!(
        "pdf-text render in the sandbox                      {:7.1} ms/page  {:.2}x  ({:.0} KB/page)",
        ms(ours),
        ms(ours) / ms(poppler),
        bytes as f64 / 1024.0 / f64::from(pages)
    );
}

/// Pages of a PDF, from `pdfinfo`.
fn page_count(pdf: &PathBuf) -> u32 {
    let out = Command::new("pdfinfo").arg(pdf).output().expect("pdfinfo");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a page count")
}
