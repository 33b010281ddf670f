//! DUAL mode: reviewers extract a document independently and blind, then
//! an adjudicator resolves what the extractions disagree on. Every value a
//! reviewer enters, every submission and every resolution is one more
//! append-only decision.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set, StreamTrait};
use serde_json::Value;

use super::state::{self, ReviewedValue};
use super::{
    DecisionKind, ReviewMode, ReviewView, Subject, ValueState, announce, clean_note, derive, lock,
    review_row, subject, touch, unlocked, view,
};
use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{review, review_decision};
use crate::db::types::EvidenceList;
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::forms::fields;
use crate::tenancy::Access;
use crate::validate;

/// Records (part of) the caller's own extraction of a document
/// (REVIEWER+, DUAL mode): `values` maps concrete paths to values of the
/// fields' types (null: "not reported"); a path sent again replaces the
/// caller's earlier value. `submit` ends the caller's extraction; after
/// that nothing of theirs changes. Returns the review as the caller now
/// sees it. All or nothing: one bad path or value and nothing is written.
/// One reviewer's extraction of a document holds at most
/// `review.max_values_per_submission` values over all its parts.
pub async fn submit_values(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
    values: &Value,
    submit: bool,
) -> ServiceResult<ReviewView> {
    let s = subject(app, access, document_id, form_version_id, Role::Reviewer).await?;
    dual_only(&s, "submit reviewer values")?;
    let user = access.user_id()?.to_owned();
    let entries = values.as_object().ok_or_else(|| {
        ServiceError::bad_input(
            "values is an object of paths and values: {\"sample_size\": 120, \"arms[0].name\": \"placebo\"}",
        )
    })?;
    let max = app.config.review.max_values_per_submission;
    if entries.len() > max {
        return Err(ServiceError::bad_input(format!(
            "{} values sent; an extraction of a document holds at most {max}",
            entries.len()
        )));
    }
    if entries.is_empty() && !submit {
        return Err(ServiceError::bad_input(
            "no values to record; send some, or submit: true to end your extraction",
        ));
    }
    for (path, v) in entries {
        checked(&s, path, v)?;
    }
    let first = review_row(&app.db, &s.document, &s.version.id).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    let r = lock(&txn, &first).await?;
    unlocked(&r)?;
    let (derived, decided) = derive(app, &txn, &s, &r).await?;
    let (begun, submitted) = state::extractors(&decided);
    if submitted.contains(&user) {
        return Err(ServiceError::Conflict(
            "you have already submitted your extraction of this document".into(),
        ));
    }
    if !begun.contains(&user) && begun.len() >= s.rules.reviewers {
        return Err(ServiceError::Conflict(format!(
            "this document already has its {} independent reviewers",
            s.rules.reviewers
        )));
    }
    // Every value sent is a decision kept, a replaced one too.
    let recorded = decided
        .iter()
        .filter(|d| d.verdict == DecisionKind::Extract && d.user_id.as_deref() == Some(&user))
        .count();
    if !entries.is_empty() && recorded + entries.len() > max {
        return Err(ServiceError::bad_input(format!(
            "your extraction of this document holds {recorded} values; {} more would pass \
             the {max} one extraction may hold",
            entries.len()
        )));
    }
    let extracted_at: std::collections::HashMap<&str, &Value> = derived
        .values
        .iter()
        .map(|x| (x.path.as_str(), &x.extracted))
        .collect();
    let now = now_ms();
    for (path, v) in entries {
        // The extractor's value at the time is kept for the history; the
        // reviewer never sees it before submitting.
        let extracted = extracted_at
            .get(path.as_str())
            .map_or(Value::Null, |x| (*x).clone());
        record(
            &txn,
            &r,
            &user,
            path,
            DecisionKind::Extract,
            v,
            &extracted,
            None,
            now,
        )
        .await?;
    }
    if submit {
        record(
            &txn,
            &r,
            &user,
            "",
            DecisionKind::Submit,
            &Value::Null,
            &Value::Null,
            None,
            now,
        )
        .await?;
    }
    let r = settle(app, &txn, &s, r).await?;
    if submit {
        audit::record(
            &txn,
            Some(&access.principal),
            AuditRecord::new(&r.organization_id, "review.submit", "review", &r.id),
        )
        .await?;
    }
    txn.commit().await?;
    announce(app, &r).await;
    view(app, &s, r, access).await
}

