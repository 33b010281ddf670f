//! Human review of extracted values. A review is the record of one
//! document against one form version; what a person decides is an
//! append-only [`review_decision`] row (who, when, the value before and
//! after, a note), and every value's state is derived from those rows
//! ([`state`]), so the history of any value is always at hand.
//!
//! SINGLE mode: a reviewer accepts, corrects or rejects each extracted
//! value; a review completes once no required field is unreviewed.
//! DUAL mode ([`dual`]): reviewers extract the document blind and submit;
//! the extractions are compared by the fields' comparators ([`rules`]),
//! and an adjudicator resolves what they disagree on. Either way a
//! complete review is locked until reopened with a note.

pub mod agreement;
pub mod dual;
pub mod report;
pub mod rules;
pub mod state;

pub use report::{FieldSummary, Summary, disclosure, summary};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    StreamTrait,
};
use serde_json::Value;

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{
    document, extraction_value, form_version, project, review, review_decision, review_setting,
    user,
};
use crate::db::types::EvidenceList;
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::events::Event;
use crate::extraction::grounding::Grounder;
use crate::extraction::pipeline;
use crate::forms::{self, fields};
use crate::plugins::extractor::{EvidenceQuote, ExtractedValue, ValueStatus};
use crate::tenancy::{self, Access, Scope};
use crate::validate;

use rules::Rules;
use state::ReviewedValue;

use crate::db::types::stored_enum;

stored_enum!(
    /// How a project's documents are reviewed.
    ReviewMode {
        /// A reviewer verifies the extractor's values one by one.
        Single = "single",
        /// Several people extract independently; an adjudicator resolves
        /// what they disagree on.
        Dual = "dual",
    }
);

stored_enum!(
    /// Where a review stands.
    ReviewStatus {
        /// Values are being reviewed.
        Open = "open",
        /// Extractions are in and disagree: waiting for an adjudicator.
        AwaitingAdjudication = "awaiting_adjudication",
        /// Done and locked until reopened.
        Complete = "complete",
    }
);

stored_enum!(
    /// What a decision on a review did.
    DecisionKind {
        /// SINGLE: the extracted value is right.
        Accept = "accept",
        /// SINGLE: the value is wrong; here is the right one.
        Correct = "correct",
        /// SINGLE: the value is wrong and the paper does not report it.
        Reject = "reject",
        /// DUAL: a reviewer's own value at a path (null: not reported).
        Extract = "extract",
        /// DUAL: a reviewer ended their extraction of the document.
        Submit = "submit",
        /// DUAL: an adjudicator's final value of a disputed path.
        Resolve = "resolve",
    }
);

impl DecisionKind {
    /// A SINGLE-mode verdict.
    pub fn is_single(self) -> bool {
        matches!(self, Self::Accept | Self::Correct | Self::Reject)
    }
}

/// A reviewer's verdict on a value (SINGLE mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Verdict {
    /// The extracted value is right.
    Accept,
    /// The value is wrong; here is the right one.
    Correct,
    /// The value is wrong and the paper does not report it.
    Reject,
}

impl From<Verdict> for DecisionKind {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => Self::Accept,
            Verdict::Correct => Self::Correct,
            Verdict::Reject => Self::Reject,
        }
    }
}

/// Where the review stands on one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum ValueState {
    /// No person has decided on today's extracted value.
    Unreviewed,
    /// Accepted as extracted.
    Verified,
    /// Replaced by a reviewer's value.
    Corrected,
    /// Wrong, and not reported by the paper.
    Rejected,
    /// Independent extractions agree (DUAL).
    Agreed,
    /// Independent extractions disagree (DUAL).
    Disputed,
    /// An adjudicator decided (DUAL).
    Resolved,
}

/// Whose value a reviewed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum ValueSource {
    /// The extractor's.
    Extractor,
    /// A reviewer's.
    Reviewer,
    /// An adjudicator's.
    Adjudicator,
}

/// Longest note.
const MAX_NOTE: usize = 4000;

/// Most people who may extract one document in DUAL mode.
const MAX_REVIEWERS: i32 = 5;

/// A project's review settings (SINGLE with one reviewer until configured).
pub async fn settings<C: ConnectionTrait>(
    db: &C,
    organization_id: &str,
    project_id: &str,
) -> ServiceResult<(ReviewMode, i32)> {
    let row = tenancy::find_scoped::<review_setting::Entity, _>(
        db,
        Scope::Organization(organization_id),
        project_id,
    )
    .await?;
    Ok(row.map_or((ReviewMode::Single, 1), |r| {
        (r.mode, r.reviewers_per_document)
    }))
}

