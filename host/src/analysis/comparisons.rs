//! Comparisons from values: one per item of the roles' list in each
//! report, merged per study, each arm's numbers with where they came from
//! (EXTRACTED, REVIEWED, or DERIVED with method, formula and inputs), and
//! the effect size.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::derive::{self, DifferenceStat, FiveNumbers, Made};
use super::effect::{self, Continuous, Effect, EffectMeasure};
use super::roles::{ARMS, Roles, Target, parent_of};
use crate::extraction::pipeline::StoredEvidence;

/// Where a number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Origin {
    /// The extractor's value.
    Extracted,
    /// A person's value from review.
    Reviewed,
    /// Computed from other values.
    Derived,
}

/// A report (document) behind a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Document id.
    pub id: String,
    /// Its file name.
    pub filename: String,
}

/// The study a report belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRef {
    /// Study id (a document's own study has the document's id).
    pub id: String,
    /// Name.
    pub name: String,
}

/// One value of a report.
#[derive(Debug, Clone)]
pub struct InputCell {
    /// Concrete path, e.g. `outcomes[2].intervention_mean`.
    pub path: String,
    /// The value.
    pub value: Value,
    /// Extracted or reviewed.
    pub origin: Origin,
    /// Its evidence.
    pub evidence: Vec<StoredEvidence>,
}

/// One report's values, with its study.
#[derive(Debug, Clone)]
pub struct ReportValues {
    /// The report.
    pub report: Report,
    /// Its study.
    pub study: StudyRef,
    /// Its values.
    pub cells: Vec<InputCell>,
}

/// Binary or continuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum OutcomeType {
    /// Events out of a group.
    Binary,
    /// A measured quantity.
    Continuous,
}

/// Intervention or comparator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ArmRole {
    /// The intervention arm (arm 1 in escalc).
    Intervention,
    /// The comparator arm.
    Comparator,
}

/// Where one of an arm's numbers came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberOrigin {
    /// `events`, `groupSize`, `mean` or `standardDeviation`.
    pub quantity: &'static str,
    /// Its origin.
    pub origin: Origin,
    /// The field it was read from (none when derived).
    pub path: Option<String>,
}

/// A derived number: how, from what.
#[derive(Debug, Clone, PartialEq)]
pub struct Derivation {
    /// `mean` or `standardDeviation`.
    pub quantity: &'static str,
    /// The value.
    pub value: f64,
    /// The method, e.g. "SD from 95% CI (t, n < 60)".
    pub method: String,
    /// The formula with its numbers.
    pub formula: String,
    /// The inputs: `[{role, path, value, source, quote, page}]`.
    pub inputs: Value,
    /// Its warnings.
    pub warnings: Vec<String>,
}

/// One arm of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// Which arm.
    pub role: ArmRole,
    /// Events.
    pub events: Option<f64>,
    /// Group size.
    pub group_size: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Standard deviation.
    pub standard_deviation: Option<f64>,
    /// Where each number came from.
    pub origins: Vec<NumberOrigin>,
    /// The derived ones.
    pub derived: Vec<Derivation>,
}

/// One (study, outcome, intervention, comparator) comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The study.
    pub study: StudyRef,
    /// The reports its numbers came from (the first is the one used).
    pub reports: Vec<Report>,
    /// Outcome as named.
    pub outcome: String,
    /// Intervention arm as named.
    pub intervention: String,
    /// Comparator arm as named.
    pub comparator: String,
    /// Binary or continuous (none if neither is known).
    pub outcome_type: Option<OutcomeType>,
    /// The measure asked for this type.
    pub measure: Option<EffectMeasure>,
    /// The effect, if the numbers allow one.
    pub effect: Option<Effect>,
    /// The two arms.
    pub arms: Vec<Arm>,
    /// What is missing or doubtful.
    pub warnings: Vec<String>,
}

/// The measures to compute: for binary and for continuous comparisons.
#[derive(Debug, Clone, Copy)]
pub struct Measures {
    /// RR, OR or RD.
    pub binary: EffectMeasure,
    /// MD or SMD.
    pub continuous: EffectMeasure,
}

