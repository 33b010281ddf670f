//! Makes a loaded document safe and unambiguous for the glyph reader.
//!
//! pdf-extract trusts its input: it unwraps on a missing font, a missing
//! MediaBox, an operator with the wrong operands, text shown before a font
//! is set. Natively those panics are caught and cost a page; in wasm
//! (panic = abort) each one would trap the whole conversion. So before it
//! runs, every content stream it will read is rewritten to what it handles
//! safely:
//!
//! - only the operators that place text (state, matrices, fonts, text
//!   showing, form XObjects) are kept, each with operands of the right
//!   kind; paths, colours and images carry no text and go (which also
//!   spares their parsing);
//! - `Tf` must name a font that exists and looks readable, text is shown
//!   only once a font is set, `Do` must name a form (pdf-extract would read
//!   an image's pixels as a content stream);
//! - `'` and `"` (which pdf-extract ignores) become the `T*`/`Tw`/`Tc` and
//!   `Tj` they stand for;
//! - every page gets a MediaBox, inherited or a default one;
//! - each Form XObject's fonts get names of their own: pdf-extract caches
//!   fonts by resource name for a whole page, forms included, so a form
//!   naming another font `/F1` than its page does would have every later
//!   glyph decoded and measured with the wrong font.

use std::collections::{HashMap, HashSet};

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

/// Page size used when a page has no usable MediaBox (US Letter).
const DEFAULT_MEDIA_BOX: [f32; 4] = [0.0, 0.0, 612.0, 792.0];

/// Rewrites the document's pages and forms as described in the module
/// documentation. Content that cannot be decoded is replaced by nothing
/// (the page then reads as empty), never passed on.
pub fn prepare(doc: &mut Document) {
    repair_font_encodings(doc);
    let mut fonts = FontCheck::default();
    let forms: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter_map(|(id, obj)| match obj {
            Object::Stream(s) if is_form(s) => Some(*id),
            _ => None,
        })
        .collect();
    for id in forms {
        prepare_form(doc, id, &mut fonts);
    }
    let pages: Vec<ObjectId> = doc.get_pages().values().copied().collect();
    for id in pages {
        prepare_page(doc, id, &mut fonts);
    }
}

/// Encoding names pdf-extract knows for simple fonts (any other panics).
const SIMPLE_ENCODINGS: [&[u8]; 3] = [
    b"WinAnsiEncoding",
    b"MacRomanEncoding",
    b"MacExpertEncoding",
];

/// Gives simple fonts an encoding pdf-extract can use: an unknown name
/// (`/StandardEncoding`, a corrupt one) becomes WinAnsi, the closest for
/// text; a font with a Unicode map (ToUnicode, or from its CFF program) but
/// no encoding gets WinAnsi as the fallback pdf-extract reaches for (with
/// `expect`) when the map lacks a code.
fn repair_font_encodings(doc: &mut Document) {
    let fonts: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter_map(|(id, obj)| match obj {
            Object::Dictionary(d)
                if (d.has(b"BaseFont") || d.has(b"FontDescriptor"))
                    && !matches!(
                        d.get(b"Subtype").and_then(Object::as_name).ok(),
                        Some(b"Type0" | b"Type3" | b"CIDFontType0" | b"CIDFontType2")
                    ) =>
            {
                Some(*id)
            }
            _ => None,
        })
        .collect();
    let win_ansi = || Object::Name(b"WinAnsiEncoding".to_vec());
    // Fonts whose embedded CFF program gives pdf-extract a Unicode map (and
    // no Type 1 program a built-in encoding): an encoding is only their
    // fallback for unmapped codes, which pdf-extract otherwise unwraps.
    let font_files: HashSet<ObjectId> = fonts
        .iter()
        .copied()
        .filter(|&id| {
            let Ok(font) = doc.get_dictionary(id) else {
                return false;
            };
            let descriptor = font
                .get(b"FontDescriptor")
                .ok()
                .and_then(|o| resolve_dict(doc, o));
            descriptor.is_some_and(|d| d.has(b"FontFile3") && !d.has(b"FontFile"))
        })
        .collect();
    for id in fonts {
        let Ok(Object::Dictionary(font)) = doc.get_object_mut(id) else {
            continue;
        };
        if !font.has(b"Encoding") {
            if font.has(b"ToUnicode") || font_files.contains(&id) {
                font.set("Encoding", win_ansi());
            }
            continue;
        }
        match font.get_mut(b"Encoding") {
            Ok(Object::Name(name)) if !SIMPLE_ENCODINGS.contains(&name.as_slice()) => {
                *name = b"WinAnsiEncoding".to_vec();
            }
            Ok(Object::Dictionary(encoding)) => {
                if let Ok(Object::Name(base)) = encoding.get_mut(b"BaseEncoding")
                    && !SIMPLE_ENCODINGS.contains(&base.as_slice())
                {
                    *base = b"WinAnsiEncoding".to_vec();
                }
            }
            _ => {}
        }
    }
}

