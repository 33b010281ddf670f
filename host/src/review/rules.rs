//! What a review's values are derived under: the project's mode and
//! reviewers per document, the form version's fields and their comparators
//! (the ones evaluation uses) that decide whether two extractions agree,
//! and the bound on list items of the paths people give.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::ReviewMode;
use super::state::{self, Derived};
use crate::db::entities::{extraction_value, form_version, review_decision};
use crate::error::{ServiceError, ServiceResult};
use crate::evaluation::compare::Comparator;
use crate::forms::{self, Field, fields};

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
    /// Every field by template path.
    fields: HashMap<String, Field>,
    /// Items a list may have in a path people give.
    max_list_items: usize,
}

impl Rules {
    /// The rules of `version` under the project's `mode`, list indices
    /// below `max_list_items`.
    pub fn new(
        mode: ReviewMode,
        reviewers: i32,
        version: &form_version::Model,
        max_list_items: usize,
    ) -> ServiceResult<Self> {
        let form_fields = forms::version_fields(version)?;
        Ok(Self {
            fields: fields::by_path(&form_fields)
                .into_iter()
                .map(|(p, f)| (p, f.clone()))
                .collect(),
            max_list_items,
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

    /// The form field a concrete path people give names (list indices
    /// where the form has lists, below the bound on list items).
    /// BAD_USER_INPUT naming the path otherwise.
    pub fn field_at(&self, path: &str) -> ServiceResult<&Field> {
        self.field_within(path, self.max_list_items)
    }

    /// The form field at a path the extractor gave (its list indices are
    /// not bounded: the extractor, not a person, made them).
    pub fn extracted_field_at(&self, path: &str) -> ServiceResult<&Field> {
        self.field_within(path, usize::MAX)
    }

    fn field_within(&self, path: &str, max_list_items: usize) -> ServiceResult<&Field> {
        let template =
            fields::concrete_template(path, max_list_items).map_err(ServiceError::BadInput)?;
        self.fields.get(&template).ok_or_else(|| {
            let shown: String = path.chars().take(80).collect();
            ServiceError::bad_input(format!("`{shown}` is not a field of this form"))
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
