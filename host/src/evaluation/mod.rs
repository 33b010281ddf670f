//! Evaluation against ground truth: reference values per (form version,
//! document), imported as records of concrete paths; the latest results
//! compared with them field by field with type-aware comparators.

pub mod align;
pub mod compare;

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{document, ground_truth};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::extraction;
use crate::forms::{self, FieldType, fields};
use crate::tenancy::Access;
use compare::Comparator;

/// Most records in one import.
const MAX_RECORDS: usize = 10_000;

/// Scores over a set of reference values.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Reference values compared.
    pub support: u64,
    /// Sum of the comparison scores (partial credit for set-F1).
    pub correct: f64,
}

impl Score {
    /// correct / support (0 without support).
    pub fn accuracy(&self) -> f64 {
        if self.support == 0 {
            0.0
        } else {
            self.correct / self.support as f64
        }
    }
}

/// One field's score.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldScore {
    /// Template path (`arms[].n`).
    pub path: String,
    /// Comparator used.
    pub comparator: Comparator,
    /// The score.
    pub score: Score,
}

/// An evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Over every field.
    pub overall: Score,
    /// Per field, in form order.
    pub fields: Vec<FieldScore>,
    /// Documents with reference values.
    pub documents: u64,
    /// Lists too long to compare every pair of items, by document.
    pub warnings: Vec<String>,
}

/// Imports reference values (REVIEWER+): `[{"documentId": …, "values":
/// {"path": value, …}}, …]`; a document's earlier record for this version
/// is replaced. Returns how many records were imported.
pub async fn import(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    records: &Value,
) -> ServiceResult<usize> {
    let (p, v) =
        extraction::project_version(app, access, project_id, form_version_id, Role::Reviewer)
            .await?;
    let form_fields = forms::version_fields(&v)?;
    let by_path: HashMap<String, &forms::Field> =
        fields::by_path(&form_fields).into_iter().collect();
    let list = records
        .as_array()
        .ok_or_else(|| ServiceError::bad_input("records must be a JSON array"))?;
    if list.len() > MAX_RECORDS {
        return Err(ServiceError::bad_input(format!(
            "at most {MAX_RECORDS} records per import"
        )));
    }
    let mut parsed: Vec<(String, serde_json::Map<String, Value>)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in list.iter().enumerate() {
        let doc = r["documentId"]
            .as_str()
            .ok_or_else(|| ServiceError::bad_input(format!("records[{i}]: documentId missing")))?;
        let values = r["values"].as_object().ok_or_else(|| {
            ServiceError::bad_input(format!("records[{i}]: values must be an object"))
        })?;
        if !seen.insert(doc.to_owned()) {
            return Err(ServiceError::bad_input(format!(
                "records[{i}]: document {doc} appears twice"
            )));
        }
        for (path, value) in values {
            // Plain paths only (`arms[0].n`, not `arms[-1].n`); how long a
            // reference list may be is the aligner's budget to bear.
            let t = fields::concrete_template(path, usize::MAX)
                .map_err(|e| ServiceError::bad_input(format!("records[{i}]: {e}")))?;
            let f = by_path.get(&t).ok_or_else(|| {
                ServiceError::bad_input(format!(
                    "records[{i}]: `{path}` is not a field of this form version"
                ))
            })?;
            if f.field_type.is_composite() {
                return Err(ServiceError::bad_input(format!(
                    "records[{i}]: `{path}` is a group; give its fields (`{path}[0].name`)"
                )));
            }
            check_type(f, value)
                .map_err(|m| ServiceError::bad_input(format!("records[{i}]: `{path}`: {m}")))?;
            crate::validate::json_text(
                value,
                &format!("records[{i}]: `{path}`"),
                crate::validate::Lines::Many,
            )?;
        }
        parsed.push((doc.to_owned(), values.clone()));
    }
    // Documents: all in this project (others are as missing as nonexistent ones).
    let ids: Vec<String> = parsed.iter().map(|(d, _)| d.clone()).collect();
    let found = crate::tenancy::scoped::<document::Entity>(crate::tenancy::Scope::Organization(
        p.organization_id.as_str(),
    ))
    .filter(document::Column::ProjectId.eq(p.id.as_str()))
    .filter(document::Column::Id.is_in(ids.clone()))
    .all(&app.db)
    .await?;
    if found.len() != ids.len() {
        return Err(ServiceError::NotFound("document"));
    }
    let txn = crate::db::write_txn(&app.db).await?;
    for (doc, values) in &parsed {
        ground_truth::Entity::delete_many()
            .filter(ground_truth::Column::FormVersionId.eq(v.id.as_str()))
            .filter(ground_truth::Column::DocumentId.eq(doc.as_str()))
            .exec(&txn)
            .await?;
        ground_truth::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(p.organization_id.clone()),
            project_id: Set(p.id.clone()),
            form_version_id: Set(v.id.clone()),
            document_id: Set(doc.clone()),
            values: Set(Value::Object(values.clone()).to_string()),
            imported_by: Set(access.principal.user_id().map(str::to_owned)),
            created_at: Set(now_ms()),
        }
        .insert(&txn)
        .await?;
    }
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(
            &p.organization_id,
            "evaluation.import",
            "form_version",
            &v.id,
        )
        .details(serde_json::json!({ "records": parsed.len() })),
    )
    .await?;
    txn.commit().await?;
    Ok(parsed.len())
}

