//! Typed values read from a passage, heuristically.

use serde_json::{Value, json};

use crate::Field;
use crate::rank::{stem, terms};

/// A number in a passage, with what surrounds it.
#[derive(Debug, Clone, PartialEq)]
struct Num {
    value: f64,
    fraction: bool,
    percent: bool,
    /// Index among the passage's words (numbers count as words).
    word: usize,
    /// The word right after it (unit candidates), lowercased.
    next: String,
    /// First of a `mean ± sd` / `mean (sd)` pair.
    pair_first: bool,
    /// Second of such a pair (after `±` or in parentheses after a number).
    pair_second: bool,
    /// Marked as a count of people: `n = 24`, `24 patients`.
    count_marked: bool,
    /// After `n =` / `N =`.
    n_marked: bool,
    /// Followed by a percentage or `/ total`: `11 (22%)`, `11/49`.
    events_marked: bool,
}

/// A value read from a passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The typed value.
    pub value: Value,
    /// Whether it sits the way such values are written (`n = 24` for a
    /// count, `mean ± sd` for a spread); a passage with a typical reading
    /// beats a better-ranked one without.
    pub typical: bool,
}

/// Reads a value of `f`'s type from `passage`; None when it cannot.
/// `about` is the field's description line; `query` the terms that place
/// the value (numbers nearest to them win).
pub fn read(
    f: &Field,
    passage: &str,
    about: &str,
    name_terms: &[String],
    query: &[String],
) -> Option<Reading> {
    let plain = |v: Option<Value>| {
        v.map(|value| Reading {
            value,
            typical: true,
        })
    };
    match f.field_type.as_str() {
        "INTEGER" => number(f, passage, about, query, false),
        "NUMBER" => number(f, passage, about, query, true),
        "DATE" => plain(date(passage)),
        "ENUM" => plain(option(f, passage)),
        "BOOLEAN" => plain(boolean(passage, name_terms)),
        "TEXT" => plain(Some(json!(passage))),
        _ => None,
    }
}

/// Extra ranking terms for where a field's kind of number is reported:
/// counts of people sit with randomisation and analysis.
pub fn expansion(f: &Field, about: &str) -> &'static str {
    match (f.field_type.as_str(), role(f, about)) {
        ("INTEGER", Role::Count) => "randomized assigned allocated enrolled analysed analyzed n",
        _ => "",
    }
}

fn words(passage: &str) -> Vec<&str> {
    passage
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';' | ':' | '=')
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A token of a passage.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num {
        value: f64,
        fraction: bool,
        percent: bool,
    },
    Sym(char),
}

/// Splits `passage` into words, numbers (with a sign, a decimal point `.`
/// or `·`, thousands separators `1,204`, a trailing `%`) and symbols.
fn tokens(passage: &str) -> Vec<Tok> {
    let cs: Vec<char> = passage.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c == '+' && matches!(cs.get(i + 1..i + 3), Some(['/', '-' | '−' | '–'])) {
            out.push(Tok::Sym('±'));
            i += 3;
            continue;
        }
        let digit_at = |j: usize| cs.get(j).is_some_and(char::is_ascii_digit);
        let signed = matches!(c, '-' | '−' | '–')
            && digit_at(i + 1)
            && (i == 0 || !cs[i - 1].is_alphanumeric());
        if c.is_ascii_digit() || signed {
            let mut s = String::new();
            if signed {
                s.push('-');
                i += 1;
            }
            let mut fraction = false;
            while i < cs.len() {
                let ch = cs[i];
                if ch.is_ascii_digit() {
                    s.push(ch);
                } else if (ch == '.' || ch == '·') && !fraction && digit_at(i + 1) {
                    fraction = true;
                    s.push('.');
                } else if ch == ','
                    && !fraction
                    && (1..=3).all(|k| digit_at(i + k))
                    && !digit_at(i + 4)
                {
                    // A thousands separator; `1, 2` and `1,23` are lists.
                } else {
                    break;
                }
                i += 1;
            }
            let percent = cs.get(i) == Some(&'%');
            if percent {
                i += 1;
            }
            if let Ok(value) = s.parse::<f64>() {
                out.push(Tok::Num {
                    value,
                    fraction,
                    percent,
                });
            }
        } else if c.is_alphanumeric() {
            let mut w = String::new();
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '-') {
                w.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(w.trim_end_matches('-').to_lowercase()));
        } else {
            if !c.is_whitespace() {
                out.push(Tok::Sym(c));
            }
            i += 1;
        }
    }
    out
}

