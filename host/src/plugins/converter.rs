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
    /// Where the text lies on the pages (contract 0.2 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<page_layout::Layout>,
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

    /// Renders page `page` (from 1) of `pdf` as a PNG `width` pixels wide.
    /// Converters of contract 0.1 cannot.
    async fn render(&self, pdf: Vec<u8>, page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
        let _ = (pdf, page, width);
        Err(ConvertError::Unsupported(
            "this converter implements contract 0.1, which renders no pages".into(),
        ))
    }
}
