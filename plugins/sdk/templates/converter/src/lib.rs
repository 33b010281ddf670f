//! An eviStream `pdf-converter` (contract 0.2): the text of each page as
//! lopdf reads it, pages in order, with each page's range in the text and
//! its size. No line positions (`layout.runs`), no tables, no page images:
//! the host then draws no boxes and shows placeholders for pages.
//!
//! [`convert`] is plain Rust, tested natively (`cargo test`); the
//! component is the [`Guest`] implementation and `export!` at the end.

use evistream_plugin_sdk::converter::{
    ConfigEntry, ConvertError, Document, Guest, Metadata, PageRange, export, layout,
};
use lopdf::{Dictionary, Object};

/// Page size used when a page has no usable MediaBox (US Letter, points).
const LETTER: (f32, f32) = (612.0, 792.0);

/// Largest page side the host accepts, in points.
const MAX_SIDE: f32 = 14_400.0;

/// Converts a PDF: every page's text, pages separated by a blank line.
pub fn convert(pdf: &[u8]) -> Result<Document, ConvertError> {
    let doc = lopdf::Document::load_mem(pdf).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => {
            ConvertError::Encrypted(format!("cannot decrypt the PDF: {e}"))
        }
        other => ConvertError::Malformed(other.to_string()),
    })?;
    // lopdf decrypts files with an empty user password itself; one still
    // encrypted needs a password we do not have.
    if doc.is_encrypted() {
        return Err(ConvertError::Encrypted(
            "the PDF needs a password to open".into(),
        ));
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ConvertError::Malformed("the PDF has no pages".into()));
    }
    let mut markdown = String::new();
    let mut ranges = Vec::with_capacity(pages.len());
    let mut sizes = Vec::with_capacity(pages.len());
    let mut warnings = Vec::new();
    // Offsets count code points (the contract's unit), not bytes.
    let mut at = 0u32;
    for (i, (&number, &id)) in pages.iter().enumerate() {
        // Page ranges and sizes must be numbered 1, 2, … in order.
        let n = i as u32 + 1;
        let text = match doc.extract_text(&[number]) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!("page {n} could not be read: {e}"));
                String::new()
            }
        };
        let text = text.trim();
        if text.is_empty() {
            warnings.push(format!("page {n} has no text layer (scanned?)"));
        }
        let mut page = text.to_owned();
        if n < pages.len() as u32 {
            page.push_str("\n\n");
        }
        let start = at;
        at += page.chars().count() as u32;
        markdown.push_str(&page);
        ranges.push(PageRange {
            number: n,
            start,
            end: at,
        });
        let (width, height) = doc
            .get_dictionary(id)
            .ok()
            .and_then(|d| media_box(&doc, d))
            .unwrap_or_else(|| {
                warnings.push(format!("page {n} has no usable MediaBox; Letter assumed"));
                LETTER
            });
        sizes.push(layout::PageSize {
            number: n,
            width,
            height,
        });
    }
    let layout = layout::Layout {
        pages: sizes,
        ..Default::default()
    };
    Ok(Document {
        markdown,
        metadata: Metadata {
            title: None,
            authors: Vec::new(),
            // The host requires one page range per page.
            page_count: ranges.len() as u32,
            producer: None,
        },
        pages: ranges,
        warnings,
        layout: layout.into(),
    })
}

/// Width and height of a page's MediaBox (inherited from its parents when
/// the page has none), when it is a real page's size.
fn media_box(doc: &lopdf::Document, page: &Dictionary) -> Option<(f32, f32)> {
    let mut node = page;
    // Bounded: a malformed file may have a cycle of parents.
    for _ in 0..32 {
        if let Ok(b) = node.get(b"MediaBox") {
            let (_, b) = doc.dereference(b).ok()?;
            let v: Vec<f32> = b
                .as_array()
                .ok()?
                .iter()
                .filter_map(|o| doc.dereference(o).ok()?.1.as_float().ok())
                .collect();
            let [x0, y0, x1, y1] = v[..] else {
                return None;
            };
            let (w, h) = ((x1 - x0).abs(), (y1 - y0).abs());
            let side = |s: f32| s.is_finite() && s > 0.0 && s <= MAX_SIDE;
            return (side(w) && side(h)).then_some((w, h));
        }
        node = match node.get(b"Parent").map(|p| doc.dereference(p)) {
            Ok(Ok((_, Object::Dictionary(parent)))) => parent,
            _ => return None,
        };
    }
    None
}

