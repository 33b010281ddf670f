//! Prints the laid-out lines of one page (or all pages), with region,
//! size and position: for looking into layout decisions.
//!
//! `cargo run -p pdf-text --release --example lines -- FILE.pdf [PAGE]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: lines FILE.pdf [PAGE]");
        std::process::exit(2);
    };
    let only: Option<u32> = args.get(1).and_then(|p| p.parse().ok());
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let mut doc = lopdf::Document::load_mem(&bytes).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    pdf_text::prepare::prepare(&mut doc);
    for page in pdf_text::glyphs::read_pages(&doc) {
        if only.is_some_and(|n| n != page.number) {
            continue;
        }
        let layout = pdf_text::layout::layout_page(&page);
        println!(
            "=== page {} ({} glyphs, two columns: {})",
            page.number,
            page.glyphs.len(),
            layout.two_columns
        );
        for l in &layout.lines {
            println!(
                "r{:<3} o{} x{:6.1}-{:6.1} col{:6.1}-{:6.1} y{:6.1} s{:4.1} | {}",
                l.region,
                l.orientation,
                l.x0,
                l.x1,
                l.column_x0,
                l.column_x1,
                l.baseline,
                l.size,
                l.cells
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
}