impl Measures {
    /// RR and MD, or `asked` for its own type.
    pub fn from(asked: Option<EffectMeasure>) -> Self {
        let mut m = Self {
            binary: EffectMeasure::Rr,
            continuous: EffectMeasure::Md,
        };
        match asked {
            Some(a) if a.is_binary() => m.binary = a,
            Some(a) => m.continuous = a,
            None => {}
        }
        m
    }
}

/// A number in a value: a JSON number, or a string like "1,525" or "12.5".
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let t: String = s
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ',')
                .collect();
            t.replace('−', "-").parse().ok()
        }
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.first().and_then(text),
        _ => None,
    }
}

/// The key that groups the same comparison across reports of a study.
fn norm(s: &str) -> String {
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One item's role values.
type Item<'a> = HashMap<&'a str, &'a InputCell>;

/// The concrete prefix of `path` through its `depth`-th `]` ("outcomes[3]").
fn item_key(path: &str, depth: usize) -> String {
    if depth == 0 {
        return String::new();
    }
    let mut seen = 0;
    for (i, c) in path.char_indices() {
        if c == ']' {
            seen += 1;
            if seen == depth {
                return path[..=i].to_owned();
            }
        }
    }
    path.to_owned()
}

/// Every item of one report, in path order.
fn items<'a>(roles: &'a Roles, cells: &'a [InputCell]) -> Vec<Item<'a>> {
    // One field may hold several roles (both arms' group size, say).
    let mut by_template: HashMap<&str, Vec<&str>> = HashMap::new();
    for (role, t) in &roles.map {
        if let Target::Field(p) = t {
            by_template
                .entry(p.as_str())
                .or_default()
                .push(role.as_str());
        }
    }
    let depth = roles
        .parent()
        .map_or(0, |p| parent_of(&p).matches("[]").count());
    let mut out: BTreeMap<(usize, String), Item<'a>> = BTreeMap::new();
    for c in cells {
        let t = crate::forms::fields::template(&c.path);
        if let Some(these) = by_template.get(t.as_str()) {
            let key = item_key(&c.path, depth);
            // Numeric order of the index, so item 10 follows item 9.
            let index = key
                .rsplit('[')
                .next()
                .and_then(|s| s.trim_end_matches(']').parse().ok())
                .unwrap_or(0);
            let item = out.entry((index, key)).or_default();
            for role in these {
                item.insert(role, c);
            }
        }
    }
    out.into_values().collect()
}

struct Reader<'a> {
    item: &'a Item<'a>,
    roles: &'a Roles,
}

impl Reader<'_> {
    fn cell(&self, role: &str) -> Option<&InputCell> {
        self.item.get(role).copied().filter(|c| !c.value.is_null())
    }

    fn num(&self, role: &str) -> Option<f64> {
        self.cell(role).and_then(|c| number(&c.value))
    }

    fn label(&self, role: &str) -> Option<String> {
        self.cell(role).and_then(|c| text(&c.value))
    }

    /// A CI level: the field's value, the role's constant, or 0.95.
    fn level(&self, role: &str) -> Result<f64, String> {
        if let Some(v) = self.num(role) {
            return derive::level(v);
        }
        match self.roles.get(role) {
            Some(Target::Constant(c)) => derive::level(*c),
            _ => Ok(0.95),
        }
    }

    /// `{role, path, value, source, quote, page}` of the roles used.
    fn inputs(&self, used: &[&str]) -> Value {
        Value::Array(
            used.iter()
                .filter_map(|r| {
                    let c = self.cell(r)?;
                    let e = c.evidence.first();
                    Some(json!({
                        "role": r, "path": c.path, "value": c.value,
                        "source": match c.origin { Origin::Reviewed => "REVIEWED", _ => "EXTRACTED" },
                        "quote": e.map(|e| e.quote.clone()), "page": e.and_then(|e| e.page),
                    }))
                })
                .chain(used.iter().filter_map(|r| match (self.cell(r), self.roles.get(r)) {
                    (None, Some(Target::Constant(c))) => Some(json!({"role": r, "value": c, "source": "CONFIGURED"})),
                    _ => None,
                }))
                .collect(),
        )
    }
}

fn derivation(quantity: &'static str, made: Made, inputs: Value) -> Derivation {
    Derivation {
        quantity,
        value: made.value,
        method: made.method,
        formula: made.formula,
        inputs,
        warnings: made.warnings,
    }
}

