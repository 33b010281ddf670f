//! A converter's behaviour: the bundled PDFs and the caller's converted
//! under the document invariants the host holds every conversion to
//! ([`invariants`](crate::plugins::invariants)), every run on its page,
//! a page rendered as a PNG of the asked width, and typed refusals of
//! bytes that are not a PDF.

use std::sync::Arc;
use std::time::Instant;

use super::{NamedPdf, Report, Verdict, exhausted, plugin_reason, samples};
use crate::plugins::PluginHost;
use crate::plugins::converter::{ConvertError, ConvertedDocument, PdfConverter};
use crate::plugins::manifest::Manifest;

/// Width asked of `render`, in pixels.
const RENDER_WIDTH: u32 = 400;

pub(super) async fn run(
    host: &PluginHost,
    m: &Manifest,
    sha: &str,
    wasm: Arc<Vec<u8>>,
    extra: &[NamedPdf],
    report: &mut Report,
) {
    let Some(c) = super::loaded(host.converter(m, sha, async { Ok(wasm) }), m, report).await else {
        return;
    };
    let mut pdfs = samples::pdfs();
    pdfs.extend(extra.iter().cloned());
    let mut rendered_from = None;
    for pdf in &pdfs {
        let name = format!("convert {}", pdf.name);
        let started = Instant::now();
        match c.convert(pdf.bytes.clone(), Vec::new()).await {
            Ok(doc) => match off_page(&doc) {
                Some(why) => report.record(name, Verdict::Fail, why, started),
                None => {
                    report.record(name, Verdict::Pass, summary(&doc), started);
                    if rendered_from.is_none() && doc.layout.is_some() {
                        rendered_from = Some((pdf, doc.page_count));
                    }
                }
            },
            Err(ConvertError::Plugin(e)) => {
                report.record(name, Verdict::Fail, plugin_reason(&e, m), started);
                if exhausted(&e) {
                    report.skip("behaviour", "the converter ran out of its limits");
                    return;
                }
            }
            Err(refused) => report.record(
                name,
                Verdict::Fail,
                format!("a valid PDF was refused ({}): {refused}", refused.kind()),
                started,
            ),
        }
    }
    render(c.as_ref(), m, rendered_from, report).await;
    for bad in samples::malformed() {
        let name = format!("malformed {}", bad.name);
        let started = Instant::now();
        let (verdict, reason) = match c.convert(bad.bytes, Vec::new()).await {
            Ok(_) => (
                Verdict::Fail,
                "accepted bytes that are not a whole PDF".into(),
            ),
            Err(
                e @ (ConvertError::Malformed(_)
                | ConvertError::Unsupported(_)
                | ConvertError::Encrypted(_)),
            ) => (Verdict::Pass, format!("refused with {}", e.kind())),
            Err(ConvertError::Failed(e)) => (
                Verdict::Fail,
                format!("reported an internal failure instead of MALFORMED: {e}"),
            ),
            Err(ConvertError::Plugin(e)) => (Verdict::Fail, plugin_reason(&e, m)),
        };
        report.record(name, verdict, reason, started);
    }
}

/// `render` of page 1 (a PNG of the asked width, checked by the host) and
/// of a page past the end (a typed error).
async fn render(
    c: &dyn PdfConverter,
    m: &Manifest,
    from: Option<(&NamedPdf, u32)>,
    report: &mut Report,
) {
    let Some((pdf, pages)) = from else {
        for name in ["render", "render past the end"] {
            report.skip(
                name,
                "contract 0.1 converters (or none of the PDFs converted) render no pages",
            );
        }
        return;
    };
    let started = Instant::now();
    match c.render(pdf.bytes.clone(), 1, RENDER_WIDTH).await {
        Ok(png) => report.record(
            "render",
            Verdict::Pass,
            format!(
                "page 1 of {} as a PNG {RENDER_WIDTH} px wide ({} bytes)",
                pdf.name,
                png.len()
            ),
            started,
        ),
        Err(ConvertError::Unsupported(why)) => {
            report.skip(
                "render",
                format!(
                    "the converter renders no pages (UNSUPPORTED: {why}); reviewers see no page \
                     images of its documents"
                ),
            );
            report.skip("render past the end", "the converter renders no pages");
            return;
        }
        Err(ConvertError::Plugin(e)) => {
            report.record("render", Verdict::Fail, plugin_reason(&e, m), started)
        }
        Err(e) => report.record(
            "render",
            Verdict::Fail,
            format!("page 1 of a valid PDF was refused ({}): {e}", e.kind()),
            started,
        ),
    }
    let started = Instant::now();
    let (verdict, reason) = match c.render(pdf.bytes.clone(), pages + 1, RENDER_WIDTH).await {
        Ok(_) => (
            Verdict::Fail,
            format!("rendered page {} of a {pages}-page PDF", pages + 1),
        ),
        Err(ConvertError::Plugin(e)) => (Verdict::Fail, plugin_reason(&e, m)),
        Err(e) => (Verdict::Pass, format!("refused with {}", e.kind())),
    };
    report.record("render past the end", verdict, reason, started);
}

fn summary(doc: &ConvertedDocument) -> String {
    let (runs, tables) = doc
        .layout
        .as_ref()
        .map_or((0, 0), |l| (l.runs.len(), l.tables.len()));
    let layout = if doc.layout.is_some() {
        format!(", {runs} runs, {tables} tables")
    } else {
        ", no layout (contract 0.1)".to_owned()
    };
    format!(
        "{} pages, {} characters{layout}; every invariant holds",
        doc.page_count,
        doc.markdown.chars().count()
    )
}

/// A run drawn wholly off its page (the host's invariants allow text
/// straying past the edge, not a line nowhere near it): boxes of its text
/// would point at nothing.
fn off_page(doc: &ConvertedDocument) -> Option<String> {
    let l = doc.layout.as_ref()?;
    for r in &l.runs {
        // The invariants already hold runs to the document's pages.
        let page = l.pages.get(r.page.checked_sub(1)? as usize)?;
        let along = r
            .edges
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(a, b)| {
                (lo.min(a.min(b)), hi.max(a.max(b)))
            });
        let across = (r.across.0.min(r.across.1), r.across.0.max(r.across.1));
        let (x, y) = if r.vertical {
            (across, along)
        } else {
            (along, across)
        };
        let outside = x.1 < 0.0 || x.0 > page.width || y.1 < 0.0 || y.0 > page.height;
        if outside {
            return Some(format!(
                "runs-on-page: the run at {} lies wholly outside page {} ({} × {} pt): \
                 x {:.1}..{:.1}, y {:.1}..{:.1}",
                r.start, r.page, page.width, page.height, x.0, x.1, y.0, y.1
            ));
        }
    }
    None
}