fn is_form(stream: &Stream) -> bool {
    stream.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Form".as_slice())
}

fn prepare_form(doc: &mut Document, id: ObjectId, fonts: &mut FontCheck) {
    let Ok(Object::Stream(stream)) = doc.get_object(id) else {
        return;
    };
    let own_resources = stream
        .dict
        .get(b"Resources")
        .ok()
        .and_then(|o| resolve_dict(doc, o));
    let dangling = own_resources.is_none() && stream.dict.has(b"Resources");
    let bytes = stream.decompressed_content().unwrap_or_default();
    let suffix = format!("_form{}", id.0);
    let (operations, resources) = match own_resources {
        Some(mut resources) => {
            // The form's fonts, renamed, in a copy of its resources (the
            // original dictionary may be shared with pages).
            let mut renamed = Dictionary::new();
            if let Some(fonts) = resources
                .get(b"Font")
                .ok()
                .and_then(|o| resolve_dict(doc, o))
            {
                for (name, font) in fonts.iter() {
                    renamed.set([name.as_slice(), suffix.as_bytes()].concat(), font.clone());
                }
            }
            resources.set("Font", Object::Dictionary(renamed));
            let allowed = Allowed::from_resources(doc, &resources, fonts);
            let ops = decode(&bytes)
                .into_iter()
                .map(|mut op| {
                    if op.operator == "Tf"
                        && let Some(Object::Name(name)) = op.operands.first_mut()
                    {
                        name.extend_from_slice(suffix.as_bytes());
                    }
                    op
                })
                .collect::<Vec<_>>();
            (sanitize(ops, &allowed), Some(resources))
        }
        // Without resources of its own, a form uses its page's: names are
        // checked when the page is (only their kinds here).
        None => (sanitize(decode(&bytes), &Allowed::unchecked()), None),
    };
    let Ok(encoded) = (Content { operations }).encode() else {
        return;
    };
    if let Ok(Object::Stream(stream)) = doc.get_object_mut(id) {
        if let Some(resources) = resources {
            stream.dict.set("Resources", Object::Dictionary(resources));
        } else if dangling {
            // pdf-extract would dereference it with `expect`.
            stream.dict.remove(b"Resources");
        }
        stream.set_plain_content(encoded);
    }
}

fn prepare_page(doc: &mut Document, id: ObjectId, fonts: &mut FontCheck) {
    let Ok(page) = doc.get_dictionary(id) else {
        return;
    };
    let media_box_ok = inherited(doc, page, b"MediaBox").is_some_and(|o| {
        resolve(doc, o)
            .as_array()
            .is_ok_and(|a| a.len() == 4 && a.iter().all(|n| number(resolve(doc, n)).is_some()))
    });
    let resources = inherited(doc, page, b"Resources")
        .and_then(|o| resolve_dict(doc, o))
        .unwrap_or_default();
    let allowed = Allowed::from_resources(doc, &resources, fonts);
    let bytes = doc.get_page_content(id).unwrap_or_default();
    let operations = sanitize(decode(&bytes), &allowed);
    let encoded = (Content { operations }).encode().unwrap_or_default();
    let content = doc.add_object(Stream::new(Dictionary::new(), encoded));
    if let Ok(page) = doc.get_dictionary_mut(id) {
        page.set("Contents", content);
        // Resolved here, so a dangling reference never reaches pdf-extract.
        page.set("Resources", Object::Dictionary(resources));
        if !media_box_ok {
            page.set(
                "MediaBox",
                DEFAULT_MEDIA_BOX
                    .iter()
                    .map(|&n| Object::Real(n))
                    .collect::<Vec<Object>>(),
            );
        }
    }
}

/// The names a content stream may use: readable fonts and form XObjects.
struct Allowed {
    fonts: Option<HashSet<Vec<u8>>>,
    forms: Option<HashSet<Vec<u8>>>,
}

