//! What a review's values are derived under: the project's mode and
//! reviewers per document, and the form version's field comparators (the
//! ones evaluation uses) that decide whether two extractions agree.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::ReviewMode;
use super::state::{self, Derived};
use crate::db::entities::{extraction_value, form_version, review_decision};
use crate::error::ServiceResult;
use crate::evaluation::compare::Comparator;
use crate::forms::{self, fields};

/// The mode, the reviewers per document and the comparators of one form
/// version in one project.
#[derive(Debug, Clone)]
pub struct Rules {
    /// SINGLE or DUAL.
    pub mode: ReviewMode,
    /// People who extract each document (DUAL).
    pub reviewers: usize,
    comparators: HashMap<String, Comparator>,
    /// Template paths of lists and groups.
    composite: HashSet<String>,
}

impl Rules {
    /// The rules of `version` under the project's `mode`.
    pub fn new(
        mode: ReviewMode,
        reviewers: i32,
        version: &form_version::Model,
    ) -> ServiceResult<Self> {
        let form_fields = forms::version_fields(version)?;
        Ok(Self {
            mode,
            reviewers: usize::try_from(reviewers.max(1)).unwrap_or(1),
            comparators: fields::by_path(&form_fields)
                .into_iter()
                .map(|(p, f)| (p, Comparator::for_field(f)))
                .collect(),
            composite: fields::by_path(&form_fields)
                .into_iter()
                .filter(|(_, f)| f.field_type.is_composite())
                .map(|(p, _)| p)
                .collect(),
        })
    }

    /// The comparator of the field at a concrete path.
    pub fn comparator(&self, path: &str) -> Option<Comparator> {
        self.comparators.get(&fields::template(path)).copied()
    }

    /// Whether two values at `path` agree: each matches the other by the
    /// field's comparator (both ways, so a year and a full date differ);
    /// both null ("not reported") agree.
    pub fn agree(&self, path: &str, a: &Value, b: &Value) -> bool {
        match self.comparator(path) {
            Some(c) => c.score(a, Some(b)) >= 1.0 && c.score(b, Some(a)) >= 1.0,
            None => a == b,
        }
    }

    /// A review's values. `extracted` is the extractor's latest result
    /// (None: the document has none).
    pub fn derive(
        &self,
        extracted: Option<&[extraction_value::Model]>,
        decisions: &[review_decision::Model],
    ) -> Derived {
        match self.mode {
            ReviewMode::Single => Derived {
                values: state::single(extracted.unwrap_or_default(), decisions),
                extractions: Vec::new(),
                waiting: 0,
            },
            ReviewMode::Dual => {
                let mut d = state::dual(extracted, decisions, self.reviewers, &|p, a, b| {
                    self.agree(p, a, b)
                });
                // A list or group is not a value people extract: its
                // items are (an extractor's `arms` entry says only whether
                // it found the list).
                d.values
                    .retain(|v| !self.composite.contains(&fields::template(&v.path)));
                d
            }
        }
    }
}
