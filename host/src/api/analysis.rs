//! GraphQL types of studies and the meta-analysis preview.

use async_graphql::{ID, Json, SimpleObject};

use super::types::Document;
use crate::analysis::comparisons::{self, ArmRole, Origin, OutcomeType};
use crate::analysis::{self as service, EffectMeasure};
use crate::studies::{StudyView, Suggestion};

/// A study: the reports (documents) of one trial.
#[derive(SimpleObject)]
pub struct Study {
    /// Its id; a document that was never linked is its own study, with the document's id.
    pub id: ID,
    /// Its name.
    pub name: String,
    /// Whether documents were linked into it (false: a document's own study).
    pub linked: bool,
    /// Trial registry ids (NCT…, ISRCTN…, …) found in its reports' text.
    pub registry_ids: Vec<String>,
    /// Its reports, oldest first.
    pub documents: Vec<Document>,
}

impl From<StudyView> for Study {
    fn from(s: StudyView) -> Self {
        Self {
            id: ID(s.id),
            name: s.name,
            linked: s.linked,
            registry_ids: s.registry_ids,
            documents: s.documents.into_iter().map(Document::from).collect(),
        }
    }
}

/// Documents that look like reports of one trial: offered, not linked.
#[derive(SimpleObject)]
pub struct StudySuggestion {
    /// The documents (of different studies today).
    pub document_ids: Vec<ID>,
    /// Why, in words.
    pub reason: String,
    /// The registry id they share, if that is the reason.
    pub registry_id: Option<String>,
}

impl From<Suggestion> for StudySuggestion {
    fn from(s: Suggestion) -> Self {
        Self {
            document_ids: s.document_ids.into_iter().map(ID).collect(),
            reason: s.reason,
            registry_id: s.registry_id,
        }
    }
}

/// A form version's analysis roles.
#[derive(SimpleObject)]
pub struct AnalysisRoles {
    /// The version.
    pub form_version_id: ID,
    /// Role → field path (or constant CI level), after the form's own mapping.
    pub roles: Json<serde_json::Value>,
}

/// Where one of an arm's numbers came from.
#[derive(SimpleObject)]
pub struct NumberSource {
    /// `events`, `groupSize`, `mean` or `standardDeviation`.
    pub quantity: String,
    /// EXTRACTED, REVIEWED or DERIVED.
    pub source: Origin,
    /// The field it was read from (none when derived).
    pub path: Option<String>,
}

/// A number derived from others: never an extracted or reviewed value.
#[derive(SimpleObject)]
pub struct Derivation {
    /// `mean` or `standardDeviation`.
    pub quantity: String,
    /// The value.
    pub value: f64,
    /// The method, e.g. "SD from 95% CI (t, n < 60)".
    pub method: String,
    /// The formula with its numbers.
    pub formula: String,
    /// The inputs: `[{role, path, value, source, quote, page}]`.
    pub inputs: Json<serde_json::Value>,
    /// Its warnings (e.g. SKEWED, CONSERVATIVE_P_BOUND).
    pub warnings: Vec<String>,
}

/// One arm of a comparison.
#[derive(SimpleObject)]
pub struct ComparisonArm {
    /// INTERVENTION (arm 1 in escalc) or COMPARATOR.
    pub role: ArmRole,
    /// Events.
    pub events: Option<f64>,
    /// Group size.
    pub group_size: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Standard deviation.
    pub standard_deviation: Option<f64>,
    /// Where each number came from.
    pub sources: Vec<NumberSource>,
    /// The derived numbers, with method, formula and inputs.
    pub derived: Vec<Derivation>,
}

/// A study's name and id, as a comparison shows it.
#[derive(SimpleObject)]
pub struct StudyRef {
    /// Study id.
    pub id: ID,
    /// Name.
    pub name: String,
}

/// A report behind a comparison.
#[derive(SimpleObject)]
pub struct ReportRef {
    /// Document id.
    pub id: ID,
    /// File name.
    pub filename: String,
}

/// One (study, outcome, intervention, comparator) comparison.
#[derive(SimpleObject)]
pub struct Comparison {
    /// The study.
    pub study: StudyRef,
    /// Reports that gave it; the first one's numbers are used.
    pub reports: Vec<ReportRef>,
    /// Outcome as named.
    pub outcome: String,
    /// Intervention as named.
    pub intervention: String,
    /// Comparator as named.
    pub comparator: String,
    /// BINARY or CONTINUOUS.
    pub outcome_type: Option<OutcomeType>,
    /// The measure computed.
    pub measure: Option<EffectMeasure>,
    /// The effect as escalc gives it (log scale for RR and OR).
    pub yi: Option<f64>,
    /// Its sampling variance.
    pub vi: Option<f64>,
    /// Lower 95 % bound (yi − 1.96·√vi).
    pub ci_lower: Option<f64>,
    /// Upper 95 % bound.
    pub ci_upper: Option<f64>,
    /// Intervention, then comparator.
    pub arms: Vec<ComparisonArm>,
    /// What is missing or doubtful (MISSING, ZERO_CELL_CORRECTION,
    /// NO_EVENTS_BOTH_ARMS, SKEWED, …).
    pub warnings: Vec<String>,
}

