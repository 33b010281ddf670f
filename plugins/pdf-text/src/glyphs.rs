//! Glyphs with positions, read from the PDF's content streams.
//!
//! pdf-extract interprets the content streams (fonts, encodings, ToUnicode
//! maps, text matrices) and calls an [`OutputDev`] once per glyph with the
//! glyph's text rendering matrix. We keep only what the layout needs: where
//! the glyph sits, how wide and how large it is, and its text, in a frame
//! where the glyph's text runs left to right and y grows downwards.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

/// One glyph in its reading frame: `x` grows along the text direction, `y`
/// (the baseline) grows down the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glyph {
    /// Left edge of the glyph (its origin).
    pub x: f32,
    /// Baseline, top-down.
    pub y: f32,
    /// Advance width.
    pub width: f32,
    /// Font size after every transformation (points on the page).
    pub size: f32,
    /// Start of the glyph's text in [`PageGlyphs::text`] (byte offset).
    pub start: u32,
    /// Length of the glyph's text in bytes; 0 never occurs.
    pub len: u8,
    /// Text direction: 0 = left to right, 1 = bottom to top, 2 = upside
    /// down, 3 = top to bottom. Rotated text (landscape tables, margin
    /// notes) is laid out in its own frame.
    pub orientation: u8,
    /// The glyph is white space (an explicit space character): a word break.
    pub space: bool,
}

/// The glyphs of one page, in content-stream order.
#[derive(Debug, Clone, Default)]
pub struct PageGlyphs {
    /// 1-based page number.
    pub number: u32,
    /// Page width in points (media box), for the upright frame.
    pub width: f32,
    /// Page height in points (media box), for the upright frame.
    pub height: f32,
    /// The media box's top-left corner in PDF user space (x, y): upright
    /// glyphs sit at `(px - origin.0, origin.1 - py)`.
    pub origin: (f32, f32),
    /// All glyphs, in the order the content stream draws them.
    pub glyphs: Vec<Glyph>,
    /// The glyphs' text, concatenated; each glyph points into it.
    pub text: String,
    /// Glyphs whose text could not be decoded (no Unicode mapping):
    /// dropped, counted so the converter can warn instead of emitting garbage.
    pub undecodable: usize,
    /// Why the page's content could not be read, if it could not.
    pub error: Option<String>,
}

impl PageGlyphs {
    /// The text of one glyph.
    pub fn glyph_text(&self, glyph: &Glyph) -> &str {
        let start = glyph.start as usize;
        self.text
            .get(start..start + glyph.len as usize)
            .unwrap_or("")
    }
}

/// Reads the glyphs of every page of a loaded document.
///
/// Each page is read on its own, and a failure (an error or, natively, a
/// panic inside the PDF crate) costs that page only: it comes back with
/// `error` set and no glyphs.
pub fn read_pages(doc: &lopdf::Document) -> Vec<PageGlyphs> {
    let numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    numbers
        .into_iter()
        .map(|number| read_page(doc, number))
        .collect()
}

fn read_page(doc: &lopdf::Document, number: u32) -> PageGlyphs {
    let mut sink = GlyphSink {
        page: PageGlyphs {
            number,
            ..PageGlyphs::default()
        },
        origin: (0.0, 0.0),
        bounds: (0.0, 0.0, 0.0, 0.0),
    };
    // pdf-extract unwraps on malformed input; `prepare` removes the causes
    // we know of. Should one remain, natively the panic is caught here and
    // costs only this page; in wasm (panic = abort) it is a trap that the
    // host reports as a typed error.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::output_doc_page(doc, &mut sink, number)
    }));
    let mut page = sink.page;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => page.error = Some(describe_output_error(&e)),
        Err(_) => page.error = Some("the PDF reader failed on this page".to_string()),
    }
    if page.error.is_some() {
        page.glyphs.clear();
        page.text.clear();
    }
    page
}

