//! Form fields: typed, nested, validated with errors that name the field.

use serde::{Deserialize, Serialize};

use crate::validate::Lines;

/// Deepest nesting of OBJECT/ARRAY fields (arms → outcomes → timepoints).
pub const MAX_DEPTH: usize = 4;
/// Most fields in one form, counting nested ones.
pub const MAX_FIELDS: usize = 500;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "FieldType")]
pub enum FieldType {
    /// Free text.
    Text,
    /// A real number (with a unit, if any).
    Number,
    /// A whole number (counts, group sizes).
    Integer,
    /// Yes or no.
    Boolean,
    /// A calendar date (YYYY-MM-DD, or YYYY-MM / YYYY when that is all there is).
    Date,
    /// One of `options` (or several, with `multiple`).
    Enum,
    /// A group of sub-fields, once.
    Object,
    /// A list of groups of sub-fields (e.g. arms).
    Array,
}

impl FieldType {
    /// OBJECT or ARRAY.
    pub fn is_composite(self) -> bool {
        matches!(self, Self::Object | Self::Array)
    }
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Name, unique among its siblings: letters, digits, `_`.
    pub name: String,
    /// What to extract, for people and for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Allowed values of an ENUM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// An ENUM that takes several options.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiple: bool,
    /// Where to look, how to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<String>,
    /// Unit of a NUMBER or INTEGER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Must be reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Sub-fields of an OBJECT or ARRAY.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
}

/// Why a form's fields are refused; the message names the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

fn trimmed(
    s: &Option<String>,
    max: usize,
    what: &str,
    path: &str,
    lines: crate::validate::Lines,
) -> Result<Option<String>, FieldError> {
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > max => Err(FieldError(format!(
            "{path}: {what} is longer than {max} characters"
        ))),
        Some(t) => {
            crate::validate::text(t, &format!("field `{path}`: {what}"), lines)
                .map_err(|e| FieldError(e.to_string()))?;
            Ok(Some(t.to_owned()))
        }
    }
}

/// Checks and normalizes (trims) `fields`.
pub fn validate(fields: &[Field]) -> Result<Vec<Field>, FieldError> {
    if fields.is_empty() {
        return Err(FieldError("a form needs at least one field".into()));
    }
    let mut count = 0;
    let out = validate_level(fields, "", 1, &mut count)?;
    if count > MAX_FIELDS {
        return Err(FieldError(format!(
            "the form has {count} fields; at most {MAX_FIELDS} are allowed"
        )));
    }
    Ok(out)
}

fn validate_level(
    fields: &[Field],
    prefix: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Field>, FieldError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        *count += 1;
        let name = f.name.trim();
        let path = format!("{prefix}{name}");
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(FieldError(format!(
                "field `{path}`: a name is 1-64 letters, digits or _, not starting with a digit"
            )));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(FieldError(format!("field `{path}` appears twice")));
        }
        let mut g = Field {
            name: name.to_owned(),
            description: trimmed(&f.description, 2000, "the description", &path, Lines::Many)?,
            field_type: f.field_type,
            options: Vec::new(),
            multiple: f.multiple,
            hints: trimmed(&f.hints, 2000, "the hints", &path, Lines::Many)?,
            unit: trimmed(&f.unit, 50, "the unit", &path, Lines::One)?,
            required: f.required,
            fields: Vec::new(),
        };
        match f.field_type {
            FieldType::Enum => {
                let mut opts = Vec::new();
                for o in &f.options {
                    let o = o.trim();
                    if o.is_empty() || o.chars().count() > 200 {
                        return Err(FieldError(format!(
                            "field `{path}`: options are 1-200 characters"
                        )));
                    }
                    crate::validate::text(o, &format!("field `{path}`: an option"), Lines::One)
                        .map_err(|e| FieldError(e.to_string()))?;
                    if opts.iter().any(|x: &String| x.eq_ignore_ascii_case(o)) {
                        return Err(FieldError(format!(
                            "field `{path}`: option `{o}` appears twice"
                        )));
                    }
                    opts.push(o.to_owned());
                }
                if opts.is_empty() {
                    return Err(FieldError(format!("field `{path}`: an ENUM needs options")));
                }
                g.options = opts;
            }
            _ if !f.options.is_empty() => {
                return Err(FieldError(format!(
                    "field `{path}`: only an ENUM has options"
                )));
            }
            _ if f.multiple => {
                return Err(FieldError(format!(
                    "field `{path}`: only an ENUM can be `multiple`"
                )));
            }
            _ => {}
        }
        if g.unit.is_some() && !matches!(f.field_type, FieldType::Number | FieldType::Integer) {
            return Err(FieldError(format!(
                "field `{path}`: only a NUMBER or INTEGER has a unit"
            )));
        }
        if f.field_type.is_composite() {
            if f.fields.is_empty() {
                return Err(FieldError(format!(
                    "field `{path}`: an OBJECT or ARRAY needs sub-fields in `fields`"
                )));
            }
            if depth >= MAX_DEPTH {
                return Err(FieldError(format!(
                    "field `{path}`: nesting deeper than {MAX_DEPTH} levels"
                )));
            }
            let sub = if f.field_type == FieldType::Array {
                format!("{path}[].")
            } else {
                format!("{path}.")
            };
            g.fields = validate_level(&f.fields, &sub, depth + 1, count)?;
        } else if !f.fields.is_empty() {
            return Err(FieldError(format!(
                "field `{path}`: only an OBJECT or ARRAY has sub-fields"
            )));
        }
        out.push(g);
    }
    Ok(out)
}

