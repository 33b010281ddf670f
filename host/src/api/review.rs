//! GraphQL types of the review workflow.

use async_graphql::{ID, InputObject, Json, Object, SimpleObject};

use super::extraction::Evidence;
use super::types::timestamp;
use crate::review::state::{self, ReviewedValue};
use crate::review::{
    DecisionKind, ReviewMode, ReviewStatus, ReviewView, ValueSource, ValueState, Verdict,
};

/// Input of `configureReview`.
#[derive(InputObject)]
pub struct ReviewSettingsInput {
    /// SINGLE or DUAL.
    pub mode: ReviewMode,
    /// DUAL: independent extractions per document (2–5, default 2).
    pub reviewers_per_document: Option<i32>,
}

/// How a project's documents are reviewed.
#[derive(SimpleObject)]
pub struct ReviewSettings {
    /// SINGLE or DUAL.
    pub mode: ReviewMode,
    /// People who extract each document (1 in SINGLE mode).
    pub reviewers_per_document: i32,
}

/// Input of `verifyValue`.
#[derive(InputObject)]
pub struct VerifyValueInput {
    /// Concrete path (`arms[0].name`).
    pub path: String,
    /// ACCEPT, CORRECT or REJECT.
    pub verdict: Verdict,
    /// CORRECT: the right value, of the field's type.
    pub value: Option<Json<serde_json::Value>>,
    /// CORRECT: a verbatim quote supporting it, grounded by the host.
    pub quote: Option<String>,
    /// Why.
    pub note: Option<String>,
}

/// Someone who decided.
#[derive(SimpleObject)]
pub struct Reviewer {
    /// The user.
    pub id: Option<ID>,
    /// Their e-mail (empty for an API key).
    pub email: String,
}

/// One decision on a value, as recorded (never changed afterwards).
#[derive(SimpleObject)]
pub struct Decision {
    /// Who.
    pub reviewer: Reviewer,
    /// What it did: ACCEPT, CORRECT or REJECT (SINGLE); EXTRACT, SUBMIT
    /// or RESOLVE (DUAL).
    pub verdict: DecisionKind,
    /// The value decided (CORRECT, EXTRACT, RESOLVE), else null.
    pub value: Json<serde_json::Value>,
    /// The extractor's value when the decision was made (null in a
    /// reviewer's blind view).
    pub extracted: Json<serde_json::Value>,
    /// Why.
    pub note: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// One value of a review.
pub struct ReviewValue {
    value: ReviewedValue,
    reviewers: std::sync::Arc<std::collections::HashMap<String, String>>,
    document: super::layout::DocumentRef,
}

#[Object]
impl ReviewValue {
    /// Concrete path.
    async fn path(&self) -> &str {
        &self.value.path
    }
    /// The value as it stands (the extractor's until a person decides).
    async fn value(&self) -> Json<serde_json::Value> {
        Json(self.value.value.clone())
    }
    /// Where the review stands on it.
    async fn state(&self) -> ValueState {
        self.value.state
    }
    /// Whose value `value` is.
    async fn source(&self) -> ValueSource {
        self.value.source
    }
    /// The extractor's value (null when it gave none).
    async fn extracted(&self) -> Json<serde_json::Value> {
        Json(self.value.extracted.clone())
    }
    /// The extractor's confidence in its value (0..1); null for a path only
    /// reviewers filled.
    async fn confidence(&self) -> Option<f64> {
        self.value.confidence
    }
    /// The evidence of `value`.
    async fn evidence(&self) -> Vec<Evidence> {
        self.value
            .evidence
            .iter()
            .cloned()
            .map(|e| Evidence::of(e, Some(self.document.clone())))
            .collect()
    }
    /// Every decision on this path, oldest first.
    async fn decisions(&self) -> Vec<Decision> {
        self.value
            .decisions
            .iter()
            .map(|d| Decision {
                reviewer: Reviewer {
                    id: d.user_id.clone().map(ID),
                    email: d
                        .user_id
                        .as_ref()
                        .and_then(|u| self.reviewers.get(u))
                        .cloned()
                        .unwrap_or_default(),
                },
                verdict: d.verdict,
                value: Json(state::json(d.value.as_deref())),
                extracted: Json(state::json(d.extracted.as_deref())),
                note: d.note.clone(),
                at: timestamp(d.created_at),
            })
            .collect()
    }
}

impl ReviewValue {
    /// A value of `document` outside of a whole review (the answer of
    /// `verifyValue` and `resolveValue`).
    pub fn alone(value: ReviewedValue, document: super::layout::DocumentRef) -> Self {
        Self {
            value,
            reviewers: Default::default(),
            document,
        }
    }
}

/// One person's submitted extraction of a document (DUAL).
#[derive(SimpleObject)]
pub struct ReviewerExtraction {
    /// Who.
    pub reviewer: Reviewer,
    /// Their value at each path they filled (`{"sample_size": 120}`; null:
    /// "not reported").
    pub values: Json<serde_json::Value>,
}

/// The human review of one document against one form version.
pub struct Review(pub ReviewView);

#[Object]
impl Review {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.review.id.clone())
    }
    /// OPEN, AWAITING_ADJUDICATION or COMPLETE.
    async fn status(&self) -> ReviewStatus {
        self.0.review.status
    }
    /// The document.
    async fn document_id(&self) -> ID {
        ID(self.0.review.document_id.clone())
    }
    /// The form version.
    async fn form_version_id(&self) -> ID {
        ID(self.0.review.form_version_id.clone())
    }
    /// Last change (RFC 3339).
    async fn updated_at(&self) -> String {
        timestamp(self.0.review.updated_at)
    }
    /// DUAL: the caller may still extract this document, so `values` holds
    /// only their own (blind extraction) and `extractions` is empty.
    async fn blind(&self) -> bool {
        self.0.blind
    }
    /// DUAL: the submitted independent extractions, in submission order
    /// (empty in a blind view and in SINGLE mode).
    async fn extractions(&self) -> Vec<ReviewerExtraction> {
        self.0
            .extractions
            .iter()
            .map(|e| ReviewerExtraction {
                reviewer: Reviewer {
                    id: Some(ID(e.user_id.clone())),
                    email: self
                        .0
                        .reviewers
                        .get(&e.user_id)
                        .cloned()
                        .unwrap_or_default(),
                },
                values: Json(serde_json::to_value(&e.values).unwrap_or_default()),
            })
            .collect()
    }
    /// Its values: the extractor's in order, then paths reviewers added.
    async fn values(&self) -> super::sliced::Sliced<ReviewValue> {
        let reviewers = std::sync::Arc::new(self.0.reviewers.clone());
        let document = super::layout::DocumentRef::new(
            &self.0.review.organization_id,
            &self.0.review.document_id,
        );
        self.0
            .values
            .iter()
            .cloned()
            .map(|value| ReviewValue {
                value,
                reviewers: reviewers.clone(),
                document: document.clone(),
            })
            .collect()
    }
}