/// The rules a form version's reviews are derived under in its project.
pub async fn rules_of(app: &App, version: &form_version::Model) -> ServiceResult<Arc<Rules>> {
    let (mode, n) = settings(&app.db, &version.organization_id, &version.project_id).await?;
    Ok(Arc::new(Rules::new(
        mode,
        n,
        version,
        app.config.review.max_list_items,
    )?))
}

/// Sets how a project's documents are reviewed (ADMIN+): SINGLE with one
/// reviewer per document, or DUAL with 2 to 5 (default 2). Once anyone
/// has decided on a review of the project, the settings are fixed: the
/// decisions were made under them.
pub async fn configure(
    app: &App,
    access: &Access,
    project_id: &str,
    mode: ReviewMode,
    reviewers_per_document: Option<i32>,
) -> ServiceResult<review_setting::Model> {
    let p = tenancy::load::<project::Entity, _>(&app.db, access, project_id, Role::Admin).await?;
    let n = match (mode, reviewers_per_document) {
        (ReviewMode::Single, None | Some(1)) => 1,
        (ReviewMode::Single, Some(n)) => {
            return Err(ServiceError::bad_input(format!(
                "SINGLE review has one reviewer per document, not {n}"
            )));
        }
        (ReviewMode::Dual, None) => 2,
        (ReviewMode::Dual, Some(n)) if (2..=MAX_REVIEWERS).contains(&n) => n,
        (ReviewMode::Dual, Some(n)) => {
            return Err(ServiceError::bad_input(format!(
                "DUAL review has 2 to {MAX_REVIEWERS} reviewers per document, not {n}"
            )));
        }
    };
    let txn = crate::db::write_txn(&app.db).await?;
    if settings(&txn, &p.organization_id, &p.id).await? != (mode, n) && decided(&txn, &p).await? {
        return Err(ServiceError::Conflict(
            "reviews of this project have decisions made under its current settings; \
             they cannot change now"
                .into(),
        ));
    }
    review_setting::Entity::delete_by_id(p.id.as_str())
        .exec(&txn)
        .await?;
    let row = review_setting::ActiveModel {
        project_id: Set(p.id.clone()),
        organization_id: Set(p.organization_id.clone()),
        mode: Set(mode),
        reviewers_per_document: Set(n),
        updated_by: Set(access.principal.user_id().map(str::to_owned)),
        updated_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&p.organization_id, "review.configure", "project", &p.id)
            .details(serde_json::json!({ "mode": format!("{mode:?}"), "reviewersPerDocument": n })),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Whether anyone has decided on a review of the project.
async fn decided<C: ConnectionTrait>(db: &C, p: &project::Model) -> ServiceResult<bool> {
    let scope = Scope::Organization(&p.organization_id);
    let ids: Vec<String> = tenancy::scoped::<review::Entity>(scope)
        .filter(review::Column::ProjectId.eq(p.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if ids.is_empty() {
        return Ok(false);
    }
    Ok(tenancy::scoped::<review_decision::Entity>(scope)
        .filter(review_decision::Column::ReviewId.is_in(ids))
        .one(db)
        .await?
        .is_some())
}

/// A review as it stands, with who decided what.
#[derive(Clone)]
pub struct ReviewView {
    /// The review, its status as its values make it.
    pub review: review::Model,
    /// Its values.
    pub values: Vec<ReviewedValue>,
    /// The submitted independent extractions (DUAL), in submission order.
    pub extractions: Vec<state::Extraction>,
    /// E-mail of every user who decided, by id.
    pub reviewers: HashMap<String, String>,
    /// The caller may still extract this document (DUAL) and so sees only
    /// their own values.
    pub blind: bool,
}

/// What a review is about, loaded and authorized.
struct Subject {
    project: project::Model,
    document: document::Model,
    version: form_version::Model,
    rules: Arc<Rules>,
}

async fn subject(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
    min: Role,
) -> ServiceResult<Subject> {
    let document = tenancy::load::<document::Entity, _>(&app.db, access, document_id, min).await?;
    let scope = Scope::Organization(&document.organization_id);
    let version = tenancy::find_scoped::<form_version::Entity, _>(&app.db, scope, form_version_id)
        .await?
        .filter(|v| v.project_id == document.project_id)
        .ok_or(ServiceError::NotFound("form version"))?;
    let project =
        tenancy::get_scoped::<project::Entity, _>(&app.db, scope, &document.project_id).await?;
    let rules = rules_of(app, &version).await?;
    Ok(Subject {
        project,
        document,
        version,
        rules,
    })
}

/// The id of `document`'s review against a form version, derived from the
/// pair: a review nobody has decided on is not stored, yet shows the id it
/// will be stored under.
fn review_id(document_id: &str, form_version_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("review\0{document_id}\0{form_version_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// The review of `document` against a form version as it stands before
/// anyone decides: open, as old as the document. Reading a review never
/// writes it; the first decision stores it ([`review_row`]).
fn unstored(document: &document::Model, form_version_id: &str) -> review::Model {
    review::Model {
        id: review_id(&document.id, form_version_id),
        organization_id: document.organization_id.clone(),
        project_id: document.project_id.clone(),
        document_id: document.id.clone(),
        form_version_id: form_version_id.to_owned(),
        status: ReviewStatus::Open,
        created_at: document.created_at,
        updated_at: document.created_at,
    }
}

/// The stored review of `document` against a form version, if anyone has
/// decided on it.
async fn stored<C: ConnectionTrait>(
    db: &C,
    document: &document::Model,
    form_version_id: &str,
) -> ServiceResult<Option<review::Model>> {
    Ok(
        tenancy::scoped::<review::Entity>(Scope::Organization(&document.organization_id))
            .filter(review::Column::DocumentId.eq(document.id.as_str()))
            .filter(review::Column::FormVersionId.eq(form_version_id))
            .one(db)
            .await?,
    )
}

/// The review row of `document` against a form version, stored now if it
/// was not (a decision is about to be written).
async fn review_row<C: ConnectionTrait>(
    db: &C,
    document: &document::Model,
    form_version_id: &str,
) -> ServiceResult<review::Model> {
    if let Some(r) = stored(db, document, form_version_id).await? {
        return Ok(r);
    }
    let now = now_ms();
    let row = review::Model {
        created_at: now,
        updated_at: now,
        ..unstored(document, form_version_id)
    };
    // Every column Set: the row is inserted whole.
    let inserted = review::ActiveModel::from(row).reset_all().insert(db).await;
    match inserted {
        Ok(r) => Ok(r),
        // Two first decisions at once: the other one's row is the review.
        Err(e) => stored(db, document, form_version_id)
            .await?
            .ok_or_else(|| ServiceError::Internal(anyhow::Error::new(e))),
    }
}

/// The extractor's values of the document's latest result for the version
/// (None when the document has no result).
async fn extracted(app: &App, s: &Subject) -> ServiceResult<Option<Vec<extraction_value::Model>>> {
    let latest = crate::extraction::latest_result(app, &s.document, &s.version.id).await?;
    let Some(result) = latest else {
        return Ok(None);
    };
    Ok(Some(
        extraction_value::Entity::find()
            .filter(extraction_value::Column::ResultId.eq(result.id.as_str()))
            .order_by_asc(extraction_value::Column::Ordinal)
            .all(&app.db)
            .await?,
    ))
}

/// The review's values as its decisions make them now (derived on the
/// CPU pool: a review may hold thousands of values).
async fn derive<C: ConnectionTrait + StreamTrait>(
    app: &App,
    db: &C,
    s: &Subject,
    r: &review::Model,
) -> ServiceResult<(state::Derived, Vec<review_decision::Model>)> {
    let decided = decisions(db, r).await?;
    let extracted = extracted(app, s).await?;
    let rules = s.rules.clone();
    app.cpu
        .run(&r.organization_id, move || {
            (rules.derive(extracted.as_deref(), &decided), decided)
        })
        .await
}

async fn decisions<C: ConnectionTrait + StreamTrait>(
    db: &C,
    r: &review::Model,
) -> ServiceResult<Vec<review_decision::Model>> {
    let q = tenancy::scoped::<review_decision::Entity>(Scope::Organization(&r.organization_id))
        .filter(review_decision::Column::ReviewId.eq(r.id.as_str()))
        .order_by_asc(review_decision::Column::CreatedAt)
        .order_by_asc(review_decision::Column::Id);
    all_yielding(q, db).await
}

/// Every row of `q`, handing the async worker back between slices of
/// rows: a review may have thousands of decisions, and decoding them is
/// CPU work on the request's thread.
async fn all_yielding<E: EntityTrait, C: ConnectionTrait + StreamTrait>(
    q: sea_orm::Select<E>,
    db: &C,
) -> ServiceResult<Vec<E::Model>> {
    use futures::TryStreamExt;
    let mut rows = q.stream(db).await?;
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        tokio::task::consume_budget().await;
        out.push(row);
    }
    Ok(out)
}

/// The e-mail of everyone who made one of `decisions`, by user id (each
/// reviewer looked up once, however many decisions they made).
async fn emails(
    app: &App,
    decisions: &[review_decision::Model],
) -> ServiceResult<HashMap<String, String>> {
    let ids: std::collections::BTreeSet<&str> = decisions
        .iter()
        .filter_map(|d| d.user_id.as_deref())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect())
}

/// Who looks at a review, as the blind rule needs it.
#[derive(Debug, Clone)]
pub struct Viewer {
    user: Option<String>,
    may_extract: bool,
}

impl Viewer {
    /// `access` looking at reviews of `organization_id`.
    pub fn of(access: &Access, organization_id: &str) -> Self {
        Self {
            user: access.principal.user_id().map(str::to_owned),
            may_extract: access
                .role_in(organization_id)
                .is_some_and(|role| role.at_least(Role::Reviewer)),
        }
    }

    /// The blind rule, the one every path that shows values applies: in
    /// DUAL mode, while extractions are missing, someone who may still
    /// extract the document (REVIEWER or above, not among those who
    /// submitted) sees only their own values: neither the extractor's nor
    /// another reviewer's.
    pub fn blind(&self, mode: ReviewMode, reviewers: usize, submitted: &[&str]) -> bool {
        mode == ReviewMode::Dual
            && submitted.len() < reviewers
            && self.may_extract
            && self
                .user
                .as_deref()
                .is_some_and(|u| !submitted.contains(&u))
    }
}

/// A review to show: its row, the extractor's values (None: no result),
/// its decisions and the e-mails of those who made them.
struct Pending {
    review: review::Model,
    extracted: Option<Vec<extraction_value::Model>>,
    decided: Vec<review_decision::Model>,
    reviewers: HashMap<String, String>,
}

/// `pending` derived and shown to `viewer`, on the CPU pool of
/// `organization_id`.
async fn views(
    app: &App,
    organization_id: &str,
    rules: &Arc<Rules>,
    viewer: Viewer,
    pending: Vec<Pending>,
) -> ServiceResult<Vec<ReviewView>> {
    let rules = rules.clone();
    app.cpu
        .run(organization_id, move || {
            pending
                .into_iter()
                .map(|p| {
                    let derived = rules.derive(p.extracted.as_deref(), &p.decided);
                    shown(&rules, p.review, derived, &p.decided, p.reviewers, &viewer)
                })
                .collect()
        })
        .await
}

/// The review as `access` may see it ([`Viewer::blind`]).
async fn view(
    app: &App,
    s: &Subject,
    r: review::Model,
    access: &Access,
) -> ServiceResult<ReviewView> {
    let decided = decisions(&app.db, &r).await?;
    let extracted = extracted(app, s).await?;
    let reviewers = emails(app, &decided).await?;
    let organization_id = r.organization_id.clone();
    let viewer = Viewer::of(access, &organization_id);
    let pending = Pending {
        review: r,
        extracted,
        decided,
        reviewers,
    };
    views(app, &organization_id, &s.rules, viewer, vec![pending])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("review not derived")))
}

/// A derived review as `viewer` may see it.
fn shown(
    rules: &Rules,
    mut r: review::Model,
    derived: state::Derived,
    decided: &[review_decision::Model],
    reviewers: HashMap<String, String>,
    viewer: &Viewer,
) -> ReviewView {
    r.status = state::status(r.status, &derived.values, derived.waiting);
    let submitted: Vec<&str> = derived
        .extractions
        .iter()
        .map(|e| e.user_id.as_str())
        .collect();
    if let (true, Some(u)) = (
        viewer.blind(rules.mode, rules.reviewers, &submitted),
        viewer.user.as_deref(),
    ) {
        return ReviewView {
            review: r,
            values: state::blind(decided, u),
            extractions: Vec::new(),
            reviewers,
            blind: true,
        };
    }
    ReviewView {
        review: r,
        values: derived.values,
        extractions: derived.extractions,
        reviewers,
        blind: false,
    }
}

/// The review of a document against a form version (VIEWER+).
pub async fn get(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
) -> ServiceResult<ReviewView> {
    let s = subject(app, access, document_id, form_version_id, Role::Viewer).await?;
    let r = match stored(&app.db, &s.document, &s.version.id).await? {
        Some(r) => r,
        None => unstored(&s.document, &s.version.id),
    };
    view(app, &s, r, access).await
}

/// The reviews of a page of documents of one project against one form
/// version, each as [`get`] shows it to `access`, keyed by document id.
/// `rows` pairs each document with the values of its latest result. Reads
/// a fixed number of row sets however many documents there are (the
/// results table asks for a page of reviews at once), and writes nothing.
pub async fn get_many(
    app: &App,
    access: &Access,
    form_version_id: &str,
    rows: &[(&document::Model, &[extraction_value::Model])],
) -> ServiceResult<HashMap<String, ReviewView>> {
    let Some((first, _)) = rows.first() else {
        return Ok(HashMap::new());
    };
    // One document authorizes the project; the rest must be of the same.
    let s = subject(app, access, &first.id, form_version_id, Role::Viewer).await?;
    if rows.iter().any(|(d, _)| d.project_id != s.project.id) {
        return Err(ServiceError::NotFound("document"));
    }
    let scope = Scope::Organization(&s.project.organization_id);
    let ids: Vec<&str> = rows.iter().map(|(d, _)| d.id.as_str()).collect();
    let stored = tenancy::scoped::<review::Entity>(scope)
        .filter(review::Column::DocumentId.is_in(ids))
        .filter(review::Column::FormVersionId.eq(s.version.id.as_str()))
        .all(&app.db)
        .await?;
    let rows = rows
        .iter()
        .map(|(d, values)| ((*d).clone(), values.to_vec()))
        .collect();
    views_of(app, access, &s.version, &s.rules, rows, stored).await
}

/// Every row's review as `access` may see it, by document id: `stored`
/// holds the reviews anyone decided on (the others are derived unstored).
async fn views_of(
    app: &App,
    access: &Access,
    version: &form_version::Model,
    rules: &Arc<Rules>,
    rows: Vec<(document::Model, Vec<extraction_value::Model>)>,
    stored: Vec<review::Model>,
) -> ServiceResult<HashMap<String, ReviewView>> {
    let organization_id = version.organization_id.as_str();
    // Only stored reviews have decisions.
    let (mut decided, everyone) = decisions_of(app, organization_id, stored.iter()).await?;
    let mut stored: HashMap<String, review::Model> = stored
        .into_iter()
        .map(|r| (r.document_id.clone(), r))
        .collect();
    let pending = rows
        .into_iter()
        .map(|(d, values)| {
            let review = stored
                .remove(&d.id)
                .unwrap_or_else(|| unstored(&d, &version.id));
            let mine = decided.remove(&review.id).unwrap_or_default();
            let reviewers = mine
                .iter()
                .filter_map(|x| x.user_id.as_ref())
                .filter_map(|u| everyone.get(u).map(|e| (u.clone(), e.clone())))
                .collect();
            Pending {
                review,
                extracted: Some(values),
                decided: mine,
                reviewers,
            }
        })
        .collect();
    let viewer = Viewer::of(access, organization_id);
    Ok(views(app, organization_id, rules, viewer, pending)
        .await?
        .into_iter()
        .map(|v| (v.review.document_id.clone(), v))
        .collect())
}

/// The documents among `document_ids` whose review of `version` `access`
/// sees blind ([`Viewer::blind`]), from the submissions alone: for paths
/// that show the extractor's values without reading the reviews.
pub async fn blind_documents(
    app: &App,
    access: &Access,
    version: &form_version::Model,
    document_ids: &[&str],
) -> ServiceResult<HashSet<String>> {
    let (mode, reviewers) =
        settings(&app.db, &version.organization_id, &version.project_id).await?;
    let reviewers = usize::try_from(reviewers.max(1)).unwrap_or(1);
    let viewer = Viewer::of(access, &version.organization_id);
    // Nobody is blind in SINGLE mode, nor whoever may not extract.
    if !viewer.blind(mode, reviewers, &[]) {
        return Ok(HashSet::new());
    }
    let scope = Scope::Organization(&version.organization_id);
    let reviews = tenancy::scoped::<review::Entity>(scope)
        .filter(review::Column::FormVersionId.eq(version.id.as_str()))
        .all(&app.db)
        .await?;
    let mut submitted: HashMap<String, Vec<String>> = HashMap::new();
    if !reviews.is_empty() {
        let documents: HashMap<&str, &str> = reviews
            .iter()
            .map(|r| (r.id.as_str(), r.document_id.as_str()))
            .collect();
        let submissions = tenancy::scoped::<review_decision::Entity>(scope)
            .filter(review_decision::Column::ReviewId.is_in(documents.keys().copied()))
            .filter(review_decision::Column::Verdict.eq(DecisionKind::Submit))
            .all(&app.db)
            .await?;
        for d in submissions {
            if let (Some(doc), Some(u)) = (documents.get(d.review_id.as_str()), d.user_id) {
                let users = submitted.entry((*doc).to_owned()).or_default();
                if !users.contains(&u) {
                    users.push(u);
                }
            }
        }
    }
    Ok(document_ids
        .iter()
        .filter(|d| {
            let users: Vec<&str> = submitted
                .get(**d)
                .map(|u| u.iter().map(String::as_str).collect())
                .unwrap_or_default();
            viewer.blind(mode, reviewers, &users)
        })
        .map(|d| (*d).to_owned())
        .collect())
}

/// The decisions of `reviews` (by review id, oldest first) and the e-mail of
/// everyone who made one, by user id.
async fn decisions_of<'a>(
    app: &App,
    organization_id: &str,
    reviews: impl Iterator<Item = &'a review::Model>,
) -> ServiceResult<(
    HashMap<String, Vec<review_decision::Model>>,
    HashMap<String, String>,
)> {
    let ids: Vec<&str> = reviews.map(|r| r.id.as_str()).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let q = tenancy::scoped::<review_decision::Entity>(Scope::Organization(organization_id))
        .filter(review_decision::Column::ReviewId.is_in(ids))
        .order_by_asc(review_decision::Column::CreatedAt)
        .order_by_asc(review_decision::Column::Id);
    let all = all_yielding(q, &app.db).await?;
    let everyone = emails(app, &all).await?;
    let mut by_review: HashMap<String, Vec<review_decision::Model>> = HashMap::new();
    for d in all {
        by_review.entry(d.review_id.clone()).or_default().push(d);
    }
    Ok((by_review, everyone))
}