struct Converter;

impl Guest for Converter {
    fn convert(pdf: Vec<u8>, _config: Vec<ConfigEntry>) -> Result<Document, ConvertError> {
        // No configuration keys; unknown ones are ignored.
        convert(&pdf)
    }

    fn render(_pdf: Vec<u8>, _page: u32, _width: u32) -> Result<Vec<u8>, ConvertError> {
        // The host shows a placeholder for pages a converter cannot render.
        Err(ConvertError::Unsupported(
            "this converter renders no page images".into(),
        ))
    }
}

export!(Converter);

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::content::{Content, Operation};
    use lopdf::{Stream, StringFormat, dictionary};

    /// A PDF with one page per entry, each a line of Helvetica text; the
    /// second page is A4 and inherits nothing.
    fn pdf(pages: &[&str]) -> Vec<u8> {
        let mut doc = lopdf::Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
        let mut kids = Vec::new();
        for (i, text) in pages.iter().enumerate() {
            let latin1: Vec<u8> = text.chars().map(|c| c as u8).collect();
            let content = Content {
                operations: vec![
                    Operation::new("BT", vec![]),
                    Operation::new("Tf", vec!["F1".into(), 12.into()]),
                    Operation::new("Td", vec![72.into(), 700.into()]),
                    // Latin-1 is WinAnsi for these letters.
                    Operation::new("Tj", vec![Object::String(latin1, StringFormat::Literal)]),
                    Operation::new("ET", vec![]),
                ],
            };
            let encoded = content.encode().expect("content encodes");
            let contents = doc.add_object(Stream::new(dictionary! {}, encoded));
            let mut page = dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => contents,
            };
            if i == 1 {
                page.set("MediaBox", vec![0.into(), 0.into(), 595.into(), 842.into()]);
            }
            kids.push(doc.add_object(page).into());
        }
        let count = kids.len() as i64;
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => count,
                "Resources" => resources,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("the PDF saves");
        out
    }

    #[test]
    fn pages_are_converted_in_order_with_code_point_ranges() {
        let doc = convert(&pdf(&["Café au lait", "Second page"])).expect("converts");
        assert_eq!(doc.markdown, "Café au lait\n\nSecond page");
        let ranges: Vec<(u32, u32, u32)> = doc
            .pages
            .iter()
            .map(|p| (p.number, p.start, p.end))
            .collect();
        // "Café au lait\n\n" is 14 code points (15 bytes).
        assert_eq!(ranges, [(1, 0, 14), (2, 14, 25)]);
        assert_eq!(doc.metadata.page_count, 2);
        let sizes: Vec<(u32, f32, f32)> = doc
            .layout
            .pages
            .iter()
            .map(|p| (p.number, p.width, p.height))
            .collect();
        assert_eq!(sizes, [(1, 612.0, 792.0), (2, 595.0, 842.0)]);
        assert!(doc.layout.runs.is_empty() && doc.layout.tables.is_empty());
        assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    }

    #[test]
    fn bytes_that_are_not_a_pdf_are_malformed() {
        let r = <Converter as Guest>::convert(b"plain text".to_vec(), Vec::new());
        assert!(matches!(r, Err(ConvertError::Malformed(_))));
        let mut cut = pdf(&["text"]);
        cut.truncate(120);
        assert!(matches!(convert(&cut), Err(ConvertError::Malformed(_))));
    }
}