impl Allowed {
    fn from_resources(doc: &Document, resources: &Dictionary, check: &mut FontCheck) -> Allowed {
        let entries = |key: &[u8]| -> Vec<(Vec<u8>, Object)> {
            resources
                .get(key)
                .ok()
                .and_then(|o| resolve_dict(doc, o))
                .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        let fonts = entries(b"Font")
            .into_iter()
            .filter(|(_, font)| check.readable(doc, font))
            .map(|(name, _)| name)
            .collect();
        let forms = entries(b"XObject")
            .into_iter()
            .filter(|(_, o)| matches!(resolve(doc, o), Object::Stream(s) if is_form(s)))
            .map(|(name, _)| name)
            .collect();
        Allowed {
            fonts: Some(fonts),
            forms: Some(forms),
        }
    }

    /// Any name goes (a form that borrows its page's resources).
    fn unchecked() -> Allowed {
        Allowed {
            fonts: None,
            forms: None,
        }
    }

    fn font(&self, name: &[u8]) -> bool {
        self.fonts.as_ref().is_none_or(|f| f.contains(name))
    }

    fn form(&self, name: &[u8]) -> bool {
        self.forms.as_ref().is_none_or(|f| f.contains(name))
    }
}

/// Keeps the operations pdf-extract needs for text, each well formed.
fn sanitize(ops: Vec<Operation>, allowed: &Allowed) -> Vec<Operation> {
    let mut out = Vec::with_capacity(ops.len() / 2);
    let mut font_set = false;
    for op in ops {
        let o = &op.operands;
        let keep = match op.operator.as_str() {
            "q" | "Q" | "BT" | "ET" | "T*" => true,
            "cm" | "Tm" => numbers(o, 6),
            "Td" | "TD" => numbers(o, 2),
            "Tc" | "Tw" | "Tz" | "TL" | "Ts" => numbers(o, 1),
            "Tf" => {
                let ok = o.len() == 2
                    && number(&o[1]).is_some()
                    && o[0].as_name().is_ok_and(|n| allowed.font(n));
                font_set |= ok;
                ok
            }
            "Tj" => font_set && o.len() == 1 && matches!(o[0], Object::String(..)),
            "TJ" => {
                if font_set && let [Object::Array(items)] = o.as_slice() {
                    let items: Vec<Object> = items
                        .iter()
                        .filter(|i| matches!(i, Object::String(..)) || number(i).is_some())
                        .cloned()
                        .collect();
                    out.push(Operation::new("TJ", vec![Object::Array(items)]));
                }
                false
            }
            // `'` = T* then Tj; `"` = Tw, Tc, then `'`.
            "'" => {
                if font_set && o.len() == 1 && matches!(o[0], Object::String(..)) {
                    out.push(Operation::new("T*", vec![]));
                    out.push(Operation::new("Tj", o.clone()));
                }
                false
            }
            "\"" => {
                if font_set
                    && o.len() == 3
                    && numbers(&o[..2], 2)
                    && matches!(o[2], Object::String(..))
                {
                    out.push(Operation::new("Tw", vec![o[0].clone()]));
                    out.push(Operation::new("Tc", vec![o[1].clone()]));
                    out.push(Operation::new("T*", vec![]));
                    out.push(Operation::new("Tj", vec![o[2].clone()]));
                }
                false
            }
            "Do" => o.len() == 1 && o[0].as_name().is_ok_and(|n| allowed.form(n)),
            _ => false,
        };
        if keep {
            out.push(op);
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Vec<Operation> {
    Content::decode(bytes)
        .map(|c| c.operations)
        .unwrap_or_default()
}

fn numbers(operands: &[Object], n: usize) -> bool {
    operands.len() == n && operands.iter().all(|o| number(o).is_some())
}

fn number(o: &Object) -> Option<f32> {
    match o {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

/// Follows references (a few levels; a cycle ends as Null).
fn resolve<'a>(doc: &'a Document, mut o: &'a Object) -> &'a Object {
    for _ in 0..8 {
        match o {
            Object::Reference(id) => match doc.get_object(*id) {
                Ok(target) => o = target,
                Err(_) => return &Object::Null,
            },
            _ => return o,
        }
    }
    &Object::Null
}

fn resolve_dict(doc: &Document, o: &Object) -> Option<Dictionary> {
    match resolve(doc, o) {
        Object::Dictionary(d) => Some(d.clone()),
        _ => None,
    }
}

/// A page attribute, looked up the page tree as pdf-extract does.
fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..32 {
        if let Ok(value) = node.get(key) {
            return Some(value);
        }
        node = match node.get(b"Parent").map(|p| resolve(doc, p)) {
            Ok(Object::Dictionary(parent)) => parent,
            _ => return None,
        };
    }
    None
}

/// Verdicts on fonts, by object, so a font shared by every page is
/// examined once.
#[derive(Default)]
struct FontCheck {
    seen: HashMap<ObjectId, bool>,
}

impl FontCheck {
    fn readable(&mut self, doc: &Document, font: &Object) -> bool {
        match font {
            Object::Reference(id) => *self
                .seen
                .entry(*id)
                .or_insert_with(|| font_is_readable(doc, font)),
            _ => font_is_readable(doc, font),
        }
    }
}

/// Whether pdf-extract can build this font without unwrapping on a hole:
/// the entries it reads, when present, resolve to the kinds it expects,
/// and the embedded font programs it parses (Type 1 encodings, CFF) parse.
fn font_is_readable(doc: &Document, font: &Object) -> bool {
    let Object::Dictionary(font) = resolve(doc, font) else {
        return false;
    };
    let get = |key: &[u8]| font.get(key).ok().map(|o| resolve(doc, o));
    let Some(Object::Name(subtype)) = get(b"Subtype") else {
        return false;
    };
    let entries_ok = |d: &Dictionary| {
        d.iter()
            .all(|(k, v)| k.as_slice() == b"Parent" || references_resolve(doc, v, 8))
    };
    if !entries_ok(font) {
        return false;
    }
    let type0 = subtype.as_slice() == b"Type0";
    let encoding_ok = match get(b"Encoding") {
        None => !type0,
        Some(Object::Name(name)) if type0 => {
            matches!(name.as_slice(), b"Identity-H" | b"Identity-V")
        }
        Some(Object::Name(name)) => SIMPLE_ENCODINGS.contains(&name.as_slice()),
        Some(Object::Stream(s)) if type0 => {
            let bytes = s
                .decompressed_content()
                .unwrap_or_else(|_| s.content.clone());
            adobe_cmap_parser::parse(&bytes).is_ok()
                && guard(|| adobe_cmap_parser::get_byte_mapping(&bytes).is_ok())
        }
        Some(Object::Dictionary(d)) => {
            entries_ok(d)
                && d.get(b"Differences")
                    .map(|o| resolve(doc, o))
                    .map_or(true, |o| {
                        o.as_array().is_ok_and(|items| {
                            items.iter().all(|i| {
                                matches!(resolve(doc, i), Object::Integer(_) | Object::Name(_))
                            })
                        })
                    })
        }
        _ => false,
    };
    let to_unicode_ok = match get(b"ToUnicode") {
        Some(Object::Stream(s)) => {
            let bytes = s
                .decompressed_content()
                .unwrap_or_else(|_| s.content.clone());
            adobe_cmap_parser::parse(&bytes).is_ok()
                && guard(|| adobe_cmap_parser::get_unicode_map(&bytes).ok()).is_some_and(|map| {
                    map.values().all(|v| {
                        let units: Vec<u16> = v
                            .chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect();
                        v.len() % 2 == 0
                            && (matches!(units.as_slice(), [0xD800..=0xDFFF])
                                || String::from_utf16(&units).is_ok())
                    })
                })
        }
        // pdf-extract reads any other ToUnicode as a stream or as the name
        // Identity-H, and panics (or hits a `todo!`) on everything else:
        // `null`, `/Identity-V`, a dictionary (found by fuzzing).
        None => true,
        Some(Object::Name(n)) => n.as_slice() == b"Identity-H",
        _ => false,
    };
    let widths_ok = match get(b"Widths") {
        None => subtype.as_slice() != b"Type3",
        Some(Object::Array(w)) => {
            let first = get(b"FirstChar").and_then(number);
            let last = get(b"LastChar").and_then(number);
            w.iter().all(|n| number(resolve(doc, n)).is_some())
                && match (first, last) {
                    (Some(f), Some(l)) => (f as i64 + w.len() as i64 - 1) == l as i64,
                    _ => subtype.as_slice() != b"Type3",
                }
        }
        _ => false,
    };
    let descendants_ok = subtype.as_slice() != b"Type0"
        || matches!(get(b"DescendantFonts"), Some(Object::Array(a))
            if a.first().is_some_and(|d| matches!(resolve(doc, d), Object::Dictionary(d) if entries_ok(d))));
    let base_font_ok =
        subtype.as_slice() == b"Type3" || matches!(get(b"BaseFont"), Some(Object::Name(_)));
    let descriptor_ok = match get(b"FontDescriptor") {
        None => true,
        Some(Object::Dictionary(d)) => entries_ok(d) && font_files_parse(doc, d, subtype),
        _ => false,
    };
    base_font_ok && encoding_ok && to_unicode_ok && widths_ok && descendants_ok && descriptor_ok
}

/// Runs a font parser that may panic on bad input: natively a panic means
/// "not readable" (in wasm it aborts, as it would have inside pdf-extract).
fn guard<T: Default>(f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_default()
}

/// Whether every reference reachable from `o` (to `depth` levels, not
/// through streams' data) points at an object that exists: pdf-extract
/// dereferences with `expect`.
fn references_resolve(doc: &Document, o: &Object, depth: u8) -> bool {
    match o {
        Object::Reference(id) => match doc.get_object(*id) {
            Ok(target) => depth == 0 || references_resolve(doc, target, depth - 1),
            Err(_) => false,
        },
        Object::Array(items) if depth > 0 => {
            items.iter().all(|i| references_resolve(doc, i, depth - 1))
        }
        Object::Dictionary(d) if depth > 0 => d
            .iter()
            .all(|(k, v)| k.as_slice() == b"Parent" || references_resolve(doc, v, depth - 1)),
        Object::Stream(s) if depth > 0 => s
            .dict
            .iter()
            .all(|(k, v)| k.as_slice() == b"Parent" || references_resolve(doc, v, depth - 1)),
        _ => true,
    }
}

/// Runs the parsers pdf-extract runs on embedded fonts (and unwraps).
fn font_files_parse(doc: &Document, descriptor: &Dictionary, subtype: &[u8]) -> bool {
    let file = |key: &[u8]| match descriptor.get(key).map(|o| resolve(doc, o)) {
        Ok(Object::Stream(s)) => Some(s),
        _ => None,
    };
    let contents = |s: &Stream| {
        s.decompressed_content()
            .unwrap_or_else(|_| s.content.clone())
    };
    if subtype == b"Type1"
        && let Some(s) = file(b"FontFile")
        && !guard(|| type1_encoding_parser::get_encoding_map(&contents(s)).is_ok())
    {
        return false;
    }
    if let Some(s) = file(b"FontFile3") {
        let Ok(kind) = s
            .dict
            .get(b"Subtype")
            .map(|o| resolve(doc, o))
            .and_then(Object::as_name)
        else {
            return false;
        };
        if kind == b"Type1C" {
            let bytes = contents(s);
            let parses = guard(|| {
                cff_parser::Table::parse(&bytes).is_some_and(|table| {
                    let codes = table.encoding.get_code_to_sid_table(&table.charset);
                    codes
                        .values()
                        .all(|&sid| cff_parser::string_by_id(&table, sid).is_some())
                })
            });
            if !parses {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use lopdf::{Dictionary, Document, Object};

    fn font(to_unicode: Option<Object>) -> Object {
        let mut d = Dictionary::new();
        d.set("Type", Object::Name(b"Font".to_vec()));
        d.set("Subtype", Object::Name(b"Type1".to_vec()));
        d.set("BaseFont", Object::Name(b"Helvetica".to_vec()));
        if let Some(t) = to_unicode {
            d.set("ToUnicode", t);
        }
        Object::Dictionary(d)
    }

    #[test]
    fn a_to_unicode_that_pdf_extract_cannot_read_makes_the_font_unreadable() {
        let doc = Document::with_version("1.5");
        assert!(super::font_is_readable(&doc, &font(None)));
        assert!(super::font_is_readable(
            &doc,
            &font(Some(Object::Name(b"Identity-H".to_vec())))
        ));
        for bad in [
            Object::Null,
            Object::Name(b"Identity-V".to_vec()),
            Object::Dictionary(Dictionary::new()),
            Object::Integer(3),
        ] {
            assert!(
                !super::font_is_readable(&doc, &font(Some(bad.clone()))),
                "{bad:?}"
            );
        }
    }
}