/// A reviewer's verdict on one value (REVIEWER+, SINGLE mode).
pub struct VerifyInput {
    /// Concrete path (`arms[0].name`).
    pub path: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The right value, for CORRECT.
    pub value: Option<Value>,
    /// A verbatim quote supporting the corrected value.
    pub quote: Option<String>,
    /// Why.
    pub note: Option<String>,
}

/// Records a verdict; returns the value as it now stands.
pub async fn verify(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
    input: VerifyInput,
) -> ServiceResult<ReviewedValue> {
    let s = subject(app, access, document_id, form_version_id, Role::Reviewer).await?;
    if s.rules.mode != ReviewMode::Single {
        return Err(ServiceError::bad_input(
            "this project reviews in DUAL mode: submit reviewer values instead of verdicts",
        ));
    }
    let note = clean_note(input.note.as_deref(), false)?;
    let extracted_values = extracted(app, &s).await?.unwrap_or_default();
    let at = extracted_values.iter().find(|v| v.path == input.path);
    // A path the extractor gave is the extractor's, whatever its index; a
    // path a reviewer adds is bounded like every list item people add.
    let field = match at {
        Some(_) => s.rules.extracted_field_at(&input.path)?,
        None => s.rules.field_at(&input.path)?,
    }
    .clone();
    let current = at
        .map(|v| state::json(Some(&v.value)))
        .unwrap_or(Value::Null);
    let value = match input.verdict {
        Verdict::Accept => {
            if at.is_none() {
                return Err(ServiceError::bad_input(format!(
                    "nothing was extracted at `{}` to accept; correct or reject it",
                    input.path
                )));
            }
            None
        }
        Verdict::Correct => {
            let v = input
                .value
                .clone()
                .ok_or_else(|| ServiceError::bad_input("CORRECT needs the right `value`"))?;
            fields::check_value(&field, &v).map_err(ServiceError::BadInput)?;
            validate::json_text(&v, "value", validate::Lines::Many)?;
            Some(v)
        }
        Verdict::Reject => None,
    };
    let evidence = match (&input.quote, input.verdict) {
        (Some(q), Verdict::Correct) if !q.trim().is_empty() => {
            validate::text(q, "quote", validate::Lines::Many)?;
            ground(app, &s, &input.path, q).await?
        }
        (Some(q), _) if !q.trim().is_empty() => {
            return Err(ServiceError::bad_input(
                "a quote goes with a CORRECT verdict",
            ));
        }
        _ => Vec::new(),
    };
    let first = review_row(&app.db, &s.document, &s.version.id).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    let r = lock(&txn, &first).await?;
    unlocked(&r)?;
    review_decision::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(r.organization_id.clone()),
        review_id: Set(r.id.clone()),
        path: Set(input.path.clone()),
        verdict: Set(input.verdict.into()),
        user_id: Set(access.principal.user_id().map(str::to_owned)),
        value: Set(value.map(|v| v.to_string())),
        extracted: Set(Some(current.to_string())),
        evidence: Set(EvidenceList(evidence)),
        note: Set(note),
        created_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    let r = touch(&txn, r, None).await?;
    txn.commit().await?;
    announce(app, &r).await;
    let v = view(app, &s, r, access).await?;
    v.values
        .into_iter()
        .find(|v| v.path == input.path)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("decided value not derived")))
}