fn origin_of(r: &Reader<'_>, role: &str, quantity: &'static str) -> Option<NumberOrigin> {
    r.cell(role).map(|c| NumberOrigin {
        quantity,
        origin: c.origin,
        path: Some(c.path.clone()),
    })
}

/// One arm as printed, with its mean and SD derived where the paper
/// printed something else; `reasons` gathers why a number stays missing.
fn arm(r: &Reader<'_>, prefix: &str, continuous: bool, reasons: &mut Vec<String>) -> Arm {
    let role = |q: &str| format!("{prefix}{q}");
    let mut a = Arm {
        role: if prefix == "intervention" {
            ArmRole::Intervention
        } else {
            ArmRole::Comparator
        },
        events: r.num(&role("Events")),
        group_size: r.num(&role("GroupSize")),
        mean: r.num(&role("Mean")),
        standard_deviation: r.num(&role("StandardDeviation")),
        origins: Vec::new(),
        derived: Vec::new(),
    };
    for (q, quantity) in [
        ("Events", "events"),
        ("GroupSize", "groupSize"),
        ("Mean", "mean"),
        ("StandardDeviation", "standardDeviation"),
    ] {
        a.origins.extend(origin_of(r, &role(q), quantity));
    }
    if !continuous {
        return a;
    }
    let n = a.group_size;
    let five = FiveNumbers {
        min: r.num(&role("Min")),
        q1: r.num(&role("Q1")),
        median: r.num(&role("Median")),
        q3: r.num(&role("Q3")),
        max: r.num(&role("Max")),
    };
    let mut tried: Vec<String> = Vec::new();
    if a.standard_deviation.is_none() {
        let se = r.num(&role("StandardError"));
        let ci = r.num(&role("CiLower")).zip(r.num(&role("CiUpper")));
        let made = match (n, se, ci) {
            (Some(n), Some(se), _) => Some((
                derive::sd_from_se(se, n),
                vec![role("StandardError"), role("GroupSize")],
            )),
            (Some(n), None, Some((lo, hi))) => Some((
                r.level(&role("CiLevel"))
                    .and_then(|l| derive::sd_from_ci(lo, hi, n, l, a.mean)),
                vec![
                    role("CiLower"),
                    role("CiUpper"),
                    role("CiLevel"),
                    role("GroupSize"),
                    role("Mean"),
                ],
            )),
            _ => None,
        };
        match made {
            Some((Ok(m), used)) => {
                let used: Vec<&str> = used.iter().map(String::as_str).collect();
                a.standard_deviation = Some(m.value);
                a.derived
                    .push(derivation("standardDeviation", m, r.inputs(&used)));
            }
            Some((Err(why), _)) => tried.push(why),
            None => {}
        }
    }
    if (a.mean.is_none() || a.standard_deviation.is_none()) && five.any() {
        match n
            .ok_or_else(|| "no group size".to_owned())
            .and_then(|n| derive::from_quantiles(five, n))
        {
            Ok(q) => {
                let used = [
                    role("Min"),
                    role("Q1"),
                    role("Median"),
                    role("Q3"),
                    role("Max"),
                    role("GroupSize"),
                ];
                let used: Vec<&str> = used.iter().map(String::as_str).collect();
                if a.mean.is_none()
                    && let Some(m) = q.mean
                {
                    a.mean = Some(m.value);
                    a.derived.push(derivation("mean", m, r.inputs(&used)));
                }
                if a.standard_deviation.is_none() {
                    a.standard_deviation = Some(q.sd.value);
                    a.derived
                        .push(derivation("standardDeviation", q.sd, r.inputs(&used)));
                }
            }
            Err(why) => tried.push(why),
        }
    }
    if a.standard_deviation.is_none() || a.mean.is_none() {
        for why in tried {
            reasons.push(format!("{prefix}: {why}"));
        }
    }
    a
}

