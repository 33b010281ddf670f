//! Analysis roles: which field of a form version holds which number a
//! meta-analysis needs. A role maps to a field path as the form writes it
//! (`outcomes[].intervention_mean`); all of them sit under one ARRAY (one
//! comparison per item) or at the top level (one per document). The CI
//! levels may instead be constants. A form maps itself by its field names
//! (role `interventionMean` ↔ field `intervention_mean`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ServiceError, ServiceResult};
use crate::forms::{Field, FieldType, fields};

/// What kind of field a role takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TEXT or ENUM: a name.
    Label,
    /// INTEGER or NUMBER: a count.
    Count,
    /// NUMBER or INTEGER.
    Number,
    /// NUMBER or TEXT (so "p < 0.05" and "NS" are kept as printed).
    PValue,
    /// NUMBER, or a constant level in (0, 1).
    Level,
}

/// The quantities each arm has.
pub const ARM_QUANTITIES: [&str; 13] = [
    "Events",
    "GroupSize",
    "Mean",
    "StandardDeviation",
    "StandardError",
    "CiLower",
    "CiUpper",
    "CiLevel",
    "Median",
    "Q1",
    "Q3",
    "Min",
    "Max",
];

/// The arms, by role prefix.
pub const ARMS: [&str; 2] = ["intervention", "comparator"];

fn arm_kind(q: &str) -> Kind {
    match q {
        "Events" | "GroupSize" => Kind::Count,
        "CiLevel" => Kind::Level,
        _ => Kind::Number,
    }
}

/// Every role and its kind.
fn all() -> Vec<(String, Kind)> {
    let mut out: Vec<(String, Kind)> = ["outcome", "intervention", "comparator", "outcomeType"]
        .iter()
        .map(|r| ((*r).to_owned(), Kind::Label))
        .collect();
    for arm in ARMS {
        for q in ARM_QUANTITIES {
            out.push((format!("{arm}{q}"), arm_kind(q)));
        }
    }
    out.push(("pValue".into(), Kind::PValue));
    out.push(("tStatistic".into(), Kind::Number));
    out.push(("differenceCiLower".into(), Kind::Number));
    out.push(("differenceCiUpper".into(), Kind::Number));
    out.push(("differenceCiLevel".into(), Kind::Level));
    out
}

fn kind_of(role: &str) -> Option<Kind> {
    all().into_iter().find(|(r, _)| r == role).map(|(_, k)| k)
}

/// Where a role's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A field, by template path.
    Field(String),
    /// A constant (CI levels only).
    Constant(f64),
}

/// A form version's roles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    /// Role name → target.
    pub map: BTreeMap<String, Target>,
}

impl Roles {
    /// The target of `role`.
    pub fn get(&self, role: &str) -> Option<&Target> {
        self.map.get(role)
    }

