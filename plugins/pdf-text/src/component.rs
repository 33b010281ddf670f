//! The WebAssembly component: the `pdf-converter` world of
//! evistream:plugin@0.2.0 (markdown with its layout), wrapping
//! [`crate::convert`], through the SDK's bindings.
//!
//! Only type mapping lives here; every decision is in the plain Rust
//! modules, which are tested natively.

use evistream_plugin_sdk::converter::{
    ConfigEntry, ConvertError, Document, Guest, Metadata, PageRange, export,
};

struct Component;

impl Guest for Component {
    fn convert(pdf: Vec<u8>, _config: Vec<ConfigEntry>) -> Result<Document, ConvertError> {
        // No configuration keys yet; unknown keys are ignored so a binding's
        // config can be written ahead of the converter that reads it.
        crate::convert(&pdf).map(document).map_err(error)
    }

    fn render(pdf: Vec<u8>, page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
        crate::render::render(&pdf, page, width).map_err(error)
    }
}

fn document(doc: crate::Document) -> Document {
    Document {
        markdown: doc.markdown,
        pages: doc
            .pages
            .into_iter()
            .map(|p| PageRange {
                number: p.number,
                start: p.start,
                end: p.end,
            })
            .collect(),
        metadata: Metadata {
            title: doc.metadata.title,
            authors: doc.metadata.authors,
            page_count: doc.metadata.page_count,
            producer: doc.metadata.producer,
        },
        warnings: doc.warnings,
        layout: doc.layout.into(),
    }
}

fn error(e: crate::ConvertError) -> ConvertError {
    match e {
        crate::ConvertError::Encrypted(m) => ConvertError::Encrypted(m),
        crate::ConvertError::Malformed(m) => ConvertError::Malformed(m),
        crate::ConvertError::Unsupported(m) => ConvertError::Unsupported(m),
        crate::ConvertError::Internal(m) => ConvertError::Internal(m),
    }
}

export!(Component);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_answers_natively() {
        let r = <Component as Guest>::convert(b"not a pdf".to_vec(), Vec::new());
        assert!(matches!(r, Err(ConvertError::Malformed(_))));
    }
}
