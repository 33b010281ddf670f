//! Document metadata from the PDF's Info dictionary.
//!
//! The Info dictionary is often missing or wrong (file names, typesetting
//! job ids as titles), so the title falls back to the largest text on the
//! first page.

use lopdf::{Dictionary, Document as PdfDocument, Object};

use crate::Metadata;

/// Reads title, authors and producer; `title_from_page` is used when the
/// Info title is missing or is not a real title.
pub fn read(doc: &PdfDocument, page_count: u32, title_from_page: Option<String>) -> Metadata {
    let info = info_dictionary(doc);
    let field = |key: &[u8]| -> Option<String> {
        let info = info?;
        let value = match info.get(key).ok()? {
            Object::Reference(id) => doc.get_object(*id).ok()?,
            other => other,
        };
        let text = decode_text_string(value.as_str().ok()?);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        (!text.is_empty()).then_some(text)
    };
    let title = field(b"Title")
        .filter(|t| looks_like_title(t))
        .or(title_from_page.filter(|t| !t.trim().is_empty()));
    let authors = field(b"Author")
        .map(|a| split_authors(&a))
        .unwrap_or_default();
    let producer = field(b"Producer").or_else(|| field(b"Creator"));
    Metadata {
        title,
        authors,
        page_count,
        producer,
    }
}

fn info_dictionary(doc: &PdfDocument) -> Option<&Dictionary> {
    match doc.trailer.get(b"Info").ok()? {
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        Object::Dictionary(d) => Some(d),
        _ => None,
    }
}

/// A real title has words: "TPM14126 844..853" or "paper.pdf" is a job
/// name, "Untitled" or "Microsoft Word - draft.doc" an application's.
fn looks_like_title(title: &str) -> bool {
    let lower = title.to_lowercase();
    let file_like = [
        ".pdf", ".doc", ".docx", ".tex", ".dvi", ".indd", ".qxd", ".rtf",
    ]
    .iter()
    .any(|ext| lower.trim_end().ends_with(ext));
    let words = title
        .split_whitespace()
        .filter(|w| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic))
        .count();
    !file_like
        && words >= 2
        && !lower.starts_with("untitled")
        && !lower.starts_with("microsoft word")
}

/// Splits an Author entry into names: on ";" when present, else on ","
/// and " and ". Drops "et al.".
fn split_authors(authors: &str) -> Vec<String> {
    let cleaned = authors
        .replace("{et al.}", "")
        .replace("et al.", "")
        .replace("et al", "");
    let parts: Vec<&str> = if cleaned.contains(';') {
        cleaned.split(';').collect()
    } else {
        cleaned
            .split([',', '&'])
            .flat_map(|p| p.split(" and "))
            .collect()
    };
    parts
        .into_iter()
        .map(|p| p.trim().trim_end_matches([',', '.']).trim().to_string())
        .filter(|p| p.chars().any(char::is_alphabetic))
        .collect()
}

/// Decodes a PDF text string: UTF-16BE or UTF-8 with a byte-order mark,
/// else PDFDocEncoding.
pub fn decode_text_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes.iter().map(|&b| pdf_doc_char(b)).collect()
}

/// PDFDocEncoding: Latin-1, except for a block of typographic characters
/// at 0x18–0x1F and 0x80–0x9F.
fn pdf_doc_char(b: u8) -> char {
    const HIGH: [char; 32] = [
        '•', '†', '‡', '…', '—', '–', 'ƒ', '⁄', '‹', '›', '−', '‰', '„', '“', '”', '‘', '’', '‚',
        '™', 'ﬁ', 'ﬂ', 'Ł', 'Œ', 'Š', 'Ÿ', 'Ž', 'ı', 'ł', 'œ', 'š', 'ž', '\u{FFFD}',
    ];
    const LOW: [char; 8] = ['˘', 'ˇ', 'ˆ', '˙', '˝', '˛', '˚', '˜'];
    match b {
        0x18..=0x1F => LOW[(b - 0x18) as usize],
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        0xA0 => '€',
        _ => b as char,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_strings_decode() {
        assert_eq!(decode_text_string(b"\xFE\xFF\x00A\x00\xE9"), "Aé");
        assert_eq!(decode_text_string(b"caf\xE9 \x93x"), "café ﬁx");
    }

    #[test]
    fn job_names_are_not_titles() {
        assert!(!looks_like_title("TPM14126 844..853"));
        assert!(!looks_like_title("paper_final.pdf"));
        assert!(looks_like_title(
            "Glycemic effects of quinine infusion in healthy volunteers"
        ));
    }

    #[test]
    fn authors_split() {
        assert_eq!(
            split_authors("Eleftherios Karatzanos {et al.}"),
            vec!["Eleftherios Karatzanos"]
        );
        assert_eq!(
            split_authors("A. Smith, B. Jones and C. Lee"),
            vec!["A. Smith", "B. Jones", "C. Lee"]
        );
        assert_eq!(
            split_authors("Smith, A.; Jones, B."),
            vec!["Smith, A", "Jones, B"]
        );
    }
}