/// The final value of a DISPUTED path, decided by an adjudicator with a
/// note saying why (DUAL mode). ADMIN and OWNER adjudicate, and so does a
/// REVIEWER who did not extract the document. `value` null (or absent):
/// the paper does not report it.
pub async fn resolve(
    app: &App,
    access: &Access,
    document_id: &str,
    form_version_id: &str,
    path: &str,
    value: Option<Value>,
    note: &str,
) -> ServiceResult<ReviewedValue> {
    let s = subject(app, access, document_id, form_version_id, Role::Reviewer).await?;
    dual_only(&s, "resolve a value")?;
    let note = clean_note(Some(note), true)?;
    let user = access.user_id()?.to_owned();
    let value = value.unwrap_or(Value::Null);
    checked(&s, path, &value)?;
    let first = review_row(&app.db, &s.document, &s.version.id).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    let r = lock(&txn, &first).await?;
    unlocked(&r)?;
    let (derived, decided) = derive(app, &txn, &s, &r).await?;
    let admin = access
        .role_in(&r.organization_id)
        .is_some_and(|role| role.at_least(Role::Admin));
    let (begun, _) = state::extractors(&decided);
    if !admin && begun.contains(&user) {
        return Err(ServiceError::forbidden(
            "you extracted this document; another reviewer, an ADMIN or an OWNER adjudicates it",
        ));
    }
    let current = derived.values.iter().find(|v| v.path == path);
    let Some(current) = current.filter(|v| v.state == ValueState::Disputed) else {
        let why = match (derived.waiting, current) {
            (w, _) if w > 0 => format!("{w} independent extraction(s) are still to be submitted"),
            (_, Some(v)) => format!("it is {}", format!("{:?}", v.state).to_uppercase()),
            (_, None) => "no extraction has a value there".to_owned(),
        };
        return Err(ServiceError::Conflict(format!(
            "`{path}` is not disputed: {why}"
        )));
    };
    let extracted = current.extracted.clone();
    record(
        &txn,
        &r,
        &user,
        path,
        DecisionKind::Resolve,
        &value,
        &extracted,
        note,
        now_ms(),
    )
    .await?;
    let r = settle(app, &txn, &s, r).await?;
    txn.commit().await?;
    announce(app, &r).await;
    let v = view(app, &s, r, access).await?;
    v.values
        .into_iter()
        .find(|v| v.path == path)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("resolved value not derived")))
}

fn dual_only(s: &Subject, what: &str) -> ServiceResult<()> {
    if s.rules.mode == ReviewMode::Dual {
        Ok(())
    } else {
        Err(ServiceError::bad_input(format!(
            "this project reviews in SINGLE mode: verify values instead (cannot {what})"
        )))
    }
}

/// A reviewer's or adjudicator's value at a path: a scalar field of the
/// form (a list or group is given by its fields), of the field's type.
fn checked(s: &Subject, path: &str, v: &Value) -> ServiceResult<()> {
    let field = s.rules.field_at(path)?;
    if field.field_type.is_composite() {
        return Err(ServiceError::bad_input(format!(
            "`{path}` is a list or group: give its fields (`{path}[0].…` or `{path}.…`)"
        )));
    }
    fields::check_value(field, v).map_err(|e| ServiceError::bad_input(format!("`{path}`: {e}")))?;
    validate::json_text(v, &format!("`{path}`"), validate::Lines::Many)
}

/// Appends one decision.
#[allow(clippy::too_many_arguments)]
async fn record<C: ConnectionTrait>(
    db: &C,
    r: &review::Model,
    user: &str,
    path: &str,
    kind: DecisionKind,
    value: &Value,
    extracted: &Value,
    note: Option<String>,
    at: i64,
) -> ServiceResult<()> {
    review_decision::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(r.organization_id.clone()),
        review_id: Set(r.id.clone()),
        path: Set(path.to_owned()),
        verdict: Set(kind),
        user_id: Set(Some(user.to_owned())),
        value: Set((kind != DecisionKind::Submit).then(|| value.to_string())),
        extracted: Set(Some(extracted.to_string())),
        evidence: Set(EvidenceList::default()),
        note: Set(note),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Stores the status the review's decisions now give it.
async fn settle<C: ConnectionTrait + StreamTrait>(
    app: &App,
    db: &C,
    s: &Subject,
    r: review::Model,
) -> ServiceResult<review::Model> {
    let (derived, _) = derive(app, db, s, &r).await?;
    let status = state::status(r.status, &derived.values, derived.waiting);
    touch(db, r, Some(status)).await
}
