//! The `pdf-converter` world: loading a converter component and calling it.

use std::sync::Arc;

use super::sandbox::{self, CallLimits, HostState};
use super::{PluginError, PluginRuntime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pdf-converter",
        exports: { default: async },
    });
}

use bindings::evistream::plugin::converter_types::ConvertError as WitConvertError;
use bindings::evistream::plugin::types::ConfigEntry;

/// One page's range in the markdown, in code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageRange {
    /// 1-based.
    pub number: u32,
    /// Inclusive start.
    pub start: u32,
    /// Exclusive end.
    pub end: u32,
}

/// A converted document, checked by the host.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConvertedDocument {
    /// Markdown in reading order.
    pub markdown: String,
    /// Page ranges, in order.
    pub pages: Vec<PageRange>,
    /// Title, if known.
    pub title: Option<String>,
    /// Authors, if known.
    pub authors: Vec<String>,
    /// Pages in the PDF.
    pub page_count: u32,
    /// Producing application.
    pub producer: Option<String>,
    /// Reviewer-facing warnings.
    pub warnings: Vec<String>,
}

/// Why the converter refused the PDF (its own verdict, not a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertFailure {
    /// Encrypted PDF.
    #[error("the PDF is encrypted: {0}")]
    Encrypted(String),
    /// Not a readable PDF.
    #[error("the PDF is malformed: {0}")]
    Malformed(String),
    /// Valid but unsupported.
    #[error("the PDF is not supported: {0}")]
    Unsupported(String),
    /// Converter bug.
    #[error("the converter failed: {0}")]
    Internal(String),
}

/// A loaded converter, ready to instantiate per call.
pub struct Converter {
    /// sha256 of the component.
    pub sha256: String,
    pre: bindings::PdfConverterPre<HostState>,
}

impl Converter {
    /// Compiles (or loads from cache) and links a converter component. Fails
    /// with `Incompatible` when it does not implement `pdf-converter`, and
    /// `CapabilityDenied` when it imports what converters may not have.
    pub async fn load(rt: &PluginRuntime, bytes: Arc<Vec<u8>>) -> Result<Self, PluginError> {
        let (instance_pre, sha256) = rt.link(bytes, |_| Ok(()), super::link_error).await?;
        let pre = bindings::PdfConverterPre::new(instance_pre).map_err(|e| {
            PluginError::Incompatible(format!(
                "does not implement evistream:plugin/pdf-converter@0.1.0: {e:#}"
            ))
        })?;
        Ok(Self { sha256, pre })
    }

    /// Converts `pdf` in a fresh sandbox under `limits`.
    pub async fn convert(
        &self,
        rt: &PluginRuntime,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
        limits: CallLimits,
    ) -> Result<Result<ConvertedDocument, ConvertFailure>, PluginError> {
        let pre = self.pre.clone();
        let engine = rt.engine;
        let backstop = limits.timeout + std::time::Duration::from_secs(2);
        let call = async move {
            let mut store = sandbox::new_store(engine, &limits);
            let config: Vec<ConfigEntry> = config
                .into_iter()
                .map(|(key, value)| ConfigEntry { key, value })
                .collect();
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .evistream_plugin_converter()
                    .call_convert(&mut store, &pdf, &config)
                    .await
            }
            .await;
            match result {
                Ok(Ok(doc)) => Ok(Ok(check(doc, &limits)?)),
                Ok(Err(e)) => Ok(Err(match e {
                    WitConvertError::Encrypted(m) => ConvertFailure::Encrypted(m),
                    WitConvertError::Malformed(m) => ConvertFailure::Malformed(m),
                    WitConvertError::Unsupported(m) => ConvertFailure::Unsupported(m),
                    WitConvertError::Internal(m) => ConvertFailure::Internal(m),
                })),
                Err(e) => Err(sandbox::classify(e, store.data(), &limits)),
            }
        };
        rt.run_bounded(super::engine::Slot::TopLevel, call, backstop, &limits)
            .await
    }
}

/// The host's checks of a converter's output: size, and page ranges that
/// cover the text in order.
fn check(
    doc: bindings::evistream::plugin::converter_types::Document,
    limits: &CallLimits,
) -> Result<ConvertedDocument, PluginError> {
    if doc.markdown.len() as u64 > limits.max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "markdown of {} bytes exceeds the limit of {} bytes",
            doc.markdown.len(),
            limits.max_output_bytes
        )));
    }
    let chars = doc.markdown.chars().count() as u32;
    let mut prev_end = 0u32;
    for (i, p) in doc.pages.iter().enumerate() {
        let ok =
            p.number as usize == i + 1 && p.start >= prev_end && p.start <= p.end && p.end <= chars;
        if !ok {
            return Err(PluginError::InvalidOutput(format!(
                "page range {i} ({}: {}..{}) is out of order or outside the text of {chars} characters",
                p.number, p.start, p.end
            )));
        }
        prev_end = p.end;
    }
    Ok(ConvertedDocument {
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
    })
}
