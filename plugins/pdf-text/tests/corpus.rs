//! Every PDF of the shared RCT corpus converts: non-empty markdown, one
//! page range per PDF page covering the markdown in order. Skipped (with a
//! message) where the corpus is not checked out next to the repository.

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/rct/pdf")
}

#[test]
fn every_corpus_pdf_converts_with_pages_covering_the_text() {
    let dir = corpus_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!(
                "skipping the corpus test: {} is not readable ({e}); it holds the shared RCT PDFs",
                dir.display()
            );
            return;
        }
    };
    let mut pdfs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("pdf"))
        .collect();
    pdfs.sort();
    assert!(!pdfs.is_empty(), "no PDF in {}", dir.display());
    for path in pdfs {
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).expect("corpus PDF readable");
        let doc = pdf_text::convert(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected_pages = lopdf::Document::load_mem(&bytes)
            .expect("corpus PDF loads")
            .get_pages()
            .len() as u32;

        assert!(!doc.markdown.trim().is_empty(), "{name}: empty markdown");
        assert_eq!(
            doc.metadata.page_count, expected_pages,
            "{name}: page count"
        );
        assert_eq!(
            doc.pages.len() as u32,
            expected_pages,
            "{name}: page ranges"
        );
        let total = doc.markdown.chars().count() as u32;
        let mut at = 0;
        for (i, page) in doc.pages.iter().enumerate() {
            assert_eq!(page.number, i as u32 + 1, "{name}: page numbering");
            assert_eq!(
                page.start, at,
                "{name}: page {} does not start where the last ended",
                page.number
            );
            assert!(
                page.end >= page.start,
                "{name}: page {} runs backwards",
                page.number
            );
            at = page.end;
        }
        assert_eq!(
            at, total,
            "{name}: the pages do not reach the end of the markdown"
        );
        // Every page of these papers has text, so every range holds some.
        for page in &doc.pages {
            assert!(
                page.end > page.start,
                "{name}: page {} is empty",
                page.number
            );
        }
        assert!(
            doc.warnings.is_empty(),
            "{name}: warnings {:?}",
            doc.warnings
        );
    }
}