fn describe_output_error(e: &OutputError) -> String {
    match e {
        OutputError::PdfError(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Collects glyphs from pdf-extract's callbacks.
struct GlyphSink {
    page: PageGlyphs,
    /// Media box corner (llx, ury): upright glyphs are stored relative to
    /// the top-left corner of the page.
    origin: (f32, f32),
    /// Media box (llx, lly, urx, ury), normalised.
    bounds: (f32, f32, f32, f32),
}

impl GlyphSink {
    fn push(&mut self, trm: &Transform, width: f64, font_size: f64, text: &str) {
        // The text rendering matrix maps glyph space to the page: its first
        // row is the direction the text runs in, its determinant the scale.
        let (a, b, c, d) = (trm.m11, trm.m12, trm.m21, trm.m22);
        let scale = (a * d - b * c).abs().sqrt();
        let size = (font_size * scale) as f32;
        let advance = (width * font_size * a.hypot(b)) as f32;
        let (px, py) = (trm.m31 as f32, trm.m32 as f32);
        if !(size.is_finite() && advance.is_finite() && px.is_finite() && py.is_finite()) {
            return;
        }
        // Text drawn off the page is invisible (and a broken matrix can put
        // it anywhere): keep what lies on the page, give or take a margin.
        let (x0, y0, x1, y1) = self.bounds;
        let margin = 0.5 * (x1 - x0).max(y1 - y0);
        if px < x0 - margin || px > x1 + margin || py < y0 - margin || py > y1 + margin {
            return;
        }
        let orientation = if a.abs() >= b.abs() {
            if a >= 0.0 { 0 } else { 2 }
        } else if b > 0.0 {
            1
        } else {
            3
        };
        // Rotate into the frame where this glyph's text runs left to right
        // and y grows downwards.
        let (x, y) = match orientation {
            0 => (px - self.origin.0, self.origin.1 - py),
            1 => (py, px),
            2 => (-px, py),
            _ => (-py, -px),
        };
        let mut clean = String::new();
        let mut space = false;
        let mut undecodable = false;
        for ch in text.chars() {
            match classify(ch) {
                CharClass::Keep => clean.push(ch),
                CharClass::Space => space = true,
                CharClass::Ligature(s) => clean.push_str(s),
                CharClass::Drop => undecodable = true,
                CharClass::Ignore => {}
            }
        }
        if clean.is_empty() {
            if undecodable {
                self.page.undecodable += 1;
                return;
            }
            if !space {
                return;
            }
            clean.push(' ');
        }
        // A glyph's text is a few bytes; a longer one (a broken ToUnicode
        // map) is cut at a character boundary to fit the length byte.
        let mut end = clean.len().min(u8::MAX as usize);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        let start = self.page.text.len() as u32;
        self.page.text.push_str(&clean[..end]);
        self.page.glyphs.push(Glyph {
            x,
            y,
            width: advance.max(0.0),
            size,
            start,
            len: end as u8,
            orientation,
            space: clean.trim().is_empty(),
        });
    }
}

enum CharClass {
    Keep,
    Space,
    Ligature(&'static str),
    Drop,
    Ignore,
}

/// What to do with one decoded character.
fn classify(ch: char) -> CharClass {
    match ch {
        // Typographic ligatures: spelled out so "ﬁrst" reads and matches "first".
        '\u{FB00}' => CharClass::Ligature("ff"),
        '\u{FB01}' => CharClass::Ligature("fi"),
        '\u{FB02}' => CharClass::Ligature("fl"),
        '\u{FB03}' => CharClass::Ligature("ffi"),
        '\u{FB04}' => CharClass::Ligature("ffl"),
        '\u{FB05}' | '\u{FB06}' => CharClass::Ligature("st"),
        // Zero-width marks carry no text and break no word.
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => CharClass::Ignore,
        c if c.is_whitespace() => CharClass::Space,
        // Control characters, the replacement character and private-use code
        // points are what a font without a Unicode mapping decodes to:
        // garbage, never text.
        c if c.is_control() => CharClass::Drop,
        '\u{FFFD}' | '\u{E000}'..='\u{F8FF}' => CharClass::Drop,
        _ => CharClass::Keep,
    }
}

impl OutputDev for GlyphSink {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.page.width = (media_box.urx - media_box.llx).abs() as f32;
        self.page.height = (media_box.ury - media_box.lly).abs() as f32;
        // Remember the box origin so upright glyphs land in page coordinates.
        self.origin = (media_box.llx as f32, media_box.ury as f32);
        self.page.origin = self.origin;
        let (x0, x1) = (
            media_box.llx.min(media_box.urx),
            media_box.llx.max(media_box.urx),
        );
        let (y0, y1) = (
            media_box.lly.min(media_box.ury),
            media_box.lly.max(media_box.ury),
        );
        self.bounds = (x0 as f32, y0 as f32, x1 as f32, y1 as f32);
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        self.push(trm, width, font_size, text);
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}