    /// The roles as the API shows them: role → path or constant.
    pub fn to_json(&self) -> Value {
        let m: Map<String, Value> = self
            .map
            .iter()
            .map(|(k, t)| {
                let v = match t {
                    Target::Field(p) => Value::String(p.clone()),
                    Target::Constant(c) => serde_json::json!(c),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(m)
    }

    /// The template path all field roles sit under (`outcomes[]`), or "" at the top.
    pub fn parent(&self) -> Option<String> {
        self.map.values().find_map(|t| match t {
            Target::Field(p) => Some(parent_of(p)),
            Target::Constant(_) => None,
        })
    }

    /// Whether there is anything to analyse.
    pub fn is_empty(&self) -> bool {
        !self.map.values().any(|t| matches!(t, Target::Field(_)))
    }
}

/// The innermost ARRAY item path of a template path ("outcomes[]"), or "".
pub fn parent_of(path: &str) -> String {
    path.rfind("[]")
        .map_or(String::new(), |i| path[..i + 2].to_owned())
}

/// camelCase → snake_case, the name a form gives a role's field.
fn snake(role: &str) -> String {
    let mut out = String::new();
    for c in role.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn accepts(kind: Kind, t: FieldType) -> bool {
    use FieldType::*;
    match kind {
        Kind::Label => matches!(t, Text | Enum),
        Kind::Count | Kind::Number | Kind::Level => matches!(t, Number | Integer),
        Kind::PValue => matches!(t, Number | Text),
    }
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Label => "a TEXT or ENUM field",
        Kind::Count => "an INTEGER or NUMBER field",
        Kind::Number => "a NUMBER or INTEGER field",
        Kind::PValue => "a NUMBER or TEXT field",
        Kind::Level => "a NUMBER field or a constant level in (0, 1)",
    }
}

/// The roles a form maps by its field names: under the ARRAY (or the top
/// level) that holds the most of them.
pub fn auto(form: &[Field]) -> Roles {
    let paths = fields::by_path(form);
    let mut best = Roles::default();
    let mut parents: Vec<String> = paths.iter().map(|(p, _)| parent_of(p)).collect();
    parents.sort();
    parents.dedup();
    for parent in parents {
        let mut roles = Roles::default();
        for (role, kind) in all() {
            let want = format!(
                "{parent}{}{}",
                if parent.is_empty() { "" } else { "." },
                snake(&role)
            );
            if let Some((p, f)) = paths.iter().find(|(p, _)| *p == want)
                && accepts(kind, f.field_type)
            {
                roles.map.insert(role, Target::Field(p.clone()));
            }
        }
        if roles.map.len() > best.map.len() {
            best = roles;
        }
    }
    best
}

/// The roles `given` (role → path, constant, or null to drop a role)
/// over the form's own mapping, checked against the form: BAD_USER_INPUT
/// for an unknown role or field, a field of the wrong type, a level
/// outside (0, 1), or roles under different arrays.
pub fn configure(form: &[Field], given: &Value) -> ServiceResult<Roles> {
    let Value::Object(given) = given else {
        return Err(ServiceError::bad_input(
            "roles must be a JSON object of role → field path",
        ));
    };
    let paths = fields::by_path(form);
    let mut roles = auto(form);
    for (role, v) in given {
        let kind = kind_of(role).ok_or_else(|| {
            ServiceError::bad_input(format!(
                "unknown analysis role {role:?}; the roles are {}",
                all()
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        match v {
            Value::Null => {
                roles.map.remove(role);
            }
            Value::Number(n) if kind == Kind::Level => {
                let level = n.as_f64().unwrap_or(f64::NAN);
                if !(level > 0.0 && level < 1.0) {
                    return Err(ServiceError::bad_input(format!(
                        "role {role}: a CI level must lie in (0, 1), not {level}"
                    )));
                }
                roles.map.insert(role.clone(), Target::Constant(level));
            }
            Value::String(path) => {
                let path = path.trim();
                let (_, f) = paths.iter().find(|(p, _)| p == path).ok_or_else(|| {
                    ServiceError::bad_input(format!("role {role}: the form has no field {path:?}"))
                })?;
                if !accepts(kind, f.field_type) {
                    return Err(ServiceError::bad_input(format!(
                        "role {role} takes {}; {path} is {:?}",
                        kind_words(kind),
                        f.field_type
                    )));
                }
                roles
                    .map
                    .insert(role.clone(), Target::Field(path.to_owned()));
            }
            other => {
                return Err(ServiceError::bad_input(format!(
                    "role {role} takes {}, not {other}",
                    kind_words(kind)
                )));
            }
        }
    }
    let mut parents: Vec<String> = roles
        .map
        .values()
        .filter_map(|t| match t {
            Target::Field(p) => Some(parent_of(p)),
            Target::Constant(_) => None,
        })
        .collect();
    parents.sort();
    parents.dedup();
    if parents.len() > 1 {
        return Err(ServiceError::bad_input(format!(
            "the roles sit under different lists ({}); one comparison is one item of one list",
            parents
                .iter()
                .map(|p| if p.is_empty() {
                    "the top level"
                } else {
                    p.as_str()
                })
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(roles)
}

/// Stored roles (as [`Roles::to_json`] wrote them).
pub fn from_stored(v: &Value) -> Roles {
    let mut roles = Roles::default();
    if let Value::Object(m) = v {
        for (k, t) in m {
            let target = match t {
                Value::String(p) => Target::Field(p.clone()),
                Value::Number(n) => Target::Constant(n.as_f64().unwrap_or(0.95)),
                _ => continue,
            };
            roles.map.insert(k.clone(), target);
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_form() -> Vec<Field> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/corpus/forms/rct_outcomes.form.json"
        );
        let text = std::fs::read_to_string(path).expect("the corpus form beside the checkout");
        let v: Value = serde_json::from_str(&text).expect("json");
        serde_json::from_value(v["fields"].clone()).expect("fields")
    }

    #[test]
    fn the_corpus_form_maps_by_its_names() {
        let roles = auto(&corpus_form());
        assert_eq!(roles.map.len(), 12, "{roles:?}");
        assert_eq!(
            roles.get("interventionStandardDeviation"),
            Some(&Target::Field(
                "outcomes[].intervention_standard_deviation".into()
            ))
        );
        assert_eq!(
            roles.get("outcomeType"),
            Some(&Target::Field("outcomes[].outcome_type".into()))
        );
        assert_eq!(roles.parent().as_deref(), Some("outcomes[]"));
        assert_eq!(
            configure(&corpus_form(), &serde_json::json!({})).unwrap(),
            roles
        );
    }

    #[test]
    fn wrong_roles_are_bad_input() {
        let form = corpus_form();
        for bad in [
            serde_json::json!({"interventionMean": "outcomes[].outcome"}),
            serde_json::json!({"nonsense": "outcomes[].outcome"}),
            serde_json::json!({"interventionMean": "outcomes[].missing"}),
            serde_json::json!({"interventionCiLevel": 1.5}),
            serde_json::json!({"interventionCiLevel": 0}),
            serde_json::json!({"outcome": "outcomes"}),
            serde_json::json!([]),
        ] {
            let e = configure(&form, &bad).unwrap_err();
            assert_eq!(e.code(), "BAD_USER_INPUT", "{bad}: {e}");
        }
        let r = configure(
            &form,
            &serde_json::json!({"interventionCiLevel": 0.9, "comparatorMean": null}),
        )
        .unwrap();
        assert_eq!(r.get("interventionCiLevel"), Some(&Target::Constant(0.9)));
        assert!(r.get("comparatorMean").is_none());
        assert_eq!(from_stored(&r.to_json()), r);
    }
}
