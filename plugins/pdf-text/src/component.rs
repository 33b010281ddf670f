//! The WebAssembly component: the `pdf-converter` world of
//! evistream:plugin@0.2.0 (markdown with its layout), wrapping
//! [`crate::convert`].
//!
//! Only type mapping lives here; every decision is in the plain Rust
//! modules, which are tested natively.

wit_bindgen::generate!({
    path: "../../wit/v0.2",
    world: "pdf-converter",
});

use evistream::plugin::converter_types::{
    ConvertError, Document, Layout, Metadata, PageSize, Table, TableCell, TableRow, TextRun,
};
use evistream::plugin::types::{ConfigEntry, PageRange};
use exports::evistream::plugin::converter::Guest;

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
        layout: Layout {
            pages: doc
                .layout
                .pages
                .into_iter()
                .map(|p| PageSize {
                    number: p.number,
                    width: p.width,
                    height: p.height,
                })
                .collect(),
            runs: doc
                .layout
                .runs
                .into_iter()
                .map(|r| TextRun {
                    start: r.start,
                    page: r.page,
                    vertical: r.vertical,
                    across: r.across,
                    edges: r.edges,
                })
                .collect(),
            tables: doc.layout.tables.into_iter().map(table).collect(),
        },
    }
}

fn table(t: page_layout::Table) -> Table {
    Table {
        pages: t.pages,
        caption: t.caption,
        rows: t
            .rows
            .into_iter()
            .map(|r| TableRow {
                cells: r
                    .cells
                    .into_iter()
                    .map(|c| TableCell {
                        span: c.span,
                        row_span: c.row_span,
                        col_span: c.col_span,
                        header: c.header,
                    })
                    .collect(),
            })
            .collect(),
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