/// Completes a review (REVIEWER+): refused while a required field is
/// unreviewed; the review is then locked.
pub async fn complete(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
) -> ServiceResult<review::Model> {
    let s = subject(app, access, document_id, form_version_id, Role::Reviewer).await?;
    let first = match stored(&app.db, &s.document, &s.version.id).await? {
        Some(r) => r,
        None => {
            // Nobody has decided yet: a refusal stores nothing.
            let r = unstored(&s.document, &s.version.id);
            let (derived, _) = derive(app, &app.db, &s, &r).await?;
            completable(&s, &derived)?;
            review_row(&app.db, &s.document, &s.version.id).await?
        }
    };
    let txn = crate::db::write_txn(&app.db).await?;
    let r = lock(&txn, &first).await?;
    if r.status == ReviewStatus::Complete {
        return Err(ServiceError::Conflict(
            "this review is already complete".into(),
        ));
    }
    let (derived, _) = derive(app, &txn, &s, &r).await?;
    completable(&s, &derived)?;
    let r = touch(&txn, r, Some(ReviewStatus::Complete)).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&r.organization_id, "review.complete", "review", &r.id),
    )
    .await?;
    txn.commit().await?;
    announce(app, &r).await;
    Ok(r)
}

/// Why a review with these values cannot complete yet, if it cannot.
fn completable(s: &Subject, derived: &state::Derived) -> ServiceResult<()> {
    if derived.waiting > 0 {
        return Err(ServiceError::Conflict(format!(
            "{} of {} independent extractions are still to be submitted",
            derived.waiting, s.rules.reviewers
        )));
    }
    let disputed: Vec<&str> = derived
        .values
        .iter()
        .filter(|v| v.state == ValueState::Disputed)
        .map(|v| v.path.as_str())
        .collect();
    if !disputed.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "values are still disputed: {}",
            disputed.join(", ")
        )));
    }
    let missing = unreviewed_required(&s.version, &derived.values)?;
    if !missing.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "required fields are still unreviewed: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Reopens a complete review (REVIEWER+), saying why.
