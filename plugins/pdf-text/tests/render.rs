//! Pages render as PNG images of the asked width, the height following the
//! page; bad pages, widths and PDFs are typed errors. Skipped, with a
//! message, where the corpus is not checked out next to the repository.

use std::path::PathBuf;

use pdf_text::ConvertError;

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn a_page_renders_at_the_width_asked() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/rct/pdf/PMC3321528.pdf");
    let Ok(pdf) = std::fs::read(&path) else {
        eprintln!("skipping: {} is not readable", path.display());
        return;
    };
    let doc = pdf_text::convert(&pdf).unwrap();
    let page = doc.layout.pages[1];
    let png = pdf_text::render::render(&pdf, 2, 800).unwrap();
    let (w, h) = png_size(&png);
    assert_eq!(w, 800);
    let want = (800.0 * page.height / page.width).round() as u32;
    assert!(h.abs_diff(want) <= 1, "{h} vs {want}");
    // Not a blank page: a text page has many dark pixels, which compress
    // worse than white.
    assert!(png.len() > 20_000, "{} bytes", png.len());

    for (page, width) in [(0, 800), (99, 800), (1, 0), (1, 100_000)] {
        assert!(
            matches!(
                pdf_text::render::render(&pdf, page, width),
                Err(ConvertError::Unsupported(_))
            ),
            "page {page} at {width}"
        );
    }
    assert!(matches!(
        pdf_text::render::render(b"%PDF-1.4 not really", 1, 800),
        Err(ConvertError::Malformed(_))
    ));
}
