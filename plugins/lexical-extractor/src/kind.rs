//! An outcome-type field (an ENUM of a binary option and a continuous one:
//! `binary`/`dichotomous` vs `continuous`), read from how the paper reports
//! the outcome rather than from where the option words occur: papers
//! almost never call an outcome "binary" or "continuous". Counts with
//! percentages, or an outcome named as events (incidence, complications,
//! deaths), make it binary; means with SDs, or nothing that says events,
//! continuous (a measured outcome is the more common kind in trials).

use crate::rank::{stem, terms};

/// Option words of the binary kind.
const BINARY_OPTIONS: &[&str] = &["binary", "dichotomous", "categorical", "event"];
/// Option words of the continuous kind.
const CONTINUOUS_OPTIONS: &[&str] = &["continuous", "numeric", "numerical"];

/// Words that name an outcome as events.
const EVENT_WORDS: &[&str] = &[
    "incidence",
    "events",
    "event",
    "rate",
    "rates",
    "proportion",
    "percentage",
    "risk",
    "adverse",
    "complication",
    "complications",
    "mortality",
    "death",
    "deaths",
    "died",
    "survival",
    "visits",
    "admission",
    "admissions",
    "readmission",
    "failure",
    "success",
    "occurrence",
    "infection",
    "infections",
    "relapse",
    "recurrence",
    "remission",
    "responders",
    "cure",
    "free",
];

/// Words of a measured outcome.
const MEASURE_WORDS: &[&str] = &[
    "mean",
    "score",
    "scores",
    "level",
    "levels",
    "time",
    "duration",
    "length",
    "days",
    "pressure",
    "concentration",
    "change",
    "scale",
    "index",
    "strength",
];

/// Whether `term` is a word of the field's own question ("binary",
/// "continuous", "outcome") rather than of the outcome it asks about.
pub fn is_kind_word(term: &str) -> bool {
    BINARY_OPTIONS
        .iter()
        .chain(CONTINUOUS_OPTIONS)
        .chain(&["events", "mean", "sd", "outcome", "whether", "type", "kind"])
        .any(|w| stem(w) == term)
}

/// Which option is which, when the field is an outcome-type ENUM.
pub fn options(options: &[String]) -> Option<(String, String)> {
    if options.len() != 2 {
        return None;
    }
    let is = |o: &str, words: &[&str]| {
        let lower = o.to_lowercase();
        words.iter().any(|w| lower.contains(w))
    };
    match (
        options.iter().find(|o| is(o, BINARY_OPTIONS)),
        options.iter().find(|o| is(o, CONTINUOUS_OPTIONS)),
    ) {
        (Some(b), Some(c)) if b != c => Some((b.clone(), c.clone())),
        _ => None,
    }
}

/// The kind a table row's cells report: Some(true) for counts with
/// percentages (`12 (24%)`, `12/50`), Some(false) for means with SDs
/// (`4.3 ± 1.0`, `4.3 (1.0)` with decimals), None when they say neither.
pub fn of_cells(cells: &[String]) -> Option<bool> {
    let (mut counts, mut means) = (0, 0);
    for c in cells {
        let c = c.trim();
        if c.contains('±') || c.to_lowercase().contains("sd") {
            means += 1;
        } else if c.contains('%') || is_fraction(c) {
            counts += 1;
        } else if let Some((a, b)) = c.split_once('(') {
            // `4.3 (1.0)` is a mean and SD; `12 (24)` a count and percent.
            let a = a.trim();
            let b = b.trim_end_matches(')').trim();
            if a.contains('.') || b.contains('.') {
                means += 1;
            } else if !a.is_empty() && a.chars().all(|ch| ch.is_ascii_digit()) {
                counts += 1;
            }
        }
    }
    match counts.cmp(&means) {
        std::cmp::Ordering::Greater => Some(true),
        std::cmp::Ordering::Less => Some(false),
        std::cmp::Ordering::Equal => None,
    }
}

/// `12/50`.
fn is_fraction(c: &str) -> bool {
    c.split_once('/').is_some_and(|(a, b)| {
        let (a, b) = (a.trim(), b.trim());
        !a.is_empty()
            && !b.is_empty()
            && a.chars().all(|ch| ch.is_ascii_digit())
            && b.chars()
                .take_while(|ch| !ch.is_whitespace())
                .all(|ch| ch.is_ascii_digit())
    })
}

/// The kind the outcome's own words suggest: Some(true) for events,
/// Some(false) for a measure, None when they say neither.
pub fn of_words(subject: &[String]) -> Option<bool> {
    let has = |words: &[&str]| words.iter().map(|w| stem(w)).any(|w| subject.contains(&w));
    match (has(EVENT_WORDS), has(MEASURE_WORDS)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Binary (true) or continuous (false): the outcome's words first, then
/// the cells of its table row, then the passages that mention it; else
/// continuous.
pub fn decide(subject: &[String], row: Option<&[String]>, passages: &[&str]) -> bool {
    if let Some(k) = of_words(subject) {
        return k;
    }
    if let Some(k) = row.and_then(of_cells) {
        return k;
    }
    let (mut counts, mut means) = (0, 0);
    for p in passages {
        let t = terms(p);
        if p.contains('±') || t.iter().any(|w| w == "mean" || w == "sd") {
            means += 1;
        }
        if p.contains('%') || t.iter().any(|w| w == "event" || w == "incidence") {
            counts += 1;
        }
    }
    counts > means
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_options_are_told_apart() {
        assert_eq!(
            options(&s(&["binary", "continuous"])),
            Some(("binary".into(), "continuous".into()))
        );
        assert_eq!(
            options(&s(&["Continuous", "Dichotomous"])),
            Some(("Dichotomous".into(), "Continuous".into()))
        );
        assert_eq!(options(&s(&["parallel", "crossover"])), None);
        assert_eq!(options(&s(&["binary", "continuous", "ordinal"])), None);
    }

    #[test]
    fn cells_say_counts_or_means() {
        assert_eq!(of_cells(&s(&["12 (24%)", "15 (30%)"])), Some(true));
        assert_eq!(of_cells(&s(&["12/50", "15/48"])), Some(true));
        assert_eq!(of_cells(&s(&["4.3 ± 1.0", "5.1 ± 1.2"])), Some(false));
        assert_eq!(of_cells(&s(&["4.3 (1.0)", "5.1 (1.2)"])), Some(false));
        assert_eq!(of_cells(&s(&["12 (24)", "15 (30)", "0.04"])), Some(true));
        assert_eq!(of_cells(&s(&["0.04", "NS"])), None);
    }

    #[test]
    fn words_then_cells_then_passages() {
        assert!(decide(
            &terms("the incidence of postoperative nausea"),
            None,
            &[]
        ));
        assert!(!decide(&terms("Operative time"), None, &[]));
        assert!(decide(&terms("Stone-free rate"), None, &[]));
        let row = s(&["7 (25%)", "3 (12%)"]);
        assert!(decide(&terms("Nausea"), Some(&row), &[]));
        let row = s(&["6.1 ± 0.5", "6.4 ± 0.7"]);
        assert!(!decide(&terms("Nausea"), Some(&row), &[]));
        assert!(decide(
            &terms("Hypoglycemia"),
            None,
            &["Hypoglycemia occurred in 4 (8%) patients."]
        ));
        assert!(!decide(
            &terms("Wheeze"),
            None,
            &["Wheeze (mean ± SD) fell by 1.4 days."]
        ));
        assert!(
            !decide(&terms("Knowledge"), None, &[]),
            "nothing says events: continuous"
        );
    }
}
