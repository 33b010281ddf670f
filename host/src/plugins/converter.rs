//! The face of a PDF converter: what the documents code calls, with
//! plugin-neutral types. The wasm implementation is `runtime::since_*`.

use super::PluginError;

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

/// Why a conversion failed: the converter's own verdict on the PDF, or the
/// sandbox's on the converter.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Encrypted PDF.
    #[error("the PDF is encrypted: {0}")]
    Encrypted(String),
    /// Not a readable PDF.
    #[error("the PDF is malformed: {0}")]
    Malformed(String),
    /// Valid but unsupported.
    #[error("the PDF is not supported: {0}")]
    Unsupported(String),
    /// The converter reported a bug of its own.
    #[error("the converter failed: {0}")]
    Failed(String),
    /// The plugin crashed, ran out of time or memory, or returned something unusable.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl ConvertError {
    /// Stable subkind for logs and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Encrypted(_) => "ENCRYPTED",
            Self::Malformed(_) => "MALFORMED",
            Self::Unsupported(_) => "UNSUPPORTED",
            Self::Failed(_) => "FAILED",
            Self::Plugin(p) => p.kind(),
        }
    }
}

/// A PDF-to-text converter, bound to the limits its calls run under.
#[async_trait::async_trait]
pub trait PdfConverter: Send + Sync {
    /// sha256 of the component: the provenance stored with every text.
    fn sha256(&self) -> &str;

    /// Converts `pdf`; `config` is the binding's configuration.
    async fn convert(
        &self,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
    ) -> Result<ConvertedDocument, ConvertError>;
}

/// The host's checks of a converter's output: size, and page ranges that
/// cover the text in order.
pub fn check(doc: &ConvertedDocument, max_output_bytes: u64) -> Result<(), PluginError> {
    if doc.markdown.len() as u64 > max_output_bytes {
        return Err(PluginError::InvalidOutput(format!(
            "markdown of {} bytes exceeds the limit of {max_output_bytes} bytes",
            doc.markdown.len(),
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
    Ok(())
}