pub async fn reopen(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
    note: &str,
) -> ServiceResult<review::Model> {
    let s = subject(app, access, document_id, form_version_id, Role::Reviewer).await?;
    let note = clean_note(Some(note), true)?;
    let not_complete = || ServiceError::Conflict("only a complete review can be reopened".into());
    // A review nobody decided on is open, and a refusal stores nothing.
    let first = stored(&app.db, &s.document, &s.version.id)
        .await?
        .ok_or_else(not_complete)?;
    let txn = crate::db::write_txn(&app.db).await?;
    let r = lock(&txn, &first).await?;
    if r.status != ReviewStatus::Complete {
        return Err(not_complete());
    }
    let r = touch(&txn, r, Some(ReviewStatus::Open)).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&r.organization_id, "review.reopen", "review", &r.id)
            .details(serde_json::json!({ "note": note })),
    )
    .await?;
    txn.commit().await?;
    announce(app, &r).await;
    Ok(r)
}

/// Paths of required fields that no one has decided on yet.
fn unreviewed_required(
    v: &form_version::Model,
    values: &[ReviewedValue],
) -> ServiceResult<Vec<String>> {
    let form_fields = forms::version_fields(v)?;
    let mut by_template: HashMap<String, Vec<&ReviewedValue>> = HashMap::new();
    for v in values {
        by_template
            .entry(fields::template(&v.path))
            .or_default()
            .push(v);
    }
    let mut missing = Vec::new();
    for (path, f) in fields::by_path(&form_fields) {
        if !f.required || f.field_type.is_composite() {
            continue;
        }
        let concrete = by_template.remove(&path).unwrap_or_default();
        let top_level = !path.contains("[]");
        if concrete.is_empty() && top_level {
            missing.push(path);
            continue;
        }
        missing.extend(
            concrete
                .iter()
                .filter(|v| v.state == ValueState::Unreviewed)
                .map(|v| v.path.clone()),
        );
    }
    Ok(missing)
}