/// Every field by its template path (`arms[].outcomes[].n`), in form order.
pub fn by_path(fields: &[Field]) -> Vec<(String, &Field)> {
    fn walk<'a>(fields: &'a [Field], prefix: &str, out: &mut Vec<(String, &'a Field)>) {
        for f in fields {
            let path = format!("{prefix}{}", f.name);
            out.push((path.clone(), f));
            match f.field_type {
                FieldType::Array => walk(&f.fields, &format!("{path}[]."), out),
                FieldType::Object => walk(&f.fields, &format!("{path}."), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(fields, "", &mut out);
    out
}

/// Longest concrete path, in bytes.
pub const MAX_PATH: usize = 500;

/// The template of a concrete path people send (`arms[0].name` →
/// `arms[].name`), checked for form: dot-separated field names (letters,
/// digits, `_`, not starting with a digit), each followed by at most one
/// list index, a whole number below `max_items` written plainly (`arms[0]`,
/// not `arms[-1]`, `arms[]`, `arms[01]` or `arms[<b>1</b>]`). Whether the
/// names are the form's is for the caller.
pub fn concrete_template(path: &str, max_items: usize) -> Result<String, String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("a path has 1 to {MAX_PATH} characters"));
    }
    let shown: String = path.chars().take(80).collect();
    let mut template = String::with_capacity(path.len());
    for (i, segment) in path.split('.').enumerate() {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => {
                let index = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("`{shown}`: a list index is written `name[0]`"))?;
                (name, Some(index))
            }
            None => (segment, None),
        };
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(format!("`{shown}` is not a path of field names"));
        }
        if i > 0 {
            template.push('.');
        }
        template.push_str(name);
        if let Some(index) = index {
            let plain = !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit())
                && (index == "0" || !index.starts_with('0'));
            let n = index
                .parse::<usize>()
                .ok()
                .filter(|n| plain && *n < max_items);
            if n.is_none() {
                return Err(format!(
                    "`{shown}`: a list index is a whole number from 0 to {}",
                    max_items.saturating_sub(1)
                ));
            }
            template.push_str("[]");
        }
    }
    Ok(template)
}

/// The template of a concrete path: list indices dropped (`arms[0].n` → `arms[].n`).
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, t: FieldType) -> Field {
        Field {
            name: name.into(),
            description: None,
            field_type: t,
            options: vec![],
            multiple: false,
            hints: None,
            unit: None,
            required: false,
            fields: vec![],
        }
    }

    #[test]
    fn precise_errors() {
        let err = |fields: Vec<Field>| validate(&fields).unwrap_err().0;
        assert_eq!(err(vec![]), "a form needs at least one field");
        assert!(
            err(vec![f("a", FieldType::Text), f("A", FieldType::Text)])
                .contains("`A` appears twice")
        );
        assert!(err(vec![f("e", FieldType::Enum)]).contains("`e`: an ENUM needs options"));
        assert!(err(vec![f("arms", FieldType::Array)]).contains("needs sub-fields"));
        assert!(err(vec![f("1x", FieldType::Text)]).contains("not starting with a digit"));
        let mut t = f("t", FieldType::Text);
        t.unit = Some("mg".into());
        assert!(err(vec![t]).contains("only a NUMBER or INTEGER has a unit"));
        let mut deep = f("d4", FieldType::Text);
        for i in (1..=4).rev() {
            let mut o = f(&format!("d{i}"), FieldType::Object);
            o.fields = vec![deep];
            deep = o;
        }
        assert!(err(vec![deep]).contains("nesting deeper than 4"));
        let mut arms = f("arms", FieldType::Array);
        let mut outcomes = f("outcomes", FieldType::Array);
        outcomes.fields = vec![f("n", FieldType::Integer), f("n", FieldType::Integer)];
        arms.fields = vec![outcomes];
        assert!(err(vec![arms]).contains("`arms[].outcomes[].n` appears twice"));
    }

    #[test]
    fn templates_drop_indices() {
        assert_eq!(template("arms[12].outcomes[0].n"), "arms[].outcomes[].n");
        assert_eq!(template("sample_size"), "sample_size");
    }

    #[test]
    fn valid_forms_are_trimmed() {
        let mut e = f(" design ", FieldType::Enum);
        e.options = vec![" parallel ".into(), "crossover".into()];
        e.description = Some("  ".into());
        let v = validate(&[e]).unwrap();
        assert_eq!(v[0].name, "design");
        assert_eq!(v[0].options, vec!["parallel", "crossover"]);
        assert_eq!(v[0].description, None);
    }
}