impl From<comparisons::Comparison> for Comparison {
    fn from(c: comparisons::Comparison) -> Self {
        let e = c.effect.as_ref();
        Self {
            study: StudyRef {
                id: ID(c.study.id.clone()),
                name: c.study.name.clone(),
            },
            reports: c
                .reports
                .iter()
                .map(|r| ReportRef {
                    id: ID(r.id.clone()),
                    filename: r.filename.clone(),
                })
                .collect(),
            yi: e.map(|e| e.yi),
            vi: e.map(|e| e.vi),
            ci_lower: e.map(|e| e.ci_lower),
            ci_upper: e.map(|e| e.ci_upper),
            outcome: c.outcome,
            intervention: c.intervention,
            comparator: c.comparator,
            outcome_type: c.outcome_type,
            measure: c.measure,
            arms: c
                .arms
                .into_iter()
                .map(|a| ComparisonArm {
                    role: a.role,
                    events: a.events,
                    group_size: a.group_size,
                    mean: a.mean,
                    standard_deviation: a.standard_deviation,
                    sources: a
                        .origins
                        .into_iter()
                        .map(|o| NumberSource {
                            quantity: o.quantity.to_owned(),
                            source: o.origin,
                            path: o.path,
                        })
                        .collect(),
                    derived: a
                        .derived
                        .into_iter()
                        .map(|d| Derivation {
                            quantity: d.quantity.to_owned(),
                            value: d.value,
                            method: d.method,
                            formula: d.formula,
                            inputs: Json(d.inputs),
                            warnings: d.warnings,
                        })
                        .collect(),
                })
                .collect(),
            warnings: c.warnings,
        }
    }
}

/// An inverse-variance fixed-effect estimate.
#[derive(SimpleObject)]
pub struct FixedEffect {
    /// The pooled effect (log scale for RR and OR).
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Lower 95 % bound.
    pub ci_lower: f64,
    /// Upper 95 % bound.
    pub ci_upper: f64,
}

/// A DerSimonian–Laird random-effects estimate.
#[derive(SimpleObject)]
pub struct RandomEffects {
    /// The pooled effect (log scale for RR and OR).
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Lower 95 % bound.
    pub ci_lower: f64,
    /// Upper 95 % bound.
    pub ci_upper: f64,
    /// Between-study variance.
    pub tau2: f64,
    /// I², in percent.
    pub i2: f64,
}

/// A pooled preview of one outcome and measure: not a substitute for the
/// team's own analysis.
#[derive(SimpleObject)]
pub struct PooledOutcome {
    /// Outcome as named (comparisons pool when their outcome names match).
    pub outcome: String,
    /// The measure.
    pub measure: EffectMeasure,
    /// Comparisons pooled.
    pub k: i32,
    /// Cochran's Q.
    pub q: f64,
    /// Fixed effect.
    pub fixed: FixedEffect,
    /// Random effects.
    pub random: RandomEffects,
}

/// The comparisons of a form version's values and their pooled preview.
#[derive(SimpleObject)]
pub struct Analysis {
    /// One per (study, outcome, intervention, comparator).
    pub comparisons: Vec<Comparison>,
    /// Per outcome and measure.
    pub pooled: Vec<PooledOutcome>,
}

impl From<service::Analysis> for Analysis {
    fn from(a: service::Analysis) -> Self {
        Self {
            comparisons: a.comparisons.into_iter().map(Comparison::from).collect(),
            pooled: a
                .pooled
                .into_iter()
                .map(|p| PooledOutcome {
                    outcome: p.outcome,
                    measure: p.measure,
                    k: i32::try_from(p.pooled.k).unwrap_or(i32::MAX),
                    q: p.pooled.q,
                    fixed: FixedEffect {
                        estimate: p.pooled.fixed.estimate,
                        se: p.pooled.fixed.se,
                        ci_lower: p.pooled.fixed.ci_lower,
                        ci_upper: p.pooled.fixed.ci_upper,
                    },
                    random: RandomEffects {
                        estimate: p.pooled.random.estimate,
                        se: p.pooled.random.se,
                        ci_lower: p.pooled.random.ci_lower,
                        ci_upper: p.pooled.random.ci_upper,
                        tau2: p.pooled.tau2,
                        i2: p.pooled.i2,
                    },
                })
                .collect(),
        }
    }
}
