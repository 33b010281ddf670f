//! A review's values, derived from the extractor's values and the
//! append-only decisions: nothing is stored as "the current value", so the
//! history of every value is the list of decisions behind it.

use serde_json::Value;

use super::{ValueSource, ValueState, Verdict};
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
    /// The evidence of `value`: the reviewer's grounded quote for a
    /// correction that gave one, else the extractor's.
    pub evidence: Vec<StoredEvidence>,
    /// Every decision on this path, oldest first.
    pub decisions: Vec<review_decision::Model>,
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
    let mut out: Vec<ReviewedValue> = extracted
        .iter()
        .map(|v| ReviewedValue {
            path: v.path.clone(),
            value: json(Some(&v.value)),
            state: ValueState::Unreviewed,
            source: ValueSource::Extractor,
            extracted: json(Some(&v.value)),
            evidence: v.evidence.0.clone(),
            decisions: Vec::new(),
        })
        .collect();
    for d in decisions {
        let i = match out.iter().position(|v| v.path == d.path) {
            Some(i) => i,
            None => {
                out.push(ReviewedValue {
                    path: d.path.clone(),
                    value: Value::Null,
                    state: ValueState::Unreviewed,
                    source: ValueSource::Extractor,
                    extracted: Value::Null,
                    evidence: Vec::new(),
                    decisions: Vec::new(),
                });
                out.len() - 1
            }
        };
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
            Verdict::Accept => {
                v.state = ValueState::Verified;
            }
            Verdict::Correct => {
                v.state = ValueState::Corrected;
                v.source = ValueSource::Reviewer;
                v.value = json(last.value.as_deref());
                if !last.evidence.0.is_empty() {
                    v.evidence = last.evidence.0.clone();
                }
            }
            Verdict::Reject => {
                v.state = ValueState::Rejected;
                v.source = ValueSource::Reviewer;
                v.value = Value::Null;
                v.evidence = Vec::new();
            }
        }
    }
    out
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
        verdict: Verdict,
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
            decision("n", Verdict::Accept, None, json!(120), 1),
            decision("n", Verdict::Correct, Some(json!(121)), json!(120), 2),
            decision("blinding", Verdict::Reject, None, json!("open"), 3),
            // A verdict on yesterday's extraction (value 3) no longer counts.
            decision("arms[0].name", Verdict::Accept, None, json!("drug"), 4),
            // A path the reviewer added.
            decision(
                "arms[1].name",
                Verdict::Correct,
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
}
