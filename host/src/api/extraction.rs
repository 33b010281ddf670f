//! GraphQL types of extraction runs and results.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};

use super::types::Document;
use crate::extraction::ResultRow;
use crate::extraction::grounding::Verdict;
use crate::extraction::pipeline::{self, StoredEvidence};
use crate::plugins::extractor as face;

/// Input of `startExtraction`.
#[derive(InputObject)]
pub struct StartExtractionInput {
    /// The project.
    pub project_id: ID,
    /// An ACTIVE form version of the project.
    pub form_version_id: ID,
    /// Documents to extract from; omitted: every COMPLETED document.
    pub document_ids: Option<Vec<ID>>,
}

/// Status of an extracted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ValueStatus {
    /// Reported in the paper.
    Found,
    /// The paper does not say.
    NotReported,
    /// Does not apply to this study.
    NotApplicable,
    /// Ambiguous.
    Unclear,
}

/// The host's verdict on an evidence quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Grounding {
    /// Verbatim in the text (after normalizing case, whitespace, dashes).
    Exact,
    /// Nearly verbatim (word similarity ≥ 0.8).
    Fuzzy,
    /// Not in the text: the value is ungrounded.
    NotFound,
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

/// A quote supporting a value, located by the host.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Evidence {
    /// The quote as the extractor gave it.
    pub quote: String,
    /// Page (from 1) where the host found it, else the extractor's claim.
    pub page: Option<u32>,
    /// Code-point offset into the document's text (inclusive) of where the
    /// quote was found; for a quote across a table row, of the one cell in
    /// it that holds the value.
    pub start: Option<u32>,
    /// Code-point offset into the document's text (exclusive).
    pub end: Option<u32>,
    /// The host's verdict.
    pub grounding: Grounding,
    /// Word-level similarity of the match (1 for exact).
    pub similarity: f64,
    /// The document quoted: (organization, document).
    #[graphql(skip)]
    pub document: Option<super::layout::DocumentRef>,
}

#[async_graphql::ComplexObject]
impl Evidence {
    /// Where the located quote lies on the pages: one rectangle per line
    /// it crosses, in fractions of the page (0..1, origin top left). Empty
    /// when the quote was not located or the document has no layout (its
    /// converter predates contract 0.2).
    #[graphql(complexity = 10)]
    async fn boxes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::layout::PageBox>> {
        let (Some(start), Some(end), Some(doc)) = (self.start, self.end, &self.document) else {
            return Ok(Vec::new());
        };
        let layout = super::layout::of_document(ctx, doc).await?;
        let boxes = layout.map(|l| l.boxes(start, end)).unwrap_or_default();
        super::request::charge(ctx, boxes.len() * super::layout::PageBox::JSON_BYTES)?;
        Ok(boxes
            .into_iter()
            .map(super::layout::PageBox::from)
            .collect())
    }
}

impl Evidence {
    /// A stored quote of a value of `document`.
    pub fn of(e: StoredEvidence, document: Option<super::layout::DocumentRef>) -> Self {
        Self {
            quote: e.quote,
            page: e.page,
            start: e.start,
            end: e.end,
            grounding: e.grounding.into(),
            similarity: e.similarity,
            document,
        }
    }
}

/// One extracted value, of a document.
pub struct ResultValue(
    pub crate::db::entities::extraction_value::Model,
    pub super::layout::DocumentRef,
);

#[Object]
impl ResultValue {
    /// Field path, with list indices (`arms[0].name`).
    async fn path(&self) -> &str {
        &self.0.path
    }
    /// The typed value (null when not found).
    async fn value(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.value).unwrap_or(serde_json::Value::Null))
    }
    async fn status(&self) -> ValueStatus {
        match self.0.status {
            face::ValueStatus::Found => ValueStatus::Found,
            face::ValueStatus::NotReported => ValueStatus::NotReported,
            face::ValueStatus::NotApplicable => ValueStatus::NotApplicable,
            face::ValueStatus::Unclear => ValueStatus::Unclear,
        }
    }
    /// 0..1, as the extractor judged.
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    async fn evidence(&self) -> Vec<Evidence> {
        self.0
            .evidence
            .0
            .iter()
            .cloned()
            .map(|e| Evidence::of(e, Some(self.1.clone())))
            .collect()
    }
    /// The best verdict over its evidence; null when it has none.
    async fn grounding(&self) -> Option<Grounding> {
        match self.0.grounding {
            pipeline::Grounding::Exact => Some(Grounding::Exact),
            pipeline::Grounding::Fuzzy => Some(Grounding::Fuzzy),
            pipeline::Grounding::NotFound => Some(Grounding::NotFound),
            pipeline::Grounding::None => None,
        }
    }
    /// A FOUND value whose evidence the host could not find in the text.
    async fn ungrounded(&self) -> bool {
        self.0.status == face::ValueStatus::Found && !self.0.grounding.is_grounded()
    }
}

/// What produced a result.
#[derive(SimpleObject)]
pub struct Provenance {
    /// The form version.
    pub form_version_id: ID,
    /// sha256 of the extraction program.
    pub program_hash: String,
    /// The extractor: `id@version#sha256`.
    pub extractor: String,
    /// The converter of the text: `id@version#sha256`.
    pub converter: String,
    /// The LLM adapter, if one was bound: `id@version#sha256`.
    pub adapter: Option<String>,
    /// Model(s) that answered, comma-separated; null without an LLM.
    pub model: Option<String>,
    /// The run (parent job).
    pub job_id: ID,
}

/// One document's latest values for a form version, with its review when
/// the page's reviews were read together.
pub struct ExtractionResult(pub ResultRow, pub Option<crate::review::ReviewView>);