/// Words that make a number a count of people.
const PEOPLE: [&str; 10] = [
    "patients",
    "participants",
    "subjects",
    "children",
    "students",
    "women",
    "men",
    "adults",
    "infants",
    "individuals",
];

/// Each token's position counted in words and numbers (a symbol shares
/// the position of what follows it): the distances between a number and
/// a field's terms are measured in these.
fn word_positions(toks: &[Tok]) -> Vec<usize> {
    let mut word = 0;
    toks.iter()
        .map(|t| {
            let at = word;
            if !matches!(t, Tok::Sym(_)) {
                word += 1;
            }
            at
        })
        .collect()
}

fn numbers(toks: &[Tok]) -> Vec<Num> {
    let word_at = word_positions(toks);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Num {
            value,
            fraction,
            percent,
        } = *t
        else {
            continue;
        };
        let at = |k: isize| i.checked_add_signed(k).and_then(|j| toks.get(j)).cloned();
        let is_num = |t: Option<Tok>| matches!(t, Some(Tok::Num { percent: false, .. }));
        let sym = |t: Option<Tok>, cs: &[char]| matches!(t, Some(Tok::Sym(c)) if cs.contains(&c));
        let word_is = |t: Option<Tok>, ws: &[&str]| matches!(t, Some(Tok::Word(w)) if ws.contains(&w.as_str()));
        let pm = ['±'];
        let pair_first = !percent
            && ((sym(at(1), &pm) && is_num(at(2)))
                || (sym(at(1), &['(', '[']) && is_num(at(2)) && sym(at(3), &[')', ']', ','])));
        let pair_second = !percent
            && ((sym(at(-1), &pm) && is_num(at(-2)))
                || (sym(at(-1), &['(', '[']) && is_num(at(-2))));
        let n_marked = !fraction
            && !percent
            && (word_is(at(-1), &["n"]) || (sym(at(-1), &['=']) && word_is(at(-2), &["n"])));
        let count_marked = n_marked || (!fraction && !percent && word_is(at(1), &PEOPLE));
        let events_marked = !fraction
            && !percent
            && ((sym(at(1), &['(']) && matches!(at(2), Some(Tok::Num { percent: true, .. })))
                || (sym(at(1), &['/']) && is_num(at(2))));
        let next = match at(1) {
            Some(Tok::Word(w)) => w,
            _ => String::new(),
        };
        out.push(Num {
            value,
            fraction,
            percent,
            word: word_at[i],
            next,
            pair_first,
            pair_second,
            count_marked,
            n_marked,
            events_marked,
        });
    }
    out
}

/// What a numeric field asks for, from its name and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A standard deviation: the second of a `mean ± sd` pair.
    Spread,
    /// A mean: the first of a pair.
    Centre,
    /// Participants with an event: `11 (22%)`, `11/49`.
    Events,
    /// A number of people: `n = 24`, `24 patients`.
    Count,
    /// Anything else.
    Plain,
}

/// Whether `f` asks for a number of people (a group size).
pub fn counts_people(f: &Field, about: &str) -> bool {
    role(f, about) == Role::Count
}

/// The field's name says what it asks for when it can ("comparator_sd");
/// the description only otherwise, since it also names the subject, which
/// may hold any of these words ("mean arterial pressure").
fn role(f: &Field, about: &str) -> Role {
    match role_in(&f.name.replace('_', " ")) {
        Role::Plain => role_in(about),
        named => named,
    }
}

fn role_in(text: &str) -> Role {
    let t = format!(" {text} ").to_lowercase();
    let has = |w: &str| {
        t.contains(&format!(" {w} "))
            || t.contains(&format!(" {w},"))
            || t.contains(&format!("({w})"))
    };
    if has("sd") || t.contains("standard deviation") {
        Role::Spread
    } else if has("mean") || has("average") {
        Role::Centre
    } else if has("events") || has("event") {
        Role::Events
    } else if has("size")
        || has("participants")
        || has("patients")
        || t.contains("number of")
        || has("n")
    {
        Role::Count
    } else {
        Role::Plain
    }
}

