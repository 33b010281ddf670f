//! Pages as images. hayro (pure Rust, Apache-2.0/MIT) rasterizes a page of
//! the PDF to a PNG; chosen over drawing our own glyph boxes because it
//! renders figures, tables' rules and fonts as the reader sees them (see
//! README.md for its speed against pdftoppm).

use std::panic::{AssertUnwindSafe, catch_unwind};

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::{LoadPdfError, Pdf};
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{RenderCache, RenderSettings};

use crate::ConvertError;

/// Widest image rendered, in pixels.
pub const MAX_WIDTH: u32 = 4000;

/// Renders page `page` (from 1) of `pdf` as a PNG `width` pixels wide (the
/// height follows the page's aspect ratio).
pub fn render(pdf: &[u8], page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
    match catch_unwind(AssertUnwindSafe(|| render_unguarded(pdf, page, width))) {
        Ok(r) => r,
        Err(_) => Err(ConvertError::Internal(format!(
            "the renderer panicked on page {page}"
        ))),
    }
}

fn render_unguarded(pdf: &[u8], page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
    if !(1..=MAX_WIDTH).contains(&width) {
        return Err(ConvertError::Unsupported(format!(
            "a width of {width} pixels (1 to {MAX_WIDTH})"
        )));
    }
    let doc = Pdf::new(pdf.to_vec()).map_err(|e| match e {
        LoadPdfError::Decryption(e) => ConvertError::Encrypted(format!("{e:?}")),
        LoadPdfError::Invalid => ConvertError::Malformed("not a readable PDF".into()),
    })?;
    let pages = doc.pages();
    let count = pages.len();
    let p = page
        .checked_sub(1)
        .and_then(|i| pages.get(i as usize))
        .ok_or_else(|| {
            ConvertError::Unsupported(format!("page {page} of a PDF of {count} pages"))
        })?;
    let (w, h) = p.render_dimensions();
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(ConvertError::Malformed(format!(
            "page {page} has no size ({w} × {h})"
        )));
    }
    let scale = width as f32 / w;
    // The pixel height is bounded as the width is: a sliver of a page
    // does not become a huge image.
    let height = (h * scale).round().clamp(1.0, (4 * MAX_WIDTH) as f32) as u16;
    let settings = RenderSettings {
        x_scale: scale,
        y_scale: scale,
        width: Some(width as u16),
        height: Some(height),
        bg_color: WHITE,
    };
    let pixmap = hayro::render(
        p,
        &RenderCache::new(),
        &InterpreterSettings::default(),
        &settings,
    );
    pixmap
        .into_png()
        .map_err(|e| ConvertError::Internal(format!("encoding page {page} as PNG: {e}")))
}