/// A decision's note: trimmed, bounded, multi-line text; `required` for
/// what must say why.
fn clean_note(note: Option<&str>, required: bool) -> ServiceResult<Option<String>> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    match note {
        None if required => Err(ServiceError::bad_input("a note saying why is required")),
        Some(n) if n.chars().count() > MAX_NOTE => Err(ServiceError::bad_input(format!(
            "a note has at most {MAX_NOTE} characters"
        ))),
        Some(n) => {
            validate::text(n, "the note", validate::Lines::Many)?;
            Ok(Some(n.to_owned()))
        }
        None => Ok(None),
    }
}

/// A reviewer's quote, grounded against the document's text exactly like
/// an extractor's.
async fn ground(
    app: &App,
    s: &Subject,
    path: &str,
    quote: &str,
) -> ServiceResult<Vec<pipeline::StoredEvidence>> {
    let text = crate::documents::text(app, &s.document)
        .await?
        .ok_or_else(|| ServiceError::bad_input("the document has no converted text to quote"))?;
    let value = ExtractedValue {
        path: path.to_owned(),
        value: Value::Null,
        status: ValueStatus::Found,
        evidence: vec![EvidenceQuote {
            quote: quote.to_owned(),
            page: None,
        }],
        confidence: 1.0,
    };
    tokio::task::spawn_blocking(move || {
        let grounder = Grounder::new(&text.markdown, &text.pages.0);
        let mut warnings = Vec::new();
        pipeline::ground(&grounder, &value, &mut warnings).0
    })
    .await
    .map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))
}