/// The SD both arms get from a difference's CI, t or p (Handbook
/// §6.5.2.3), where neither arm has one of its own.
fn from_difference(r: &Reader<'_>, arms: &mut [Arm], reasons: &mut Vec<String>) {
    if arms.iter().any(|a| a.standard_deviation.is_some()) {
        return;
    }
    let (Some(n1), Some(n2)) = (arms[0].group_size, arms[1].group_size) else {
        return;
    };
    let md = arms[0].mean.zip(arms[1].mean).map(|(x, y)| x - y);
    let (stat, used) =
        if let Some((lo, hi)) = r.num("differenceCiLower").zip(r.num("differenceCiUpper")) {
            match r.level("differenceCiLevel") {
                Ok(level) => (
                    Ok(DifferenceStat::Ci {
                        lower: lo,
                        upper: hi,
                        level,
                    }),
                    vec![
                        "differenceCiLower",
                        "differenceCiUpper",
                        "differenceCiLevel",
                    ],
                ),
                Err(e) => (Err(e), vec![]),
            }
        } else if let Some(t) = r.num("tStatistic") {
            (Ok(DifferenceStat::T(t)), vec!["tStatistic"])
        } else if let Some(c) = r.cell("pValue") {
            let parsed = match &c.value {
                Value::Number(n) => n
                    .as_f64()
                    .map(|p| DifferenceStat::P { p, bound: false })
                    .ok_or_else(|| "p is not a number".to_owned()),
                other => derive::parse_p(&text(other).unwrap_or_default()),
            };
            (parsed, vec!["pValue"])
        } else {
            return;
        };
    let mut used = used;
    used.extend([
        "interventionMean",
        "comparatorMean",
        "interventionGroupSize",
        "comparatorGroupSize",
    ]);
    match stat.and_then(|s| derive::sd_from_difference(s, md, n1, n2)) {
        Ok(m) => {
            let inputs = r.inputs(&used);
            for a in arms.iter_mut() {
                a.standard_deviation = Some(m.value);
                a.derived
                    .push(derivation("standardDeviation", m.clone(), inputs.clone()));
            }
        }
        Err(why) => reasons.push(format!("difference: {why}")),
    }
}

fn outcome_type(r: &Reader<'_>) -> Option<OutcomeType> {
    if let Some(t) = r.label("outcomeType") {
        let t = t.to_lowercase();
        if ["binary", "dichotomous", "event"]
            .iter()
            .any(|k| t.contains(k))
        {
            return Some(OutcomeType::Binary);
        }
        if ["continuous", "numeric", "mean"]
            .iter()
            .any(|k| t.contains(k))
        {
            return Some(OutcomeType::Continuous);
        }
    }
    let has = |q: &str| ARMS.iter().any(|a| r.num(&format!("{a}{q}")).is_some());
    if has("Events") {
        Some(OutcomeType::Binary)
    } else if [
        "Mean",
        "StandardDeviation",
        "StandardError",
        "Median",
        "CiLower",
    ]
    .iter()
    .any(|q| has(q))
    {
        Some(OutcomeType::Continuous)
    } else {
        None
    }
}

fn missing(arms: &[Arm], quantity: &str, get: impl Fn(&Arm) -> Option<f64>) -> Vec<String> {
    arms.iter()
        .filter(|a| get(a).is_none())
        .map(|a| {
            format!(
                "MISSING: no {quantity} for the {} arm",
                if a.role == ArmRole::Intervention {
                    "intervention"
                } else {
                    "comparator"
                }
            )
        })
        .collect()
}

