//! One document through the extraction pipeline: convert (when given a
//! PDF) → the extractor runs the program → the host grounds every quote.
//! Pure over the plugin faces: no database, no jobs, no wasm. The worker's
//! unit handler and `evistream extract` both run it.

use std::sync::Arc;

use super::grounding::{Grounder, Verdict};
use crate::plugins::converter::{ConvertError, ConvertedDocument, PageRange, PdfConverter};
use crate::plugins::extractor::{
    ExtractError, ExtractedValue, ExtractorImports, FormExtractor, SourceText,
};

/// An evidence item as stored: the extractor's quote and the host's verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredEvidence {
    /// The quote as the extractor gave it (cut to the longest quote grounded).
    pub quote: String,
    /// The page, from the host's location (else the extractor's claim).
    pub page: Option<u32>,
    /// Code-point span in the text, when found.
    pub start: Option<u32>,
    /// End of the span.
    pub end: Option<u32>,
    /// EXACT, FUZZY or NOT_FOUND.
    pub grounding: Verdict,
    /// Word-level similarity of the match.
    pub similarity: f64,
}

/// The verdict on a value: the best of its quotes' verdicts (stored in
/// `extraction_values.grounding`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Grounding {
    /// A quote is in the text verbatim.
    #[sea_orm(string_value = "exact")]
    Exact,
    /// A quote is close to a passage.
    #[sea_orm(string_value = "fuzzy")]
    Fuzzy,
    /// No quote was found.
    #[sea_orm(string_value = "not_found")]
    NotFound,
    /// The value offered no evidence.
    #[sea_orm(string_value = "none")]
    None,
}

impl Grounding {
    /// The API's and exports' spelling (`EXACT`, …, `NONE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "EXACT",
            Self::Fuzzy => "FUZZY",
            Self::NotFound => "NOT_FOUND",
            Self::None => "NONE",
        }
    }

    /// Whether a quote was found (exactly or nearly).
    pub fn is_grounded(self) -> bool {
        matches!(self, Self::Exact | Self::Fuzzy)
    }
}

impl From<Verdict> for Grounding {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Exact => Self::Exact,
            Verdict::Fuzzy => Self::Fuzzy,
            Verdict::NotFound => Self::NotFound,
        }
    }
}

/// One value with the host's grounding of its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundedValue {
    /// The value as the extractor returned it.
    pub value: ExtractedValue,
    /// Its quotes, located.
    pub evidence: Vec<StoredEvidence>,
    /// The value's verdict.
    pub grounding: Grounding,
}

/// What a document is when it enters the pipeline.
pub enum DocumentInput<'a> {
    /// A PDF, converted first by `converter`.
    Pdf {
        /// The file.
        bytes: Vec<u8>,
        /// The converter to run.
        converter: &'a dyn PdfConverter,
    },
    /// A document converted earlier.
    Text {
        /// Its markdown.
        markdown: Arc<str>,
        /// Its page ranges.
        pages: Arc<[PageRange]>,
        /// Its table cells' spans (empty without a layout).
        cells: Vec<(u32, u32)>,
    },
}

/// What one document yields.
#[derive(Debug, Clone)]
pub struct DocumentRun {
    /// The conversion, when the pipeline converted.
    pub converted: Option<ConvertedDocument>,
    /// The values, grounded, in the extractor's order.
    pub values: Vec<GroundedValue>,
    /// The extractor's warnings and the host's (cut quotes).
    pub warnings: Vec<String>,
    /// Models the extractor used.
    pub models: Vec<String>,
}