/// The review as it is now, its row locked for this transaction: a write
/// first (PostgreSQL holds the row until commit; SQLite's write transaction
/// holds the database), so decisions, completion and reopening of one
/// review happen one after the other and each sees the status the one
/// before left.
async fn lock<C: ConnectionTrait>(db: &C, r: &review::Model) -> ServiceResult<review::Model> {
    review::Entity::update_many()
        .col_expr(
            review::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now_ms()),
        )
        .filter(review::Column::Id.eq(r.id.as_str()))
        .exec(db)
        .await?;
    review::Entity::find_by_id(r.id.as_str())
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("review"))
}

/// CONFLICT when the review is complete: it is locked until reopened.
fn unlocked(r: &review::Model) -> ServiceResult<()> {
    if r.status == ReviewStatus::Complete {
        Err(ServiceError::Conflict(
            "this review is complete and locked; reopen it to change a value".into(),
        ))
    } else {
        Ok(())
    }
}

/// Writes the review's new status (when given) and its change time.
async fn touch<C: ConnectionTrait>(
    db: &C,
    r: review::Model,
    status: Option<ReviewStatus>,
) -> ServiceResult<review::Model> {
    let mut am: review::ActiveModel = r.into();
    if let Some(s) = status {
        am.status = Set(s);
    }
    am.updated_at = Set(now_ms());
    Ok(am.update(db).await?)
}