/// One item's comparison (before merging reports).
fn comparison(r: &Reader<'_>, values: &ReportValues, measures: Measures) -> Option<Comparison> {
    let outcome = r.label("outcome")?;
    let kind = outcome_type(r);
    let continuous = kind == Some(OutcomeType::Continuous);
    let mut warnings = Vec::new();
    let mut arms: Vec<Arm> = ARMS
        .iter()
        .map(|p| arm(r, p, continuous, &mut warnings))
        .collect();
    if continuous {
        from_difference(r, &mut arms, &mut warnings);
    }
    let measure = kind.map(|k| match k {
        OutcomeType::Binary => measures.binary,
        OutcomeType::Continuous => measures.continuous,
    });
    let effect = match kind {
        Some(OutcomeType::Binary) => {
            warnings.extend(missing(&arms, "events", |a| a.events));
            warnings.extend(missing(&arms, "group size", |a| a.group_size));
            match (
                arms[0].events,
                arms[0].group_size,
                arms[1].events,
                arms[1].group_size,
            ) {
                (Some(a), Some(n1), Some(c), Some(n2)) => {
                    Some(effect::binary(measures.binary, a, n1, c, n2))
                }
                _ => None,
            }
        }
        Some(OutcomeType::Continuous) => {
            warnings.extend(missing(&arms, "mean", |a| a.mean));
            warnings.extend(missing(&arms, "SD", |a| a.standard_deviation));
            warnings.extend(missing(&arms, "group size", |a| a.group_size));
            let arm_data = |a: &Arm| {
                Some(Continuous {
                    mean: a.mean?,
                    sd: a.standard_deviation?,
                    n: a.group_size?,
                })
            };
            match (arm_data(&arms[0]), arm_data(&arms[1])) {
                (Some(x), Some(y)) => Some(effect::continuous(measures.continuous, x, y)),
                _ => None,
            }
        }
        None => {
            warnings.push("MISSING: neither events nor means, so no outcome type".into());
            None
        }
    };
    let effect = match effect {
        Some(Ok(e)) => {
            warnings.extend(e.warnings.iter().cloned());
            Some(e)
        }
        Some(Err(why)) => {
            warnings.push(if why.starts_with(effect::NO_EVENTS_BOTH_ARMS) {
                why
            } else {
                format!("INVALID: {why}")
            });
            None
        }
        None => None,
    };
    for d in arms.iter().flat_map(|a| &a.derived) {
        for w in &d.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    for a in &mut arms {
        for d in &a.derived {
            a.origins.retain(|o| o.quantity != d.quantity);
            a.origins.push(NumberOrigin {
                quantity: d.quantity,
                origin: Origin::Derived,
                path: None,
            });
        }
    }
    Some(Comparison {
        study: values.study.clone(),
        reports: vec![values.report.clone()],
        outcome,
        intervention: r.label("intervention").unwrap_or_default(),
        comparator: r.label("comparator").unwrap_or_default(),
        outcome_type: kind,
        measure,
        effect,
        arms,
        warnings,
    })
}

/// How complete a comparison is, to pick among a study's reports.
fn completeness(c: &Comparison) -> (bool, usize, usize) {
    let printed = c
        .arms
        .iter()
        .map(|a| {
            a.origins
                .iter()
                .filter(|o| o.origin != Origin::Derived)
                .count()
        })
        .sum();
    (c.effect.is_some(), printed, usize::MAX - c.warnings.len())
}

/// Every comparison of `reports` under `roles`, one per (study, outcome,
/// intervention, comparator): where several reports of a study give it,
/// the most complete one's numbers, with the others listed (and a
/// warning if they disagree).
pub fn build(roles: &Roles, reports: &[ReportValues], measures: Measures) -> Vec<Comparison> {
    if roles.is_empty() {
        return Vec::new();
    }
    let mut order: Vec<(String, String, String, String)> = Vec::new();
    let mut by_key: HashMap<(String, String, String, String), Vec<Comparison>> = HashMap::new();
    for values in reports {
        for item in items(roles, &values.cells) {
            let r = Reader { item: &item, roles };
            if let Some(c) = comparison(&r, values, measures) {
                let key = (
                    c.study.id.clone(),
                    norm(&c.outcome),
                    norm(&c.intervention),
                    norm(&c.comparator),
                );
                if !by_key.contains_key(&key) {
                    order.push(key.clone());
                }
                by_key.entry(key).or_default().push(c);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .map(|mut group| {
            group.sort_by_key(|c| std::cmp::Reverse(completeness(c)));
            let mut best = group.remove(0);
            for other in group {
                let differs = other.arms.iter().zip(&best.arms).any(|(x, y)| {
                    (x.events, x.group_size, x.mean, x.standard_deviation)
                        != (y.events, y.group_size, y.mean, y.standard_deviation)
                });
                for rep in other.reports {
                    if differs {
                        best.warnings.push(format!(
                            "REPORTS_DISAGREE: {} gives other numbers for this comparison",
                            rep.filename
                        ));
                    }
                    if !best.reports.contains(&rep) {
                        best.reports.push(rep);
                    }
                }
            }
            best
        })
        .collect()
}
