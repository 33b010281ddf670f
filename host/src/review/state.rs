//! A review's values, derived from the extractor's values and the
//! append-only decisions: nothing is stored as "the current value", so the
//! history of every value is the list of decisions behind it.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{DecisionKind, ReviewStatus, ValueSource, ValueState};
use crate::db::entities::{extraction_value, review_decision};
use crate::extraction::pipeline::StoredEvidence;

/// One value of a review, as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewedValue {
    /// Concrete path (`arms[0].name`).
    pub path: String,
    /// The value as decided (the extractor's, until a person decides).
    pub value: Value,
    /// Where the review stands on it.
    pub state: ValueState,
    /// Whose value `value` is.
    pub source: ValueSource,
    /// The extractor's value (null when it gave none).
    pub extracted: Value,
    /// The extractor's confidence in its value (0..1); none for a path
    /// only reviewers filled, and in a blind view.
    pub confidence: Option<f64>,
    /// The evidence of `value`: the reviewer's grounded quote for a
    /// correction that gave one, else the extractor's.
    pub evidence: Vec<StoredEvidence>,
    /// Every decision on this path, oldest first.
    pub decisions: Vec<review_decision::Model>,
}

impl ReviewedValue {
    /// An extracted value no one has decided on yet.
    fn extracted(v: &extraction_value::Model) -> Self {
        let value = json(Some(&v.value));
        Self {
            path: v.path.clone(),
            extracted: value.clone(),
            value,
            confidence: Some(v.confidence),
            state: ValueState::Unreviewed,
            source: ValueSource::Extractor,
            evidence: v.evidence.0.clone(),
            decisions: Vec::new(),
        }
    }

    /// A path the extractor gave nothing at (only people did).
    fn missing(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            value: Value::Null,
            state: ValueState::Unreviewed,
            source: ValueSource::Extractor,
            extracted: Value::Null,
            confidence: None,
            evidence: Vec::new(),
            decisions: Vec::new(),
        }
    }
}

/// Where each path is in `values` (the first, should one repeat): every
/// derivation looks paths up here, so it is linear in the decisions.
fn index(values: &[ReviewedValue]) -> HashMap<String, usize> {
    let mut at = HashMap::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        at.entry(v.path.clone()).or_insert(i);
    }
    at
}

/// Parses a stored JSON cell (null when absent or unreadable).
pub fn json(cell: Option<&str>) -> Value {
    cell.and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

/// The values of a SINGLE-mode review: the extractor's values in its
/// order, then paths only reviewers added, each in the state its latest
/// verdict gives. A verdict given on another extracted value than today's
/// (the document was extracted again and the value changed) no longer
/// counts: the value is UNREVIEWED again, the old verdict kept in history.
pub fn single(
    extracted: &[extraction_value::Model],
    decisions: &[review_decision::Model],
) -> Vec<ReviewedValue> {
    let mut out: Vec<ReviewedValue> = extracted.iter().map(ReviewedValue::extracted).collect();
    let mut at = index(&out);
    for d in decisions.iter().filter(|d| d.verdict.is_single()) {
        let i = *at.entry(d.path.clone()).or_insert_with(|| {
            out.push(ReviewedValue::missing(&d.path));
            out.len() - 1
        });
        out[i].decisions.push(d.clone());
    }
    for v in &mut out {
        let Some(last) = v.decisions.last() else {
            continue;
        };
        if json(last.extracted.as_deref()) != v.extracted {
            continue;
        }
        match last.verdict {
            DecisionKind::Accept => {
                v.state = ValueState::Verified;
            }
            DecisionKind::Correct => {
                v.state = ValueState::Corrected;
                v.source = ValueSource::Reviewer;
                v.value = json(last.value.as_deref());
                if !last.evidence.0.is_empty() {
                    v.evidence = last.evidence.0.clone();
                }
            }
            DecisionKind::Reject => {
                v.state = ValueState::Rejected;
                v.source = ValueSource::Reviewer;
                v.value = Value::Null;
                v.evidence = Vec::new();
            }
            // Only SINGLE decisions reach here.
            DecisionKind::Extract | DecisionKind::Submit | DecisionKind::Resolve => {}
        }
    }
    out
}

/// One reviewer's independent extraction of a document (DUAL).
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Who.
    pub user_id: String,
    /// Their value at each path they filled (null: "not reported").
    pub values: BTreeMap<String, Value>,
}

/// A review's values as its decisions make them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    /// The values: the extractor's paths in order, then paths only
    /// reviewers filled.
    pub values: Vec<ReviewedValue>,
    /// The submitted independent extractions (DUAL), in submission order.
    pub extractions: Vec<Extraction>,
    /// Reviewers still to submit before values can be compared (DUAL).
    pub waiting: usize,
}

