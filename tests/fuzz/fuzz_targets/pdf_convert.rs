//! The first-party PDF converter (`plugins/pdf-text`, natively) on
//! arbitrary bytes.
//!
//! A conversion must end in a document or a typed error. A panic is a crash
//! even where `convert` would catch it: in the wasm component (panic =
//! abort) it is a trap. The exception is the policy of the converter's own
//! robustness test (plugins/pdf-text/tests/robustness.rs): panics inside
//! the font parsers (cff-parser, adobe-cmap-parser, type1-encoding-parser),
//! which `prepare` runs under a guard to skip fonts that would make
//! pdf-extract panic, are tolerated, printed once per location and counted
//! at exit. `FUZZ_PDF_STRICT=1` makes them crashes too.
//!
//! A converted document must keep the contract of its page ranges: one per
//! page, numbered from 1, contiguous from 0 to the end of the markdown.

#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use pdf_text::ConvertError;

/// Crates whose panics the robustness test does not count.
const TOLERATED: &[&str] = &[
    "cff-parser-",
    "adobe-cmap-parser-",
    "type1-encoding-parser-",
];

static TOLERATED_PANICS: AtomicU64 = AtomicU64::new(0);
static LOCATIONS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
}

extern "C" fn summary() {
    let distinct = LOCATIONS
        .lock()
        .map(|l| l.as_ref().map_or(0, HashSet::len))
        .unwrap_or(0);
    eprintln!(
        "pdf_convert: tolerated font-parser panics: {} ({distinct} distinct locations)",
        TOLERATED_PANICS.load(Ordering::Relaxed)
    );
}

/// Wraps libfuzzer-sys's hook (print, then abort) so that font-parser
/// panics unwind to the converter's guard instead.
fn install_panic_policy() {
    let strict = std::env::var("FUZZ_PDF_STRICT").is_ok_and(|v| v == "1");
    if strict {
        return;
    }
    // SAFETY: registers a plain `extern "C" fn` that only reads statics.
    unsafe {
        atexit(summary);
    }
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let file = info.location().map(|l| l.file()).unwrap_or("");
        let tolerated = TOLERATED
            .iter()
            .any(|c| file.contains(&format!("/{c}")) || file.starts_with(c));
        if !tolerated {
            abort_hook(info);
            return;
        }
        TOLERATED_PANICS.fetch_add(1, Ordering::Relaxed);
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut seen) = LOCATIONS.lock()
            && seen.get_or_insert_with(HashSet::new).insert(at.clone())
        {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            let message: String = message.chars().take(120).collect();
            eprintln!("pdf_convert: tolerated panic (first at {at}): {message}");
        }
    }));
}

fuzz_target!(init: install_panic_policy(), |data: &[u8]| {
    match pdf_text::convert(data) {
        Ok(doc) => {
            let chars = doc.markdown.chars().count() as u64;
            assert_eq!(doc.pages.len() as u64, u64::from(doc.metadata.page_count));
            let mut at = 0u32;
            for (i, page) in doc.pages.iter().enumerate() {
                assert_eq!(page.number as usize, i + 1, "pages numbered in order");
                assert_eq!(page.start, at, "page ranges are contiguous from 0");
                assert!(page.start <= page.end, "page range backwards: {page:?}");
                at = page.end;
            }
            assert_eq!(u64::from(at), chars, "page ranges end at the end of the markdown");
        }
        // A panic that escaped to `convert`'s last-resort guard.
        Err(ConvertError::Internal(e)) => panic!("internal error: {e}"),
        Err(ConvertError::Encrypted(_) | ConvertError::Malformed(_) | ConvertError::Unsupported(_)) => {}
    }
});