fn number(f: &Field, passage: &str, about: &str, query: &[String], real: bool) -> Option<Reading> {
    let toks = tokens(passage);
    let word_at = word_positions(&toks);
    let ws_hits: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t, Tok::Word(w) if terms(w).iter().any(|t| query.contains(t))))
        .map(|(i, _)| word_at[i])
        .collect();
    let unit = f.unit.as_deref().map(|u| stem(&u.to_lowercase()));
    let wants_percent = f.unit.as_deref() == Some("%");
    let about_years = f.name.contains("year");
    let role = role(f, about);
    let candidates: Vec<Num> = numbers(&toks)
        .into_iter()
        .filter(|n| real || !n.fraction)
        .filter(|n| n.percent == wants_percent || (real && !wants_percent && !n.percent))
        .filter(|n| about_years || !(1900.0..=2100.0).contains(&n.value) || n.fraction)
        .filter(|n| real || n.value >= 0.0)
        .collect();
    let fit = |n: &Num| match role {
        Role::Spread => u8::from(!n.pair_second),
        Role::Centre => {
            if n.pair_first {
                0
            } else if n.fraction && !n.pair_second {
                1
            } else {
                2
            }
        }
        Role::Events => u8::from(!n.events_marked),
        Role::Count => u8::from(!n.count_marked),
        Role::Plain => 0,
    };
    let best = candidates.iter().min_by_key(|n| {
        let unit_bonus = match &unit {
            Some(u) if stem(n.next.trim_matches(|c: char| !c.is_alphanumeric())) == *u => 0,
            _ => 1,
        };
        // `Label (n = 24)`: the label precedes a marked count, so terms
        // after it are further away.
        let distance = ws_hits
            .iter()
            .map(|&h| {
                let d = h.abs_diff(n.word);
                if n.n_marked && h > n.word { 3 * d } else { d }
            })
            .min()
            .unwrap_or(usize::MAX / 2);
        (fit(n), unit_bonus, distance, n.word)
    })?;
    Some(Reading {
        value: if real {
            json!(best.value)
        } else {
            json!(best.value as i64)
        },
        typical: fit(best) == 0,
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn date(passage: &str) -> Option<Value> {
    let ws: Vec<String> = words(passage)
        .iter()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .collect();
    for (i, w) in ws.iter().enumerate() {
        // ISO date.
        let parts: Vec<&str> = w.split('-').collect();
        if parts.len() == 3
            && parts[0].len() == 4
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        {
            return Some(json!(w));
        }
        let month = MONTHS.iter().position(|m| {
            w == m || (w.len() >= 3 && m.starts_with(w.as_str()) && w.len() <= m.len())
        });
        if let Some(m) = month
            && let Some(year) = ws.get(i + 1).filter(|y| is_year(y))
        {
            let day = i
                .checked_sub(1)
                .and_then(|j| ws.get(j))
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|d| (1..=31).contains(d));
            return Some(match day {
                Some(d) => json!(format!("{year}-{:02}-{d:02}", m + 1)),
                None => json!(format!("{year}-{:02}", m + 1)),
            });
        }
    }
    ws.iter().find(|w| is_year(w)).map(|y| json!(y))
}

fn is_year(w: &str) -> bool {
    w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y))
}

fn normalize(s: &str) -> String {
    let lower = s.to_lowercase().replace(['-', '_', '/'], " ");
    let words: Vec<&str> = lower.split_whitespace().collect();
    format!(" {} ", words.join(" "))
}

fn option(f: &Field, passage: &str) -> Option<Value> {
    let text = normalize(&passage.replace(|c: char| c.is_ascii_punctuation() && c != '-', " "));
    let mentioned: Vec<&String> = f
        .options
        .iter()
        .filter(|o| text.contains(&normalize(o)))
        .collect();
    if mentioned.is_empty() {
        return None;
    }
    if f.multiple {
        Some(json!(mentioned))
    } else {
        // The first mentioned in the text.
        mentioned
            .iter()
            .min_by_key(|o| text.find(&normalize(o)).unwrap_or(usize::MAX))
            .map(|o| json!(o))
    }
}