fn check_type(f: &forms::Field, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    let ok = match f.field_type {
        FieldType::Number => {
            v.is_number()
                || v.as_str()
                    .is_some_and(|s| s.trim().replace('·', ".").parse::<f64>().is_ok())
        }
        FieldType::Integer => v.as_i64().is_some() || v.as_f64().is_some_and(|x| x.fract() == 0.0),
        FieldType::Boolean => v.is_boolean(),
        FieldType::Enum if f.multiple => v.as_array().is_some_and(|a| {
            a.iter().all(|o| {
                o.as_str()
                    .is_some_and(|s| f.options.iter().any(|x| x.eq_ignore_ascii_case(s)))
            })
        }),
        FieldType::Enum => v
            .as_str()
            .is_some_and(|s| f.options.iter().any(|x| x.eq_ignore_ascii_case(s))),
        FieldType::Text | FieldType::Date => v.is_string(),
        FieldType::Object | FieldType::Array => false,
    };
    if ok {
        Ok(())
    } else {
        let kind = format!("{:?}", f.field_type).to_uppercase();
        Err(format!("{v} is not a valid {kind} value"))
    }
}

/// What the extractor's values are scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum Reference {
    /// Reference values imported with `importGroundTruth`.
    #[default]
    GroundTruth,
    /// The values people decided in complete reviews (a rejected value
    /// counts as "not reported"; values no one decided are left out).
    Review,
}

/// A document's reference values, by concrete path.
type References = (String, BTreeMap<String, Value>);