/// Whether two values agree, by the comparator of the field at `path`.
pub type Agree<'a> = &'a dyn Fn(&str, &Value, &Value) -> bool;

/// Every reviewer's latest value per path, in the order each reviewer
/// first decided, and who has submitted (in submission order).
fn drafts(decisions: &[review_decision::Model]) -> (Vec<Extraction>, Vec<String>) {
    let mut all: Vec<Extraction> = Vec::new();
    let mut submitted = Vec::new();
    for d in decisions {
        let Some(user) = d.user_id.as_deref() else {
            continue;
        };
        match d.verdict {
            DecisionKind::Extract => {
                let i = match all.iter().position(|e| e.user_id == user) {
                    Some(i) => i,
                    None => {
                        all.push(Extraction {
                            user_id: user.to_owned(),
                            values: BTreeMap::new(),
                        });
                        all.len() - 1
                    }
                };
                all[i]
                    .values
                    .insert(d.path.clone(), json(d.value.as_deref()));
            }
            DecisionKind::Submit if !submitted.iter().any(|s| s == user) => {
                submitted.push(user.to_owned());
            }
            _ => {}
        }
    }
    (all, submitted)
}

/// Who has begun extracting (in the order they began) and who has
/// submitted (in the order they submitted), from a review's decisions.
pub fn extractors(decisions: &[review_decision::Model]) -> (Vec<String>, Vec<String>) {
    let (all, submitted) = drafts(decisions);
    let mut begun: Vec<String> = all.into_iter().map(|e| e.user_id).collect();
    for s in &submitted {
        if !begun.contains(s) {
            begun.push(s.clone());
        }
    }
    (begun, submitted)
}

/// The values of a DUAL review. Until `reviewers` people have submitted,
/// every value is the extractor's, UNREVIEWED, and only submitted
/// reviewers' decisions are shown (a draft is its author's alone). Then
/// each path is compared across the extractions (the extractor's, when
/// there is a result, and each reviewer's; a path someone left out counts
/// as "not reported"): AGREED when all agree, else DISPUTED until an
/// adjudicator's resolution, made on today's extracted value, RESOLVES it.
pub fn dual(
    extracted: Option<&[extraction_value::Model]>,
    decisions: &[review_decision::Model],
    reviewers: usize,
    agree: Agree<'_>,
) -> Derived {
    let (all, submitted) = drafts(decisions);
    // A reviewer who submitted without a value reported nothing.
    let extractions: Vec<Extraction> = submitted
        .iter()
        .map(|u| {
            all.iter()
                .find(|e| &e.user_id == u)
                .cloned()
                .unwrap_or_else(|| Extraction {
                    user_id: u.clone(),
                    values: BTreeMap::new(),
                })
        })
        .collect();
    let waiting = reviewers.saturating_sub(extractions.len());
    let mut out: Vec<ReviewedValue> = extracted
        .unwrap_or_default()
        .iter()
        .map(ReviewedValue::extracted)
        .collect();
    let shown = |d: &&review_decision::Model| {
        waiting == 0 || d.user_id.as_ref().is_some_and(|u| submitted.contains(u))
    };
    let mut at = index(&out);
    if waiting == 0 {
        for e in &extractions {
            for path in e.values.keys() {
                at.entry(path.clone()).or_insert_with(|| {
                    out.push(ReviewedValue::missing(path));
                    out.len() - 1
                });
            }
        }
    }
    for d in decisions
        .iter()
        .filter(|d| !d.verdict.is_single())
        .filter(shown)
    {
        if let Some(&i) = at.get(&d.path) {
            out[i].decisions.push(d.clone());
        }
    }
    if waiting > 0 {
        return Derived {
            values: out,
            extractions,
            waiting,
        };
    }
    for v in &mut out {
        let theirs: Vec<Value> = extractions
            .iter()
            .map(|e| e.values.get(&v.path).cloned().unwrap_or(Value::Null))
            .collect();
        let mut all: Vec<&Value> = theirs.iter().collect();
        if extracted.is_some() {
            all.insert(0, &v.extracted);
        }
        let agreed = all
            .iter()
            .enumerate()
            .all(|(i, a)| all[i + 1..].iter().all(|b| agree(&v.path, a, b)));
        let resolution = v
            .decisions
            .iter()
            .rev()
            .find(|d| d.verdict == DecisionKind::Resolve);
        if agreed {
            v.state = ValueState::Agreed;
            if extracted.is_none() {
                v.value = theirs.first().cloned().unwrap_or(Value::Null);
                v.source = ValueSource::Reviewer;
            }
        } else if let Some(r) = resolution.filter(|r| json(r.extracted.as_deref()) == v.extracted) {
            v.state = ValueState::Resolved;
            v.source = ValueSource::Adjudicator;
            v.value = json(r.value.as_deref());
            v.evidence = if agree(&v.path, &v.value, &v.extracted) {
                v.evidence.clone()
            } else {
                Vec::new()
            };
        } else {
            v.state = ValueState::Disputed;
        }
    }
    Derived {
        values: out,
        extractions,
        waiting,
    }
}

