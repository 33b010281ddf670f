//! Contract `evistream:plugin@0.2.0`: the `pdf-converter` world whose
//! documents carry their layout (page sizes, where every line of text
//! lies). Its bindings, conversions and call; the other worlds stay on 0.1.

use wasmtime::component::{InstancePre, Linker};

use super::sandbox::HostState;
use super::{Bound, World, network};
use crate::plugins::converter::{ConvertError, ConvertedDocument, PageRange};
use crate::plugins::runtime::engine::Slot;

/// The `pdf-converter` world of 0.2.
pub(crate) mod converter_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "pdf-converter",
        exports: { default: async },
    });
}

use converter_world::evistream::plugin::converter_types as wconv;
use converter_world::evistream::plugin::types as wtypes;

/// A loaded `pdf-converter@0.2.0`.
pub struct Converter {
    pub(crate) sha256: String,
    pre: converter_world::PdfConverterPre<HostState<()>>,
}

impl World for Converter {
    type State = ();
    const NAME: &'static str = "evistream:plugin/pdf-converter@0.2.0";

    fn add_imports(_: &mut Linker<HostState<()>>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn new(pre: InstancePre<HostState<()>>, sha256: String) -> wasmtime::Result<Self> {
        let pre = converter_world::PdfConverterPre::new(pre)?;
        Ok(Self { sha256, pre })
    }
}

impl Converter {
    /// Converts `pdf` through `bound`'s runtime and limits.
    pub(crate) async fn convert<C>(
        &self,
        bound: &Bound<C>,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
    ) -> Result<ConvertedDocument, ConvertError> {
        let pre = self.pre.clone();
        let config: Vec<wtypes::ConfigEntry> = config
            .into_iter()
            .map(|(key, value)| wtypes::ConfigEntry { key, value })
            .collect();
        let spec = bound.spec(Slot::TopLevel, network(None), ());
        let answer = bound
            .runtime
            .call(spec, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .evistream_plugin_converter()
                        .call_convert(store, &pdf, &config)
                        .await
                })
            })
            .await?;
        Ok(ConvertedDocument::from(answer?))
    }
}

impl Converter {
    /// Renders a page through `bound`'s runtime and limits.
    pub(crate) async fn render<C>(
        &self,
        bound: &Bound<C>,
        pdf: Vec<u8>,
        page: u32,
        width: u32,
    ) -> Result<Vec<u8>, ConvertError> {
        let pre = self.pre.clone();
        let spec = bound.spec(Slot::TopLevel, network(None), ());
        let answer = bound
            .runtime
            .call(spec, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .evistream_plugin_converter()
                        .call_render(store, &pdf, page, width)
                        .await
                })
            })
            .await?;
        Ok(answer?)
    }
}

super::convert_error_from!(wconv::ConvertError);

impl From<wconv::Document> for ConvertedDocument {
    fn from(doc: wconv::Document) -> Self {
        Self {
            pages: doc
                .pages
                .iter()
                .map(|p| PageRange {
                    number: p.number,
                    start: p.start,
                    end: p.end,
                })
                .collect(),
            markdown: doc.markdown,
            title: doc.metadata.title,
            authors: doc.metadata.authors,
            page_count: doc.metadata.page_count,
            producer: doc.metadata.producer,
            warnings: doc.warnings,
            layout: Some(page_layout::Layout {
                pages: doc
                    .layout
                    .pages
                    .into_iter()
                    .map(|p| page_layout::PageSize {
                        number: p.number,
                        width: p.width,
                        height: p.height,
                    })
                    .collect(),
                runs: doc
                    .layout
                    .runs
                    .into_iter()
                    .map(|r| page_layout::TextRun {
                        start: r.start,
                        page: r.page,
                        vertical: r.vertical,
                        across: r.across,
                        edges: r.edges,
                    })
                    .collect(),
                tables: doc.layout.tables.into_iter().map(table).collect(),
            }),
        }
    }
}

fn table(t: wconv::Table) -> page_layout::Table {
    page_layout::Table {
        pages: t.pages,
        caption: t.caption,
        rows: t
            .rows
            .into_iter()
            .map(|r| page_layout::TableRow {
                cells: r
                    .cells
                    .into_iter()
                    .map(|c| page_layout::TableCell {
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
