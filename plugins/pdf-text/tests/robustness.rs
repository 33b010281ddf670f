//! Broken inputs: every prefix of a PDF and many single-byte corruptions
//! must end in a document or an error, never in a panic. Natively a panic
//! inside the PDF crates is caught (and costs a page); in wasm it would be a
//! trap, so this test counts panics, caught or not. Its own test binary, so
//! the panic hook sees no other test.

use std::sync::atomic::{AtomicUsize, Ordering};

use lopdf::content::{Content, Operation};
use lopdf::{Document as PdfDocument, Object, Stream, StringFormat, dictionary};

static PANICS: AtomicUsize = AtomicUsize::new(0);
static WHERE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn sample_pdf() -> Vec<u8> {
    let mut doc = PdfDocument::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 11.into()]),
        Operation::new("Td", vec![72.into(), 700.into()]),
    ];
    for line in [
        "A first line of text,",
        "then a second one",
        "and a last line.",
    ] {
        operations.push(Operation::new(
            "Tj",
            vec![Object::String(
                line.as_bytes().to_vec(),
                StringFormat::Literal,
            )],
        ));
        operations.push(Operation::new("Td", vec![0.into(), (-13).into()]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations }.encode().expect("encodes");
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("writes");
    bytes
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn broken_inputs_never_panic() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        if let (Some(l), Ok(mut w)) = (info.location(), WHERE.lock()) {
            w.push(format!(
                "{}:{} {}",
                l.file(),
                l.line(),
                info.payload()
                    .downcast_ref::<String>()
                    .map(|s| s.chars().take(80).collect::<String>())
                    .unwrap_or_default()
            ));
        }
    }));
    let bytes = sample_pdf();
    let mut inputs: Vec<Vec<u8>> = (0..bytes.len()).map(|end| bytes[..end].to_vec()).collect();
    let mut rng = Lcg(7);
    for _ in 0..2000 {
        let mut mutated = bytes.clone();
        let at = (rng.next() as usize) % mutated.len();
        mutated[at] = rng.next() as u8;
        inputs.push(mutated);
    }
    // Corruptions of a real paper, where fonts and streams are compressed
    // and embedded (skipped without the shared corpus).
    let paper = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/rct/pdf/PMC3751573.pdf");
    match std::fs::read(&paper) {
        Ok(real) => {
            for _ in 0..150 {
                let mut mutated = real.clone();
                for _ in 0..20 {
                    let at = (rng.next() as usize) % mutated.len();
                    mutated[at] = rng.next() as u8;
                }
                inputs.push(mutated);
            }
        }
        Err(e) => eprintln!("corpus paper not used ({}: {e})", paper.display()),
    }
    let mut outcomes = [0usize; 3];
    let mut internal = Vec::new();
    for input in &inputs {
        match pdf_text::convert(input) {
            Ok(_) => outcomes[0] += 1,
            Err(pdf_text::ConvertError::Internal(e)) => internal.push(e),
            Err(_) => outcomes[1] += 1,
        }
        outcomes[2] = PANICS.load(Ordering::SeqCst);
    }
    let _ = std::panic::take_hook();
    let mut w = WHERE.lock().map(|w| w.clone()).unwrap_or_default();
    w.sort();
    w.dedup();
    for l in &w {
        eprintln!("{l}");
    }
    eprintln!(
        "{} inputs: {} converted, {} refused, {} panics caught",
        inputs.len(),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
    assert!(internal.is_empty(), "internal errors: {internal:?}");
    // Panics of the PDF reader or of our code would each be a trap in wasm.
    // (The font parsers that `prepare` runs first may still panic on a
    // corrupt font program; they are listed above but not counted.)
    let ours = w
        .iter()
        .filter(|l| l.contains("pdf-extract") || l.contains("pdf-text") || l.contains("lopdf"))
        .count();
    assert_eq!(ours, 0, "panics in pdf-extract, lopdf or pdf-text");
}