/// A review's state, as `completeReview`, `reopenReview` and
/// `reviewUpdated` give it.
pub struct ReviewState(pub crate::db::entities::review::Model);

#[Object]
impl ReviewState {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// OPEN, AWAITING_ADJUDICATION or COMPLETE.
    async fn status(&self) -> ReviewStatus {
        self.0.status
    }
    /// The document.
    async fn document_id(&self) -> ID {
        ID(self.0.document_id.clone())
    }
    /// The form version.
    async fn form_version_id(&self) -> ID {
        ID(self.0.form_version_id.clone())
    }
    /// Last change (RFC 3339).
    async fn updated_at(&self) -> String {
        timestamp(self.0.updated_at)
    }
}

/// How review went for one field.
#[derive(SimpleObject)]
pub struct FieldReviewSummary {
    /// Template path (`arms[].name`).
    pub path: String,
    /// Values a person decided on.
    pub reviewed: i32,
    /// Extracted values that survived review as they were.
    pub extractor_accepted: i32,
    /// Extracted values a person corrected or rejected.
    pub extractor_corrected: i32,
    /// DUAL: the share of paired values of people's independent
    /// extractions that agree by the field's comparator (a value one left
    /// out counts as "not reported"); null in SINGLE or with nothing paired.
    pub agreement: Option<f64>,
    /// DUAL, ENUM and BOOLEAN fields: Cohen's kappa between the first and
    /// second person to submit in each document (with more than two per
    /// document, the mean over pairs); null otherwise, or when undefined
    /// (everyone always gave the same one answer).
    pub kappa: Option<f64>,
}

/// A form version's review across a project.
#[derive(SimpleObject)]
pub struct ReviewSummary {
    /// Documents with results (DUAL: those the caller may still extract
    /// blind are left out of every figure).
    pub documents: i32,
    /// Reviews complete.
    pub complete: i32,
    /// Values waiting for an adjudicator (DUAL).
    pub disputed: i32,
    /// Values on which all extractions agreed (DUAL).
    pub agreed: i32,
    /// Disputed values an adjudicator resolved (DUAL).
    pub resolved: i32,
    /// Values extracted.
    pub extracted: i32,
    /// Values no person decided on.
    pub unreviewed: i32,
    /// Values accepted as extracted.
    pub verified: i32,
    /// Values replaced by a reviewer's.
    pub corrected: i32,
    /// Values rejected as not reported.
    pub rejected: i32,
    /// Per field, in form order.
    pub fields: Vec<FieldReviewSummary>,
}

impl From<crate::review::Summary> for ReviewSummary {
    fn from(s: crate::review::Summary) -> Self {
        let n = |x: u32| x as i32;
        Self {
            documents: n(s.documents),
            complete: n(s.complete),
            disputed: n(s.disputed),
            agreed: n(s.agreed),
            resolved: n(s.resolved),
            extracted: n(s.extracted),
            unreviewed: n(s.unreviewed),
            verified: n(s.verified),
            corrected: n(s.corrected),
            rejected: n(s.rejected),
            fields: s
                .fields
                .into_iter()
                .map(|f| FieldReviewSummary {
                    path: f.path,
                    reviewed: n(f.reviewed),
                    extractor_accepted: n(f.extractor_accepted),
                    extractor_corrected: n(f.extractor_corrected),
                    agreement: f.agreement,
                    kappa: f.kappa,
                })
                .collect(),
        }
    }
}

/// The methods text on AI use.
#[derive(SimpleObject)]
pub struct Disclosure {
    /// Markdown, generated from the records.
    pub markdown: String,
}
