//! Prints the glyphs of one page inside a box, in content-stream order:
//! for looking into what the PDF crate reports.
//!
//! `cargo run -p pdf-text --release --example glyphdump -- FILE.pdf PAGE X0 Y0 X1 Y1`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!("usage: glyphdump FILE.pdf PAGE X0 Y0 X1 Y1   (y grows downwards)");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[0]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[0]);
        std::process::exit(1);
    });
    let page: u32 = args[1].parse().unwrap_or(1);
    let b: Vec<f32> = args[2..6]
        .iter()
        .map(|a| a.parse().unwrap_or(0.0))
        .collect();
    let mut doc = lopdf::Document::load_mem(&bytes).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[0]);
        std::process::exit(1);
    });
    pdf_text::prepare::prepare(&mut doc);
    for p in pdf_text::glyphs::read_pages(&doc) {
        if p.number != page {
            continue;
        }
        for (i, g) in p.glyphs.iter().enumerate() {
            if g.x >= b[0] && g.y >= b[1] && g.x <= b[2] && g.y <= b[3] {
                println!(
                    "#{i:<6} x{:7.2} y{:7.2} w{:5.2} s{:5.2} o{} {:?}",
                    g.x,
                    g.y,
                    g.width,
                    g.size,
                    g.orientation,
                    p.glyph_text(g)
                );
            }
        }
    }
}
