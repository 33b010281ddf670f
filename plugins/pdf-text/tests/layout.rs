//! The layout of every corpus PDF: runs in markdown order, not
//! overlapping, each inside its page, covering the text a reader sees;
//! and a quote's boxes lie on the page its text is on. (How well boxes
//! match the words on the page is measured against poppler by the `boxes`
//! example.) Skipped, with a message, where the corpus is not checked out
//! next to the repository.

use std::path::PathBuf;

fn corpus_pdfs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/rct/pdf");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} is not readable", dir.display());
        return Vec::new();
    };
    let mut pdfs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    pdfs
}

#[test]
fn runs_are_ordered_inside_their_pages_and_cover_the_text() {
    for path in corpus_pdfs() {
        let name = path.display().to_string();
        let doc = pdf_text::convert(&std::fs::read(&path).unwrap()).unwrap();
        let layout = &doc.layout;
        assert_eq!(layout.pages.len(), doc.pages.len(), "{name}: page sizes");
        let chars: Vec<char> = doc.markdown.chars().collect();
        let mut covered = vec![false; chars.len()];
        let mut last_end = 0;
        let (mut edges, mut off_page) = (0usize, 0usize);
        for run in &layout.runs {
            assert!(
                run.start >= last_end,
                "{name}: runs overlap at {}",
                run.start
            );
            assert!(!run.is_empty(), "{name}: an empty run at {}", run.start);
            last_end = run.end();
            assert!(
                run.end() as usize <= chars.len(),
                "{name}: a run past the text"
            );
            let page = layout.pages[run.page as usize - 1];
            let (w, h) = (page.width, page.height);
            let (along, across) = if run.vertical { (h, w) } else { (w, h) };
            let inside = |v: f32, limit: f32| v >= -2.0 && v <= limit + 2.0;
            // A PDF may draw text past the page's edge: counted, and
            // allowed rarely.
            let across_ok = inside(run.across.0, across) && inside(run.across.1, across);
            for &(a, b) in &run.edges {
                assert!(a <= b, "{name}: {a}..{b}");
                edges += 1;
                if !(across_ok && inside(a, along) && inside(b, along)) {
                    off_page += 1;
                }
            }
            // The run's page holds its text.
            let range = doc.pages[run.page as usize - 1];
            assert!(
                run.start >= range.start && run.end() <= range.end,
                "{name}: run at {} is not within page {}'s text",
                run.start,
                run.page
            );
            for c in &mut covered[run.start as usize..run.end() as usize] {
                *c = true;
            }
        }
        assert!(
            off_page * 1000 <= edges,
            "{name}: {off_page} of {edges} characters are placed off their page"
        );
        // Every letter or digit of the markdown is on a page (markdown
        // marks and table separators are punctuation).
        let visible = chars.iter().filter(|c| c.is_alphanumeric()).count();
        let located = chars
            .iter()
            .zip(&covered)
            .filter(|(c, on)| c.is_alphanumeric() && **on)
            .count();
        assert!(
            located * 1000 >= visible * 999,
            "{name}: only {located} of {visible} letters and digits are located"
        );
        // A sentence's boxes lie on its page, one per line, a line high.
        let at = doc
            .markdown
            .to_ascii_lowercase()
            .find("random")
            .expect("a trial report mentions randomisation");
        let start = doc.markdown[..at].chars().count() as u32;
        let boxes = layout.boxes(start, start + 40);
        assert!(!boxes.is_empty(), "{name}: no boxes");
        let page = doc
            .pages
            .iter()
            .find(|p| p.start <= start && start < p.end)
            .unwrap();
        for b in &boxes {
            assert_eq!(b.page, page.number, "{name}");
            assert!(b.height > 0.003 && b.height < 0.06, "{name}: {b:?}");
            assert!(b.x >= 0.0 && b.x + b.width <= 1.0, "{name}: {b:?}");
        }
    }
}