/// What one reviewer sees of a DUAL review before submitting: their own
/// values and decisions only, never the extractor's or another reviewer's.
pub fn blind(decisions: &[review_decision::Model], user_id: &str) -> Vec<ReviewedValue> {
    let mut out: Vec<ReviewedValue> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for d in decisions
        .iter()
        .filter(|d| d.user_id.as_deref() == Some(user_id) && d.verdict == DecisionKind::Extract)
    {
        let mut d = d.clone();
        // The extractor's value at the time is on the record, not for them.
        d.extracted = None;
        let value = json(d.value.as_deref());
        match at.get(&d.path) {
            Some(&i) => {
                out[i].value = value;
                out[i].decisions.push(d);
            }
            None => {
                at.insert(d.path.clone(), out.len());
                out.push(ReviewedValue {
                    path: d.path.clone(),
                    value,
                    state: ValueState::Unreviewed,
                    source: ValueSource::Reviewer,
                    extracted: Value::Null,
                    confidence: None,
                    evidence: Vec::new(),
                    decisions: vec![d],
                });
            }
        }
    }
    out
}

/// Where a review stands, from its stored status and its values: a
/// complete review stays complete; otherwise a DUAL review with all its
/// extractions in waits for adjudication while any value is disputed.
pub fn status(stored: ReviewStatus, values: &[ReviewedValue], waiting: usize) -> ReviewStatus {
    if stored == ReviewStatus::Complete {
        ReviewStatus::Complete
    } else if waiting == 0 && values.iter().any(|v| v.state == ValueState::Disputed) {
        ReviewStatus::AwaitingAdjudication
    } else {
        ReviewStatus::Open
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::db::types::EvidenceList;
    use crate::extraction::pipeline::Grounding;
    use crate::plugins::extractor::ValueStatus;

    fn value(path: &str, v: Value) -> extraction_value::Model {
        extraction_value::Model {
            id: path.into(),
            organization_id: "o".into(),
            result_id: "r".into(),
            ordinal: 0,
            path: path.into(),
            value: v.to_string(),
            status: ValueStatus::Found,
            confidence: 0.9,
            evidence: EvidenceList::default(),
            grounding: Grounding::None,
            author_user_id: None,
            created_at: 0,
        }
    }

    fn decision(
        path: &str,
        verdict: DecisionKind,
        v: Option<Value>,
        extracted: Value,
        at: i64,
    ) -> review_decision::Model {
        review_decision::Model {
            id: format!("{path}{at}"),
            organization_id: "o".into(),
            review_id: "rv".into(),
            path: path.into(),
            verdict,
            user_id: Some("u".into()),
            value: v.map(|v| v.to_string()),
            extracted: Some(extracted.to_string()),
            evidence: EvidenceList::default(),
            note: None,
            created_at: at,
        }
    }

    #[test]
    fn the_latest_verdict_on_todays_value_decides() {
        let extracted = [
            value("n", json!(120)),
            value("blinding", json!("open")),
            value("arms[0].name", json!("placebo")),
        ];
        let decisions = [
            decision("n", DecisionKind::Accept, None, json!(120), 1),
            decision("n", DecisionKind::Correct, Some(json!(121)), json!(120), 2),
            decision("blinding", DecisionKind::Reject, None, json!("open"), 3),
            // A verdict on yesterday's extraction (value 3) no longer counts.
            decision("arms[0].name", DecisionKind::Accept, None, json!("drug"), 4),
            // A path the reviewer added.
            decision(
                "arms[1].name",
                DecisionKind::Correct,
                Some(json!("drug")),
                Value::Null,
                5,
            ),
        ];
        let v = single(&extracted, &decisions);
        let got: Vec<_> = v
            .iter()
            .map(|v| {
                (
                    v.path.as_str(),
                    v.state,
                    v.source,
                    v.value.clone(),
                    v.decisions.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "n",
                    ValueState::Corrected,
                    ValueSource::Reviewer,
                    json!(121),
                    2
                ),
                (
                    "blinding",
                    ValueState::Rejected,
                    ValueSource::Reviewer,
                    Value::Null,
                    1
                ),
                (
                    "arms[0].name",
                    ValueState::Unreviewed,
                    ValueSource::Extractor,
                    json!("placebo"),
                    1
                ),
                (
                    "arms[1].name",
                    ValueState::Corrected,
                    ValueSource::Reviewer,
                    json!("drug"),
                    1
                ),
            ]
        );
        assert_eq!(v[0].extracted, json!(120));
    }

    fn by(user: &str, mut d: review_decision::Model) -> review_decision::Model {
        d.user_id = Some(user.into());
        d.id = format!("{}-{user}", d.id);
        d
    }

    fn extract(user: &str, path: &str, v: Value, at: i64) -> review_decision::Model {
        by(
            user,
            decision(path, DecisionKind::Extract, Some(v), Value::Null, at),
        )
    }

    fn submit(user: &str, at: i64) -> review_decision::Model {
        by(
            user,
            decision("", DecisionKind::Submit, None, Value::Null, at),
        )
    }

    fn exact(_: &str, a: &Value, b: &Value) -> bool {
        a == b
    }

    fn states(d: &Derived) -> Vec<(&str, ValueState, ValueSource, Value)> {
        d.values
            .iter()
            .map(|v| (v.path.as_str(), v.state, v.source, v.value.clone()))
            .collect()
    }

    #[test]
    fn dual_values_wait_for_every_extraction_then_agree_or_dispute() {
        let extracted = [value("n", json!(120)), value("blinding", json!("open"))];
        let mut decisions = vec![
            extract("a", "n", json!(120), 1),
            extract("a", "blinding", json!("double"), 2),
            submit("a", 3),
            extract("b", "n", json!(120), 4),
        ];
        // One of two submitted: the extractor's values, and b's draft
        // shown to no one.
        let d = dual(Some(&extracted), &decisions, 2, &exact);
        assert_eq!(d.waiting, 1);
        assert!(d.values.iter().all(|v| v.state == ValueState::Unreviewed));
        assert!(
            d.values
                .iter()
                .flat_map(|v| &v.decisions)
                .all(|x| x.user_id.as_deref() == Some("a"))
        );
        // b's blind view: b's own value, nothing of the extractor's.
        let blind_b = blind(&decisions, "b");
        assert_eq!(blind_b.len(), 1);
        assert_eq!(blind_b[0].value, json!(120));
        assert_eq!(blind_b[0].extracted, Value::Null);
        assert_eq!(blind_b[0].decisions[0].extracted, None);

        decisions.push(extract("b", "arms[0].name", json!("x"), 5));
        decisions.push(submit("b", 6));
        let d = dual(Some(&extracted), &decisions, 2, &exact);
        assert_eq!(d.waiting, 0);
        assert_eq!(
            d.extractions
                .iter()
                .map(|e| e.user_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            states(&d),
            [
                ("n", ValueState::Agreed, ValueSource::Extractor, json!(120)),
                // b left it out: "not reported", which disagrees.
                (
                    "blinding",
                    ValueState::Disputed,
                    ValueSource::Extractor,
                    json!("open")
                ),
                (
                    "arms[0].name",
                    ValueState::Disputed,
                    ValueSource::Extractor,
                    Value::Null
                ),
            ]
        );
        assert_eq!(
            status(ReviewStatus::Open, &d.values, d.waiting),
            ReviewStatus::AwaitingAdjudication
        );

        // A resolution holds while the extracted value it was made on does.
        let mut resolved = by(
            "c",
            decision(
                "blinding",
                DecisionKind::Resolve,
                Some(json!("double")),
                json!("open"),
                7,
            ),
        );
        resolved.note = Some("methods section".into());
        decisions.push(resolved);
        let d = dual(Some(&extracted), &decisions, 2, &exact);
        assert_eq!(
            states(&d)[1],
            (
                "blinding",
                ValueState::Resolved,
                ValueSource::Adjudicator,
                json!("double")
            )
        );
        let again = [value("n", json!(120)), value("blinding", json!("single"))];
        let d = dual(Some(&again), &decisions, 2, &exact);
        assert_eq!(
            states(&d)[1].1,
            ValueState::Disputed,
            "re-extracted: disputed again"
        );
        assert_eq!(
            d.values[1].decisions.len(),
            2,
            "the resolution stays in history"
        );
    }

    #[test]
    fn without_an_extraction_the_people_alone_decide() {
        let decisions = [
            extract("a", "n", json!(50), 1),
            submit("a", 2),
            extract("b", "n", json!(50), 3),
            submit("b", 4),
            // A reviewer who submitted nothing reported nothing.
            submit("c", 5),
        ];
        let d = dual(None, &decisions[..4], 2, &exact);
        assert_eq!(
            states(&d),
            [("n", ValueState::Agreed, ValueSource::Reviewer, json!(50))]
        );
        let d = dual(None, &decisions, 3, &exact);
        assert_eq!(d.extractions[2].values.len(), 0);
        assert_eq!(states(&d)[0].1, ValueState::Disputed);
        // SINGLE derivation passes over DUAL decisions.
        assert!(single(&[], &decisions).is_empty());
    }
}