async fn announce(app: &App, r: &review::Model) {
    app.bus
        .publish(Event::ReviewChanged {
            review_id: r.id.clone(),
            organization_id: r.organization_id.clone(),
            project_id: r.project_id.clone(),
        })
        .await;
}

/// The reviews of a project the caller can see (VIEWER+), for live updates.
pub async fn of_project(
    app: &App,
    access: &Access,
    project_id: &str,
) -> ServiceResult<project::Model> {
    tenancy::load::<project::Entity, _>(&app.db, access, project_id, Role::Viewer).await
}

/// A review of `project` by id, as the caller can see it now.
pub async fn by_id(
    app: &App,
    access: &Access,
    project: &project::Model,
    id: &str,
) -> ServiceResult<review::Model> {
    let r = tenancy::load::<review::Entity, _>(&app.db, access, id, Role::Viewer).await?;
    if r.project_id != project.id {
        return Err(ServiceError::NotFound("review"));
    }
    Ok(r)
}

/// The review of every one of a form version's latest results as `access`
/// may see it, by document: each with its derived values and the e-mails
/// of its reviewers; a document `access` may still extract blind
/// ([`Viewer::blind`]) has a blind view, which exports, evaluation and
/// the summary leave out.
pub async fn of_results(
    app: &App,
    access: &Access,
    version: &form_version::Model,
    rules: &Arc<Rules>,
    rows: &[crate::extraction::ResultRow],
) -> ServiceResult<HashMap<String, ReviewView>> {
    let stored = tenancy::scoped::<review::Entity>(Scope::Organization(&version.organization_id))
        .filter(review::Column::FormVersionId.eq(version.id.as_str()))
        .all(&app.db)
        .await?;
    let rows = rows
        .iter()
        .map(|r| (r.document.clone(), r.values.clone()))
        .collect();
    views_of(app, access, version, rules, rows, stored).await
}

impl ReviewView {
    /// Every decision behind `v`, oldest first, as exported: what it did,
    /// who, the value, the extractor's value then, the note and when.
    pub fn history(&self, v: &ReviewedValue) -> Vec<Value> {
        v.decisions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "kind": sea_orm::ActiveEnum::to_value(&d.verdict).to_uppercase(),
                    "reviewer": d.user_id.as_ref().and_then(|u| self.reviewers.get(u)),
                    "value": state::json(d.value.as_deref()),
                    "extracted": state::json(d.extracted.as_deref()),
                    "note": d.note,
                    "at": chrono::DateTime::from_timestamp_millis(d.created_at)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                })
            })
            .collect()
    }

    /// Who decided `v`: every independent extractor of an AGREED value,
    /// else whoever decided last (empty when no one did).
    pub fn reviewer_of(&self, v: &ReviewedValue) -> String {
        let email = |u: &String| self.reviewers.get(u).cloned().unwrap_or_default();
        if v.state == ValueState::Agreed {
            return self
                .extractions
                .iter()
                .map(|e| email(&e.user_id))
                .collect::<Vec<_>>()
                .join("; ");
        }
        v.decisions
            .last()
            .and_then(|d| d.user_id.as_ref())
            .map(email)
            .unwrap_or_default()
    }
}
