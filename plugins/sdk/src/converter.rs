//! The `pdf-converter` world of `evistream:plugin@0.2.0` (`wit/v0.2`): PDF
//! bytes to markdown with page ranges, metadata, warnings and layout, and
//! pages rendered as PNG images. No imports: no network, no filesystem.
//!
//! Implement [`Guest`] and call [`export!`](crate::converter::export) once:
//! `evistream_plugin_sdk::converter::export!(MyConverter);`. A manifest of
//! `kind = "pdf-converter"` and `wit = "0.2.0"` goes beside the component.
//!
//! A converter built on [`layout`] (the `page-layout` crate the host reads
//! layouts with) maps its [`layout::Layout`] into the WIT [`Layout`] with
//! `.into()`; every part of it (page sizes, runs, tables, rows, cells)
//! converts the same way.
//!
//! The host checks every document before keeping it: page ranges numbered
//! from 1, in order, inside the text; `metadata.page-count` equal to the
//! number of page ranges; one page size per page; runs in text order, each
//! of at least one character; table cells inside the text, in order.
//! Offsets count Unicode code points of the markdown, not bytes.

wit_bindgen::generate!({
    path: "wit/v0.2",
    world: "pdf-converter",
    pub_export_macro: true,
    default_bindings_module: "evistream_plugin_sdk::converter",
    // The `export!` below wraps it.
    export_macro_name: "__export",
    // Off: the `export!` macro writes the whole world into the component,
    // and wit-bindgen's helpers would link this (imports-only) section into
    // components of other worlds built beside it with every feature on.
    disable_custom_section_link_helpers: true,
});

pub use self::evistream::plugin::converter_types::{
    ConvertError, Document, Layout, Metadata, PageSize, Table, TableCell, TableRow, TextRun,
};
pub use self::evistream::plugin::types::{ConfigEntry, PageRange};
pub use self::exports::evistream::plugin::converter::Guest;

/// The layout model the host shares with converters (`page-layout`).
pub use page_layout as layout;

/// A configuration value of the project binding (`None` when unset).
pub fn config_value<'a>(config: &'a [ConfigEntry], key: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|c| c.key == key)
        .map(|c| c.value.as_str())
}

impl From<layout::PageSize> for PageSize {
    fn from(p: layout::PageSize) -> Self {
        Self {
            number: p.number,
            width: p.width,
            height: p.height,
        }
    }
}

impl From<layout::TextRun> for TextRun {
    fn from(r: layout::TextRun) -> Self {
        Self {
            start: r.start,
            page: r.page,
            vertical: r.vertical,
            across: r.across,
            edges: r.edges,
        }
    }
}

impl From<layout::TableCell> for TableCell {
    fn from(c: layout::TableCell) -> Self {
        Self {
            span: c.span,
            row_span: c.row_span,
            col_span: c.col_span,
            header: c.header,
        }
    }
}

impl From<layout::TableRow> for TableRow {
    fn from(r: layout::TableRow) -> Self {
        Self {
            cells: r.cells.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<layout::Table> for Table {
    fn from(t: layout::Table) -> Self {
        Self {
            pages: t.pages,
            caption: t.caption,
            rows: t.rows.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<layout::Layout> for Layout {
    fn from(l: layout::Layout) -> Self {
        Self {
            pages: l.pages.into_iter().map(Into::into).collect(),
            runs: l.runs.into_iter().map(Into::into).collect(),
            tables: l.tables.into_iter().map(Into::into).collect(),
        }
    }
}

/// Exports `$ty`, a type implementing [`Guest`], as the component's
/// `converter` interface (contract 0.2), once per component:
/// `evistream_plugin_sdk::converter::export!(MyType);`.
/// It expands to nothing on other targets than wasm32, so a `cdylib` of the
/// plugin still links natively and its tests call the `Guest`
/// implementation directly.
#[doc(inline)]
pub use crate::__evistream_export_converter as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __evistream_export_converter {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::converter::__export!($ty);
        // Natively nothing is exported; this keeps `$ty` and what its
        // impl calls from counting as dead code there.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::converter::Guest>::convert;
            let _ = <$ty as $crate::converter::Guest>::render;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_layout_maps_in_one_call() {
        let l = layout::Layout {
            pages: vec![layout::PageSize {
                number: 1,
                width: 612.0,
                height: 792.0,
            }],
            runs: vec![layout::TextRun {
                start: 2,
                page: 1,
                vertical: true,
                across: (1.0, 2.0),
                edges: vec![(3.0, 4.0)],
            }],
            tables: vec![layout::Table {
                pages: vec![1],
                caption: Some((0, 1)),
                rows: vec![layout::TableRow {
                    cells: vec![layout::TableCell {
                        span: Some((2, 3)),
                        row_span: 1,
                        col_span: 2,
                        header: true,
                    }],
                }],
            }],
        };
        let w: Layout = l.into();
        assert_eq!(
            (w.pages[0].number, w.pages[0].width, w.pages[0].height),
            (1, 612.0, 792.0)
        );
        let r = &w.runs[0];
        assert_eq!(
            (r.start, r.page, r.vertical, r.across, r.edges.clone()),
            (2, 1, true, (1.0, 2.0), vec![(3.0, 4.0)])
        );
        let t = &w.tables[0];
        assert_eq!((t.pages.clone(), t.caption), (vec![1], Some((0, 1))));
        let c = &t.rows[0].cells[0];
        assert_eq!(
            (c.span, c.row_span, c.col_span, c.header),
            (Some((2, 3)), 1, 2, true)
        );
    }

    #[test]
    fn config_values_are_found_by_key() {
        let config = vec![ConfigEntry {
            key: "mode".into(),
            value: "fast".into(),
        }];
        assert_eq!(config_value(&config, "mode"), Some("fast"));
        assert_eq!(config_value(&config, "other"), None);
    }
}