fn boolean(passage: &str, name_terms: &[String]) -> Option<Value> {
    let t = terms(passage);
    if !name_terms.iter().any(|n| t.contains(n)) {
        return None;
    }
    let lower = format!(" {} ", passage.to_lowercase());
    let negated = [" no ", " not ", " without ", " none ", " neither "]
        .iter()
        .any(|n| lower.contains(n));
    Some(json!(!negated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(t: &str, unit: Option<&str>, options: &[&str]) -> Field {
        Field {
            path: "x".into(),
            name: "x".into(),
            field_type: t.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
            multiple: false,
            unit: unit.map(str::to_owned),
            required: false,
        }
    }

    #[test]
    fn numbers_prefer_the_unit_and_skip_years_and_percentages() {
        let f = field("NUMBER", Some("mmHg"), &[]);
        let v = read(
            &f,
            "In 2016, 45% had a mean of 12·4 mmHg (SD 3.1)",
            "",
            &[],
            &["mean".into()],
        );
        assert_eq!(v.map(|r| r.value), Some(json!(12.4)));
        let f = field("INTEGER", None, &[]);
        let v = read(
            &f,
            "Between 2015 and 2017, 1,204 patients (48%) were randomised",
            "",
            &[],
            &["random".into()],
        );
        // "1,204" splits at the comma: 204 would be wrong; the words are "1" and "204".
        assert!(v.is_some());
    }

    #[test]
    fn dates_and_options() {
        assert_eq!(
            date("from 12 March 2016 to May 2017"),
            Some(json!("2016-03-12"))
        );
        assert_eq!(date("enrolled in Sept 2019"), Some(json!("2019-09")));
        assert_eq!(date("registered 2020-02-01"), Some(json!("2020-02-01")));
        let f = field("ENUM", None, &["open-label", "double-blind"]);
        assert_eq!(
            read(&f, "A double blind trial.", "", &[], &[]).map(|r| r.value),
            Some(json!("double-blind"))
        );
        assert_eq!(read(&f, "No masking details.", "", &[], &[]), None);
    }

    fn named(name: &str, t: &str) -> Field {
        Field {
            name: name.into(),
            ..field(t, None, &[])
        }
    }

    #[test]
    fn numbers_keep_signs_thousands_and_pairs() {
        let toks = tokens("−1.3 (0.5) vs 6,032.37 ± 1359.15; 12 +/- 3; pages 2441–51");
        let nums: Vec<f64> = toks
            .iter()
            .filter_map(|t| match t {
                Tok::Num { value, .. } => Some(*value),
                _ => None,
            })
            .collect();
        // The en dash between digits is a range, not a sign.
        assert_eq!(
            nums,
            vec![-1.3, 0.5, 6032.37, 1359.15, 12.0, 3.0, 2441.0, 51.0]
        );
        let ns = numbers(&tokens("10.0 ± 4.6 g in the RMD group"));
        assert!(ns[0].pair_first && ns[1].pair_second);
    }

    #[test]
    fn roles_pick_the_number_written_their_way() {
        let p = "Fibre intake was 10.0 ± 4.6 g in the RMD group (n = 33) and 11 (22%) had events";
        let q = ["rmd".to_string()];
        let get = |f: &Field, about: &str| read(f, p, about, &[], &q).map(|r| r.value);
        assert_eq!(
            get(&named("rmd_sd", "NUMBER"), "standard deviation"),
            Some(json!(4.6))
        );
        assert_eq!(get(&named("rmd_mean", "NUMBER"), ""), Some(json!(10.0)));
        assert_eq!(
            get(&named("rmd_group_size", "INTEGER"), ""),
            Some(json!(33))
        );
        assert_eq!(get(&named("rmd_events", "INTEGER"), ""), Some(json!(11)));
        // Nothing written the way a count is: a reading, but not a typical one.
        let r = read(&named("group_size", "INTEGER"), "at 12 weeks", "", &[], &[]);
        assert_eq!(r.map(|r| r.typical), Some(false));
    }
}