#[Object]
impl ExtractionResult {
    async fn id(&self) -> ID {
        ID(self.0.result.id.clone())
    }
    async fn document(&self) -> Document {
        Document::from(self.0.document.clone())
    }
    /// The extractor's values, in its order (none while the caller may
    /// still extract the document blind in DUAL review).
    async fn values(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::sliced::Sliced<ResultValue>> {
        let doc = super::layout::DocumentRef::of(&self.0.document);
        // The stored value and evidence, plus the fields around them.
        let bytes = self
            .0
            .values
            .iter()
            .map(|v| {
                160 + v.path.len()
                    + v.value.len()
                    + v.evidence
                        .0
                        .iter()
                        .map(|e| e.quote.len() + 120)
                        .sum::<usize>()
            })
            .sum();
        super::request::charge(ctx, bytes)?;
        Ok(self
            .0
            .values
            .iter()
            .cloned()
            .map(|v| ResultValue(v, doc.clone()))
            .collect())
    }
    /// The document's review against this form version, as `Query.review`
    /// shows it to the caller (blind in DUAL mode until they submit): the
    /// final values with their state and source.
    #[graphql(complexity = "20 + child_complexity")]
    async fn review(&self, ctx: &Context<'_>) -> async_graphql::Result<super::review::Review> {
        if let Some(v) = &self.1 {
            return Ok(super::review::Review(v.clone()));
        }
        let acc = super::access(ctx).await?;
        Ok(super::review::Review(
            crate::review::get(
                super::app(ctx),
                acc,
                &self.0.document.id,
                &self.0.result.form_version_id,
            )
            .await?,
        ))
    }
    /// Reviewer-facing warnings of the extractor (none while the caller
    /// may still extract the document blind: they can quote values).
    async fn warnings(&self) -> Vec<String> {
        self.0.result.warnings.0.clone()
    }
    async fn provenance(&self) -> Provenance {
        let p = self.0.provenance();
        Provenance {
            form_version_id: ID(p.form_version_id),
            program_hash: p.program_hash,
            extractor: p.extractor,
            converter: p.converter,
            adapter: p.adapter,
            model: (!p.models.is_empty()).then(|| p.models.join(",")),
            job_id: ID(p.job_id),
        }
    }
    async fn created_at(&self) -> String {
        super::types::timestamp(self.0.result.created_at)
    }
}

/// Scores over reference values.
#[derive(SimpleObject)]
pub struct EvaluationScore {
    /// Reference values compared.
    pub support: u64,
    /// Sum of comparison scores (set-F1 gives partial credit).
    pub correct: f64,
    /// correct / support.
    pub accuracy: f64,
}

impl From<&crate::evaluation::Score> for EvaluationScore {
    fn from(s: &crate::evaluation::Score) -> Self {
        Self {
            support: s.support,
            correct: s.correct,
            accuracy: s.accuracy(),
        }
    }
}

/// One field's evaluation.
#[derive(SimpleObject)]
pub struct FieldEvaluation {
    /// Template path (`arms[].n`).
    pub path: String,
    /// Comparator (`number_relative_1pct`, `integer_exact`, `enum_set_f1`, …).
    pub comparator: String,
    /// Reference values of this field.
    pub support: u64,
    /// Sum of comparison scores.
    pub correct: f64,
    /// correct / support.
    pub accuracy: f64,
}

/// The latest results compared with the ground truth.
#[derive(SimpleObject)]
pub struct Evaluation {
    /// Over every field.
    pub overall: EvaluationScore,
    /// Per field, in form order.
    pub fields: Vec<FieldEvaluation>,
    /// Documents with reference values.
    pub documents: u64,
    /// Lists too long to compare every pair of their items, by document:
    /// each reference item was compared with the extracted items nearest
    /// its position only.
    pub warnings: Vec<String>,
}

impl From<crate::evaluation::Evaluation> for Evaluation {
    fn from(e: crate::evaluation::Evaluation) -> Self {
        Self {
            overall: (&e.overall).into(),
            fields: e
                .fields
                .iter()
                .map(|f| FieldEvaluation {
                    path: f.path.clone(),
                    comparator: f.comparator.name().to_owned(),
                    support: f.score.support,
                    correct: f.score.correct,
                    accuracy: f.score.accuracy(),
                })
                .collect(),
            documents: e.documents,
            warnings: e.warnings,
        }
    }
}

/// What `importGroundTruth` did.
#[derive(SimpleObject)]
pub struct ImportGroundTruthPayload {
    /// Records imported.
    pub imported: u64,
}

/// Where an export can be downloaded.
#[derive(SimpleObject)]
pub struct ExportPayload {
    /// GET it with the same Bearer token.
    pub url: String,
    /// The codebook (field paths, types, descriptions, options, units) as CSV.
    pub codebook_url: String,
    /// The export's id.
    pub id: ID,
    /// A signed link (5 minutes) that needs no header: for a browser's
    /// download link.
    pub download_url: String,
    /// The codebook's signed link (5 minutes).
    pub codebook_download_url: String,
}

/// One extraction run: a form version over a set of documents.
pub struct ExtractionRun {
    /// The run.
    pub run: crate::db::entities::extraction_run::Model,
    /// Its parent job.
    pub job: crate::db::entities::job::Model,
}

#[Object]
impl ExtractionRun {
    async fn id(&self) -> ID {
        ID(self.run.id.clone())
    }
    /// The form version it extracts.
    async fn form_version_id(&self) -> ID {
        ID(self.run.form_version_id.clone())
    }
    /// How many documents it covers.
    async fn document_count(&self) -> i32 {
        self.run.document_count
    }
    /// The parent job: state, progress, units, LLM usage.
    async fn job(&self) -> super::types::Job {
        super::types::Job(self.job.clone())
    }
    async fn created_at(&self) -> String {
        super::types::timestamp(self.run.created_at)
    }
}