/// Compares the latest results with the reference values (VIEWER+). A
/// document the caller may still extract blind (DUAL review) is left out,
/// against either reference: how the extractor scored on it would tell
/// them its values. The scoring runs on the CPU pool, each document's
/// list alignment within [`align::MAX_COMPARISONS`].
pub async fn evaluate(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    against: Reference,
) -> ServiceResult<Evaluation> {
    let (p, v) =
        extraction::project_version(app, access, project_id, form_version_id, Role::Viewer).await?;
    let form_fields = forms::version_fields(&v)?;
    let order: Vec<(String, Comparator)> = fields::by_path(&form_fields)
        .into_iter()
        .map(|(p, f)| (p, Comparator::for_field(f)))
        .collect();
    let results = extraction::all_results(app, &p.organization_id, &v.id).await?;
    let (truth, hidden): (Vec<References>, HashSet<String>) = match against {
        Reference::GroundTruth => {
            let ids: Vec<&str> = results.iter().map(|r| r.document.id.as_str()).collect();
            let hidden = crate::review::blind_documents(app, access, &v, &ids).await?;
            let truth = crate::tenancy::scoped::<ground_truth::Entity>(
                crate::tenancy::Scope::Organization(p.organization_id.as_str()),
            )
            .filter(ground_truth::Column::FormVersionId.eq(v.id.as_str()))
            .all(&app.db)
            .await?
            .into_iter()
            .map(|t| {
                let values = serde_json::from_str(&t.values).unwrap_or_default();
                (t.document_id, values)
            })
            .collect();
            (truth, hidden)
        }
        Reference::Review => {
            let rules = crate::review::rules_of(app, &v).await?;
            let reviews = crate::review::of_results(app, access, &v, &rules, &results).await?;
            let hidden = reviews
                .iter()
                .filter(|(_, r)| r.blind)
                .map(|(d, _)| d.clone())
                .collect();
            let truth = reviews
                .into_iter()
                .filter(|(_, r)| {
                    !r.blind && r.review.status == crate::review::ReviewStatus::Complete
                })
                .map(|(doc, r)| {
                    let decided = r
                        .values
                        .into_iter()
                        .filter(|x| x.state != crate::review::ValueState::Unreviewed)
                        .map(|x| (x.path, x.value))
                        .collect();
                    (doc, decided)
                })
                .collect();
            (truth, hidden)
        }
    };
    let truth: Vec<_> = truth
        .into_iter()
        .filter(|(doc, _)| !hidden.contains(doc))
        .collect();
    let mut filenames = HashMap::new();
    let mut extracted: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
    for r in results
        .into_iter()
        .filter(|r| !hidden.contains(&r.document.id))
    {
        let values = r
            .values
            .into_iter()
            .map(|x| {
                let value = serde_json::from_str(&x.value).unwrap_or(Value::Null);
                (x.path, value)
            })
            .collect();
        filenames.insert(r.document.id.clone(), r.document.filename);
        extracted.insert(r.document.id, values);
    }
    app.cpu
        .run(&p.organization_id, move || {
            score(&order, &truth, &extracted, &filenames)
        })
        .await
}

/// Scores every document's extracted values against its reference values.
fn score(
    order: &[(String, Comparator)],
    truth: &[References],
    extracted: &HashMap<String, BTreeMap<String, Value>>,
    filenames: &HashMap<String, String>,
) -> Evaluation {
    let comparators: HashMap<&str, Comparator> =
        order.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let scorer = |path: &str, want: &Value, got: Option<&Value>| {
        comparators
            .get(fields::template(path).as_str())
            .map_or(0.0, |c| c.score(want, got))
    };
    let none = BTreeMap::new();
    let mut per_field: BTreeMap<String, Score> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (document_id, values) in truth {
        // List items are compared with the reference item they match.
        let got = align::align(
            values,
            extracted.get(document_id.as_str()).unwrap_or(&none),
            &scorer,
        );
        let name = filenames.get(document_id).unwrap_or(document_id);
        warnings.extend(got.warnings.iter().map(|w| format!("{name}: {w}")));
        for (path, want) in values {
            let template = fields::template(path);
            let Some(c) = comparators.get(template.as_str()) else {
                continue;
            };
            let score = c.score(want, got.values.get(path.as_str()));
            let s = per_field.entry(template).or_insert(Score {
                support: 0,
                correct: 0.0,
            });
            s.support += 1;
            s.correct += score;
        }
    }
    let fields: Vec<FieldScore> = order
        .iter()
        .filter_map(|(path, c)| {
            per_field.get(path).map(|s| FieldScore {
                path: path.clone(),
                comparator: *c,
                score: s.clone(),
            })
        })
        .collect();
    let overall = Score {
        support: fields.iter().map(|f| f.score.support).sum(),
        correct: fields.iter().map(|f| f.score.correct).sum(),
    };
    Evaluation {
        overall,
        fields,
        documents: truth.len() as u64,
        warnings,
    }
}