/// Why a document did not come through.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Conversion failed.
    #[error("{0}")]
    Convert(#[from] ConvertError),
    /// Extraction failed.
    #[error("{0}")]
    Extract(#[from] ExtractError),
    /// The host's grounding task died.
    #[error("grounding failed: {0}")]
    Grounding(String),
}

/// Runs `program` over one document: converts it if it is a PDF, runs the
/// extractor with `imports`, and grounds every quote against the text.
pub async fn run_document(
    input: DocumentInput<'_>,
    program: &str,
    extractor: &dyn FormExtractor,
    imports: ExtractorImports,
) -> Result<DocumentRun, PipelineError> {
    let (converted, markdown, pages, cells): (_, Arc<str>, Arc<[PageRange]>, _) = match input {
        DocumentInput::Pdf { bytes, converter } => {
            let doc = converter.convert(bytes, Vec::new()).await?;
            let markdown = Arc::from(doc.markdown.as_str());
            let pages = Arc::from(doc.pages.as_slice());
            let cells = doc
                .layout
                .as_ref()
                .map(|l| l.cell_spans())
                .unwrap_or_default();
            (Some(doc), markdown, pages, cells)
        }
        DocumentInput::Text {
            markdown,
            pages,
            cells,
        } => (None, markdown, pages, cells),
    };
    let extraction = extractor
        .extract(
            program,
            SourceText {
                text: &markdown,
                pages: &pages,
            },
            imports,
        )
        .await?;
    // Grounding is CPU work: a blocking thread, not the async workers.
    let (values, warnings) = tokio::task::spawn_blocking(move || {
        ground_all(&markdown, &pages, cells, extraction.values)
    })
    .await
    .map_err(|e| PipelineError::Grounding(e.to_string()))?;
    let mut all_warnings = extraction.warnings;
    all_warnings.extend(warnings);
    Ok(DocumentRun {
        converted,
        values,
        warnings: all_warnings,
        models: extraction.models,
    })
}

/// Grounds every value's quotes; returns the values and the host's warnings.
pub fn ground_all(
    markdown: &str,
    pages: &[PageRange],
    cells: Vec<(u32, u32)>,
    values: Vec<ExtractedValue>,
) -> (Vec<GroundedValue>, Vec<String>) {
    let grounder = Grounder::new(markdown, pages).with_cells(cells);
    let mut warnings = Vec::new();
    let values = values
        .into_iter()
        .map(|v| {
            let (evidence, grounding) = ground(&grounder, &v, &mut warnings);
            GroundedValue {
                value: v,
                evidence,
                grounding,
            }
        })
        .collect();
    (values, warnings)
}

/// Grounds every quote of `v`; the value's verdict is its best one
/// ([`Grounding::None`] when it offered no evidence). Quotes longer than
/// [`MAX_QUOTE_WORDS`](super::grounding::MAX_QUOTE_WORDS) are cut, with a
/// warning in `warnings`.
pub fn ground(
    g: &Grounder<'_>,
    v: &ExtractedValue,
    warnings: &mut Vec<String>,
) -> (Vec<StoredEvidence>, Grounding) {
    let mut best = Grounding::None;
    let mut out = Vec::new();
    let quotes: Vec<(&str, Option<u32>)> = v
        .evidence
        .iter()
        .filter(|e| !e.quote.trim().is_empty())
        .map(|e| {
            let (quote, cut) = super::grounding::cap_quote(&e.quote);
            if cut {
                warnings.push(format!(
                    "{}: a quote longer than {} words was cut to its first {}",
                    v.path,
                    super::grounding::MAX_QUOTE_WORDS,
                    super::grounding::MAX_QUOTE_WORDS
                ));
            }
            (quote, e.page)
        })
        .collect();
    let anchors = anchors(g, &quotes);
    for (i, &(quote, page)) in quotes.iter().enumerate() {
        let others: Vec<(u32, u32)> = anchors
            .iter()
            .filter(|(j, _)| *j != i)
            .map(|(_, span)| *span)
            .collect();
        let mut l = g.locate_near(quote, page, &others);
        // A quote across a table row points at the cell holding the value.
        if let (Some(start), Some(end)) = (l.start, l.end)
            && let Some((a, b)) = g.value_cell(start, end, &v.value)
        {
            (l.start, l.end) = (Some(a), Some(b));
        }
        best = match (best, l.verdict) {
            (Grounding::Exact, _) | (_, Verdict::Exact) => Grounding::Exact,
            (Grounding::Fuzzy, _) | (_, Verdict::Fuzzy) => Grounding::Fuzzy,
            _ => Grounding::NotFound,
        };
        out.push(StoredEvidence {
            quote: quote.chars().take(2000).collect(),
            page: l.page.or(page),
            start: l.start,
            end: l.end,
            grounding: l.verdict,
            similarity: l.similarity,
        });
    }
    (out, best)
}

/// The value's distinctive evidence, by quote index: quotes found exactly
/// once in the text (a row label, a column header, a sentence). When every
/// quote occurs several times, the rarest one's first occurrence. A value's
/// other quotes (a bare number in a table, say) are then taken where they
/// occur nearest these.
fn anchors(g: &Grounder<'_>, quotes: &[(&str, Option<u32>)]) -> Vec<(usize, (u32, u32))> {
    if quotes.len() < 2 {
        return Vec::new();
    }
    let found: Vec<Vec<(u32, u32)>> = quotes.iter().map(|(q, _)| g.occurrences(q)).collect();
    let unique: Vec<(usize, (u32, u32))> = found
        .iter()
        .enumerate()
        .filter(|(_, o)| o.len() == 1)
        .map(|(i, o)| (i, o[0]))
        .collect();
    if !unique.is_empty() {
        return unique;
    }
    found
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.is_empty())
        .min_by_key(|(_, o)| o.len())
        .map(|(i, o)| vec![(i, o[0])])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::plugins::extractor::{EvidenceQuote, Extraction, ValueStatus};
    use serde_json::{Value, json};

    /// An extractor that answers a fixed extraction and records what it was given.
    struct FakeExtractor {
        answer: Result<Extraction, String>,
        seen: Mutex<Option<(String, String, usize)>>,
    }

    #[async_trait::async_trait]
    impl FormExtractor for FakeExtractor {
        fn sha256(&self) -> &str {
            "fake"
        }

        async fn extract(
            &self,
            program: &str,
            source: SourceText<'_>,
            _imports: ExtractorImports,
        ) -> Result<Extraction, ExtractError> {
            *self.seen.lock().expect("lock") = Some((
                program.to_owned(),
                source.text.to_owned(),
                source.pages.len(),
            ));
            self.answer.clone().map_err(ExtractError::InvalidProgram)
        }
    }

    struct FakeConverter;

    #[async_trait::async_trait]
    impl PdfConverter for FakeConverter {
        fn sha256(&self) -> &str {
            "fake-converter"
        }

        async fn convert(
            &self,
            pdf: Vec<u8>,
            _config: Vec<(String, String)>,
        ) -> Result<ConvertedDocument, ConvertError> {
            let text =
                String::from_utf8(pdf).map_err(|e| ConvertError::Malformed(e.to_string()))?;
            let n = text.chars().count() as u32;
            Ok(ConvertedDocument {
                markdown: text,
                pages: vec![PageRange {
                    number: 1,
                    start: 0,
                    end: n,
                }],
                title: None,
                authors: Vec::new(),
                page_count: 1,
                producer: None,
                warnings: Vec::new(),
                layout: None,
            })
        }
    }

    fn value(path: &str, quotes: &[&str]) -> ExtractedValue {
        ExtractedValue {
            path: path.into(),
            value: serde_json::json!(120),
            status: ValueStatus::Found,
            evidence: quotes
                .iter()
                .map(|q| EvidenceQuote {
                    quote: (*q).into(),
                    page: None,
                })
                .collect(),
            confidence: 0.9,
        }
    }

    const TEXT: &str =
        "Methods. We randomised 120 participants to two arms.\n\nResults. Mortality fell.";

    #[test]
    fn a_repeated_number_is_grounded_beside_its_row_label() {
        let text = "At baseline 12.3% smoked.\n\nTable 2 Outcomes\n\
                    HbA1c | Placebo 8.1 | Drug 12.3\nLDL | Placebo 3.2 | Drug 2.9";
        let pages = [PageRange {
            number: 1,
            start: 0,
            end: text.chars().count() as u32,
        }];
        let (values, _) = ground_all(
            text,
            &pages,
            Vec::new(),
            vec![
                value("hba1c.drug", &["12.3", "HbA1c | Placebo 8.1 | Drug"]),
                value("smokers", &["12.3"]),
            ],
        );
        let row = text.find("HbA1c").unwrap() as u32;
        let e = &values[0].evidence[0];
        assert_eq!(e.grounding, Verdict::Exact);
        assert!(e.start.unwrap() > row, "{e:?}");
        // Alone, the first occurrence.
        assert_eq!(values[1].evidence[0].start, Some(12));
    }

    #[test]
    fn a_quote_across_a_table_row_points_at_the_value_s_cell() {
        let text = "Table 1\n\n| Age, years | 55 ± 20 | 59 ± 21 |\n| Men | 19 | 22 |";
        let chars: Vec<char> = text.chars().collect();
        let find = |s: &str| -> (u32, u32) {
            let n = s.chars().count();
            let i = (0..chars.len())
                .find(|&i| chars[i..].iter().take(n).collect::<String>() == s)
                .unwrap();
            (i as u32, (i + n) as u32)
        };
        let cells: Vec<(u32, u32)> = ["Age, years", "55 ± 20", "59 ± 21", "Men", "19", "22"]
            .iter()
            .map(|c| find(c))
            .collect();
        let pages = [PageRange {
            number: 1,
            start: 0,
            end: chars.len() as u32,
        }];
        let row = "Age, years | 55 ± 20 | 59 ± 21";
        let with = |v: Value| ExtractedValue {
            value: v,
            ..value("age", &[row])
        };
        let (values, _) = ground_all(
            text,
            &pages,
            cells.clone(),
            vec![
                with(json!(59)),
                with(json!(20)),
                with(json!(7)),
                with(json!("years")),
            ],
        );
        let span = |i: usize| {
            (
                values[i].evidence[0].start.unwrap(),
                values[i].evidence[0].end.unwrap(),
            )
        };
        assert_eq!(span(0), cells[2], "59 is in the third cell");
        assert_eq!(span(1), cells[1], "20 is a number of the second cell only");
        assert_eq!(span(2), find(row), "7 is in no cell: the quote stays whole");
        assert_eq!(span(3), cells[0]);
        assert!(values.iter().all(|v| v.grounding == Grounding::Exact));
    }

    #[tokio::test]
    async fn a_unit_runs_over_a_fake_extractor_and_is_grounded_by_the_host() {
        let fake = FakeExtractor {
            answer: Ok(Extraction {
                values: vec![
                    value("sample_size", &["We randomised 120 participants"]),
                    value("blinding", &["double-blind placebo controlled"]),
                    value("funding", &[]),
                ],
                warnings: vec!["from the extractor".into()],
                models: vec!["fake-model".into()],
            }),
            seen: Mutex::new(None),
        };
        let run = run_document(
            DocumentInput::Pdf {
                bytes: TEXT.as_bytes().to_vec(),
                converter: &FakeConverter,
            },
            "{\"program\":1}",
            &fake,
            ExtractorImports::default(),
        )
        .await
        .expect("the document runs");
        let seen = fake
            .seen
            .lock()
            .expect("lock")
            .clone()
            .expect("extractor called");
        assert_eq!(seen, ("{\"program\":1}".into(), TEXT.into(), 1));
        assert_eq!(run.converted.as_ref().map(|c| c.page_count), Some(1));
        let grounding: Vec<_> = run.values.iter().map(|v| v.grounding).collect();
        assert_eq!(
            grounding,
            [Grounding::Exact, Grounding::NotFound, Grounding::None]
        );
        let ev = &run.values[0].evidence[0];
        let start = TEXT.find("We randomised").expect("in text") as u32;
        assert_eq!(
            (ev.start, ev.end, ev.page),
            (Some(start), Some(start + 30), Some(1))
        );
        assert_eq!(run.warnings, ["from the extractor"]);
        assert_eq!(run.models, ["fake-model"]);
    }

    #[tokio::test]
    async fn a_long_quote_is_cut_with_a_warning_and_failures_keep_their_kind() {
        let long = "word ".repeat(200);
        let fake = FakeExtractor {
            answer: Ok(Extraction {
                values: vec![value("x", &[long.as_str()])],
                ..Default::default()
            }),
            seen: Mutex::new(None),
        };
        let text = DocumentInput::Text {
            markdown: Arc::from(TEXT),
            pages: Arc::from(Vec::new()),
            cells: Vec::new(),
        };
        let run = run_document(text, "p", &fake, ExtractorImports::default())
            .await
            .expect("runs");
        assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
        assert!(run.warnings[0].starts_with("x: a quote longer than"));

        let refusing = FakeExtractor {
            answer: Err("no such step".into()),
            seen: Mutex::new(None),
        };
        let text = DocumentInput::Text {
            markdown: Arc::from(TEXT),
            pages: Arc::from(Vec::new()),
            cells: Vec::new(),
        };
        let err = run_document(text, "p", &refusing, ExtractorImports::default())
            .await
            .expect_err("the extractor refused");
        assert!(
            matches!(err, PipelineError::Extract(ExtractError::InvalidProgram(ref m)) if m == "no such step"),
            "{err:?}"
        );
        let bad_pdf = DocumentInput::Pdf {
            bytes: vec![0xff, 0xfe],
            converter: &FakeConverter,
        };
        let err = run_document(bad_pdf, "p", &refusing, ExtractorImports::default())
            .await
            .expect_err("the converter refused");
        assert!(
            matches!(err, PipelineError::Convert(ConvertError::Malformed(_))),
            "{err:?}"
        );
    }
}