/// Checks that `v` is a value of field `f`'s type: a string for TEXT, a
/// number for NUMBER, a whole number for INTEGER, true or false for
/// BOOLEAN, `YYYY`, `YYYY-MM` or `YYYY-MM-DD` for DATE, one of the options
/// for ENUM (a list of them with `multiple`). Null is "not reported" and
/// fits every type.
pub fn check_value(f: &Field, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let ok = match (f.field_type, v) {
        (_, Value::Null) => true,
        (FieldType::Text, Value::String(_)) => true,
        (FieldType::Number, Value::Number(_)) => true,
        (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Date, Value::String(s)) => is_date(s),
        (FieldType::Enum, Value::String(s)) if !f.multiple => f.options.contains(s),
        (FieldType::Enum, Value::Array(items)) if f.multiple => items.iter().all(|i| {
            i.as_str()
                .is_some_and(|s| f.options.contains(&s.to_owned()))
        }),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let expected = match f.field_type {
        FieldType::Text => "a string".to_owned(),
        FieldType::Number => "a number".to_owned(),
        FieldType::Integer => "a whole number".to_owned(),
        FieldType::Boolean => "true or false".to_owned(),
        FieldType::Date => "a date as YYYY, YYYY-MM or YYYY-MM-DD".to_owned(),
        FieldType::Enum if f.multiple => format!("a list of options among {:?}", f.options),
        FieldType::Enum => format!("one of {:?}", f.options),
        FieldType::Object | FieldType::Array => "a value of one of its sub-fields".to_owned(),
    };
    Err(format!("`{}` takes {expected}, not {v}", f.name))
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    let (month, day) = match parts.as_slice() {
        [y] => return num(y, 4),
        [y, m] => (num(y, 4).then_some(*m), None),
        [y, m, d] => (num(y, 4).then_some(*m), Some(*d)),
        _ => return false,
    };
    let Some(m) = month.filter(|m| num(m, 2)) else {
        return false;
    };
    let m: u32 = m.parse().unwrap_or(0);
    let day_ok = day.is_none_or(|d| num(d, 2) && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)));
    (1..=12).contains(&m) && day_ok
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn a_concrete_path_is_field_names_and_plain_indices_in_range() {
        assert_eq!(
            concrete_template("arms[0].outcomes[499].n", 500).as_deref(),
            Ok("arms[].outcomes[].n")
        );
        assert_eq!(
            concrete_template("sample_size", 500).as_deref(),
            Ok("sample_size")
        );
        for bad in [
            "",
            "arms[-1].name",
            "arms[].name",
            "arms[500].name",
            "arms[99999999999999999999999].name",
            "arms[01].name",
            "arms[+1].name",
            "arms[ 1].name",
            "arms[1]x.name",
            "arms[1][2].name",
            "arms[<b>1</b>].name",
            "<script>.name",
            "arms..name",
            "arms.",
            "1arms",
            "arms[0",
        ] {
            assert!(concrete_template(bad, 500).is_err(), "{bad:?} accepted");
        }
        assert!(concrete_template(&"a".repeat(MAX_PATH + 1), 500).is_err());
    }
}

#[cfg(test)]
mod value_tests {
    use serde_json::json;

    use super::*;

    fn field(t: FieldType, options: &[&str], multiple: bool) -> Field {
        Field {
            name: "f".into(),
            description: None,
            field_type: t,
            options: options.iter().map(|s| s.to_string()).collect(),
            multiple,
            hints: None,
            unit: None,
            required: false,
            fields: Vec::new(),
        }
    }

    #[test]
    fn values_are_checked_against_their_field_type() {
        let ok = [
            (field(FieldType::Text, &[], false), json!("x")),
            (field(FieldType::Number, &[], false), json!(1.5)),
            (field(FieldType::Integer, &[], false), json!(120)),
            (field(FieldType::Boolean, &[], false), json!(false)),
            (field(FieldType::Date, &[], false), json!("2016-03")),
            (field(FieldType::Date, &[], false), json!("2016-03-31")),
            (field(FieldType::Enum, &["a", "b"], false), json!("b")),
            (field(FieldType::Enum, &["a", "b"], true), json!(["a", "b"])),
            (field(FieldType::Integer, &[], false), json!(null)),
        ];
        for (f, v) in &ok {
            assert_eq!(check_value(f, v), Ok(()), "{v}");
        }
        let bad = [
            (field(FieldType::Text, &[], false), json!(1)),
            (field(FieldType::Integer, &[], false), json!(1.5)),
            (field(FieldType::Integer, &[], false), json!("120")),
            (field(FieldType::Boolean, &[], false), json!("yes")),
            (field(FieldType::Date, &[], false), json!("2016-13")),
            (field(FieldType::Date, &[], false), json!("March 2016")),
            (field(FieldType::Enum, &["a", "b"], false), json!("c")),
            (field(FieldType::Enum, &["a", "b"], true), json!("a")),
        ];
        for (f, v) in &bad {
            assert!(check_value(f, v).is_err(), "{v} accepted");
        }
        assert_eq!(
            check_value(&field(FieldType::Integer, &[], false), &json!("120")),
            Err("`f` takes a whole number, not \"120\"".into())
        );
    }
}
