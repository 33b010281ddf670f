//! List items matched to reference items by content, not position: a model
//! that lists the comparisons in another order than the reviewer did is not
//! wrong. Items with identical content are paired first (by a hash of their
//! content, in linear time); the rest greedily by how well their values
//! agree (the fields' own comparators), best pairs first; nested lists are
//! aligned within each matched pair.
//!
//! Comparing every reference item with every extracted one is quadratic,
//! so one alignment makes at most [`MAX_COMPARISONS`] value comparisons: a
//! list too long for every pair within what is left has each reference
//! item compared only with the extracted items nearest its position, and
//! the alignment says so in a warning.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::Value;

/// Most value comparisons one alignment (one document) may make.
pub const MAX_COMPARISONS: usize = 1_000_000;

/// Scores one value against its reference: `(concrete path, want, got)`.
pub type Scorer<'a> = dyn Fn(&str, &Value, Option<&Value>) -> f64 + 'a;

/// An alignment: the renumbered values, and the lists that were too long
/// to compare every pair of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aligned {
    /// `got` with its list indices renumbered to the reference items they
    /// match (`comparisons[2].n` → `comparisons[0].n`); unmatched extracted
    /// items are dropped.
    pub values: BTreeMap<String, Value>,
    /// One per list whose items were compared only near their position.
    pub warnings: Vec<String>,
}

/// Aligns `got` to `truth` (paths are concrete:
/// `arms[0].outcomes[1].events`) within [`MAX_COMPARISONS`].
pub fn align(
    truth: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
) -> Aligned {
    align_within(truth, got, score, MAX_COMPARISONS)
}

/// [`align`] with at most `max_comparisons` value comparisons.
pub fn align_within(
    truth: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
    max_comparisons: usize,
) -> Aligned {
    let mut budget = Budget {
        left: max_comparisons,
        warnings: Vec::new(),
    };
    let values = align_under("", truth, got, score, &mut budget);
    Aligned {
        values,
        warnings: budget.warnings,
    }
}

/// Comparisons still allowed, and what was cut short.
struct Budget {
    left: usize,
    warnings: Vec<String>,
}

/// A path's first step: `(name, index, rest)`; `arms[0].n` → `("arms",
/// Some(0), "n")`, `n` → `("n", None, "")`, `obj.x` → `("obj", None, "x")`.
fn split(path: &str) -> (&str, Option<usize>, &str) {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let (name, tail) = path.split_at(end);
    if let Some(inner) = tail.strip_prefix('[')
        && let Some(close) = inner.find(']')
        && let Ok(i) = inner[..close].parse::<usize>()
    {
        let rest = &inner[close + 1..];
        return (name, Some(i), rest.strip_prefix('.').unwrap_or(rest));
    }
    (name, None, tail.strip_prefix('.').unwrap_or(tail))
}

/// Groups relative paths by their first step.
type Groups<'a> = BTreeMap<(&'a str, Option<usize>), BTreeMap<String, Value>>;

fn group(paths: &BTreeMap<String, Value>) -> (Groups<'_>, BTreeMap<String, Value>) {
    let mut groups: Groups<'_> = BTreeMap::new();
    let mut leaves = BTreeMap::new();
    for (p, v) in paths {
        match split(p) {
            (_, None, "") => {
                leaves.insert(p.clone(), v.clone());
            }
            (name, idx, rest) => {
                groups
                    .entry((name, idx))
                    .or_default()
                    .insert(rest.to_owned(), v.clone());
            }
        }
    }
    (groups, leaves)
}

/// The items of every list, by list name and index.
fn lists<'g>(
    groups: &'g Groups<'_>,
) -> BTreeMap<&'g str, BTreeMap<usize, &'g BTreeMap<String, Value>>> {
    let mut out: BTreeMap<&str, BTreeMap<usize, &BTreeMap<String, Value>>> = BTreeMap::new();
    for ((name, idx), m) in groups {
        if let Some(i) = idx {
            out.entry(*name).or_default().insert(*i, m);
        }
    }
    out
}

/// How well extracted item `g` agrees with reference item `t` (0..1), and
/// the comparisons it took.
fn agreement(
    base: &str,
    t: &BTreeMap<String, Value>,
    g: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
) -> (f64, usize) {
    let total: f64 = t
        .iter()
        .map(|(k, want)| score(&format!("{base}{k}"), want, g.get(k)))
        .sum();
    (total / t.len().max(1) as f64, t.len())
}

fn align_under(
    prefix: &str,
    truth: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
    budget: &mut Budget,
) -> BTreeMap<String, Value> {
    let (t_groups, _) = group(truth);
    let (g_groups, g_leaves) = group(got);
    let mut out = g_leaves;
    // Objects (no index): the same object on both sides.
    for ((name, idx), t_sub) in &t_groups {
        if idx.is_none()
            && let Some(g_sub) = g_groups.get(&(*name, None))
        {
            let inner = align_under(&format!("{prefix}{name}."), t_sub, g_sub, score, budget);
            out.extend(inner.into_iter().map(|(k, v)| (format!("{name}.{k}"), v)));
        }
    }
    // Lists: pair items by agreement.
    let no_items = BTreeMap::new();
    let g_lists = lists(&g_groups);
    for (name, t_items) in lists(&t_groups) {
        let g_items = g_lists.get(name).unwrap_or(&no_items);
        for (ti, gj) in pair(prefix, name, &t_items, g_items, score, budget) {
            let inner = align_under(
                &format!("{prefix}{name}[{ti}]."),
                t_items[&ti],
                g_items[&gj],
                score,
                budget,
            );
            out.extend(
                inner
                    .into_iter()
                    .map(|(k, v)| (format!("{name}[{ti}].{k}"), v)),
            );
        }
    }
    out
}

/// The (reference, extracted) index pairs of list `name`.
fn pair(
    prefix: &str,
    name: &str,
    t_items: &BTreeMap<usize, &BTreeMap<String, Value>>,
    g_items: &BTreeMap<usize, &BTreeMap<String, Value>>,
    score: &Scorer<'_>,
    budget: &mut Budget,
) -> Vec<(usize, usize)> {
    let base = |ti: usize| format!("{prefix}{name}[{ti}].");
    // Identical items first: a perfect pair whoever else it competes with.
    let content = |m: &BTreeMap<String, Value>| serde_json::to_string(m).unwrap_or_default();
    let mut by_content: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (&gj, g) in g_items {
        by_content.entry(content(g)).or_default().push_back(gj);
    }
    let mut matched = Vec::new();
    let mut g_used = HashSet::new();
    let mut t_left = Vec::new();
    for (&ti, t) in t_items {
        let same = by_content.get_mut(&content(t)).and_then(|q| {
            let gj = *q.front()?;
            // Identical values can still score below 1 (empty text).
            (agreement(&base(ti), t, g_items[&gj], score).0 >= 1.0).then(|| q.pop_front())?
        });
        match same {
            Some(gj) => {
                matched.push((ti, gj));
                g_used.insert(gj);
            }
            None => t_left.push(ti),
        }
    }
    let g_left: Vec<usize> = g_items
        .keys()
        .copied()
        .filter(|g| !g_used.contains(g))
        .collect();
    if t_left.is_empty() || g_left.is_empty() {
        return matched;
    }
    // Comparing one extracted item with every remaining reference item.
    let per_item: usize = t_left.iter().map(|ti| t_items[ti].len().max(1)).sum();
    let every_pair = per_item.saturating_mul(g_left.len());
    // Half-width of the window of extracted items (by rank among the
    // remaining) each reference item is compared with.
    let reach = if every_pair <= budget.left {
        g_left.len()
    } else {
        let reach = budget.left / per_item / 2;
        budget.warnings.push(format!(
            "`{prefix}{name}`: {} reference and {} extracted items are too many to compare \
             every pair; each reference item was compared with the {} extracted item(s) \
             nearest its position",
            t_left.len(),
            g_left.len(),
            2 * reach + 1
        ));
        reach
    };
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (rank, &ti) in t_left.iter().enumerate() {
        let t = t_items[&ti];
        let (lo, hi) = (
            rank.saturating_sub(reach),
            rank.saturating_add(reach).min(g_left.len() - 1),
        );
        for &gj in g_left.get(lo..=hi).unwrap_or_default() {
            let (s, cost) = agreement(&base(ti), t, g_items[&gj], score);
            budget.left = budget.left.saturating_sub(cost);
            if s > 0.0 {
                pairs.push((s, ti, gj));
            }
        }
    }
    // Best agreement first; among equals, the same position first.
    pairs.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.abs_diff(a.2).cmp(&b.1.abs_diff(b.2)))
            .then(a.1.cmp(&b.1))
    });
    let mut t_used = HashSet::new();
    for (_, ti, gj) in pairs {
        if t_used.contains(&ti) || g_used.contains(&gj) {
            continue;
        }
        t_used.insert(ti);
        g_used.insert(gj);
        matched.push((ti, gj));
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> BTreeMap<String, Value> {
        v.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn exact(_: &str, want: &Value, got: Option<&Value>) -> f64 {
        f64::from(u8::from(got == Some(want)))
    }

    #[test]
    fn paths_split_at_their_first_step() {
        assert_eq!(split("arms[0].n"), ("arms", Some(0), "n"));
        assert_eq!(split("arms[12]"), ("arms", Some(12), ""));
        assert_eq!(split("n"), ("n", None, ""));
        assert_eq!(split("obj.x[1].y"), ("obj", None, "x[1].y"));
    }

    #[test]
    fn items_in_another_order_are_matched_by_content() {
        let truth = map(json!({
            "n": 120,
            "arms[0].name": "placebo", "arms[0].n": 60,
            "arms[1].name": "drug", "arms[1].n": 61,
        }));
        let got = map(json!({
            "n": 120,
            "arms[0].name": "drug", "arms[0].n": 61,
            "arms[1].name": "extra", "arms[1].n": 5,
            "arms[2].name": "placebo", "arms[2].n": 59,
        }));
        let a = align(&truth, &got, &exact).values;
        assert_eq!(a["n"], json!(120));
        assert_eq!(a["arms[0].name"], json!("placebo"));
        assert_eq!(a["arms[0].n"], json!(59)); // matched on the name, wrong n kept
        assert_eq!(a["arms[1].name"], json!("drug"));
        assert_eq!(a["arms[1].n"], json!(61));
        // The unmatched extra item is gone.
        assert!(!a.values().any(|v| v == &json!("extra")));
    }

    #[test]
    fn nested_lists_align_within_their_matched_item() {
        let truth = map(json!({
            "arms[0].name": "a",
            "arms[0].outcomes[0].name": "death", "arms[0].outcomes[0].events": 3,
            "arms[0].outcomes[1].name": "stroke", "arms[0].outcomes[1].events": 7,
        }));
        let got = map(json!({
            "arms[0].name": "b",
            "arms[1].name": "a",
            "arms[1].outcomes[0].name": "stroke", "arms[1].outcomes[0].events": 7,
            "arms[1].outcomes[1].name": "death", "arms[1].outcomes[1].events": 3,
        }));
        let a = align(&truth, &got, &exact).values;
        assert_eq!(a["arms[0].outcomes[0].events"], json!(3));
        assert_eq!(a["arms[0].outcomes[1].events"], json!(7));
        assert_eq!(a["arms[0].outcomes[1].name"], json!("stroke"));
    }

    #[test]
    fn nothing_in_common_matches_nothing() {
        let truth = map(json!({ "arms[0].name": "a" }));
        let got = map(json!({ "arms[0].name": "z" }));
        assert!(align(&truth, &got, &exact).values.is_empty());
    }

    #[test]
    fn identical_items_pair_in_linear_time_in_any_order() {
        let n = 5_000;
        let truth: BTreeMap<String, Value> = (0..n)
            .flat_map(|i| {
                [
                    (format!("arms[{i}].name"), json!(format!("arm {i}"))),
                    (format!("arms[{i}].n"), json!(i)),
                ]
            })
            .collect();
        let got: BTreeMap<String, Value> = (0..n)
            .flat_map(|i| {
                let item = n - 1 - i;
                [
                    (format!("arms[{i}].name"), json!(format!("arm {item}"))),
                    (format!("arms[{i}].n"), json!(item)),
                ]
            })
            .collect();
        // No budget at all: identical items need no pairwise comparison.
        let a = align_within(&truth, &got, &exact, 0);
        assert_eq!(a.values, truth);
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn a_list_too_long_for_its_budget_is_compared_near_its_positions_and_says_so() {
        // Every extracted item is its reference item with a wrong `n`, so
        // none is identical and pairs must be scored.
        let n = 200;
        let item = |i: usize, off: usize| {
            [
                (format!("arms[{i}].name"), json!(format!("arm {i}"))),
                (format!("arms[{i}].n"), json!(i + off)),
            ]
        };
        let truth: BTreeMap<String, Value> = (0..n).flat_map(|i| item(i, 0)).collect();
        let got: BTreeMap<String, Value> = (0..n).flat_map(|i| item(i, 1)).collect();
        let calls = std::cell::Cell::new(0usize);
        let counted = |p: &str, w: &Value, g: Option<&Value>| {
            calls.set(calls.get() + 1);
            exact(p, w, g)
        };
        // Every pair: 200 × 200 × 2 comparisons fit in the default budget.
        let full = align(&truth, &got, &counted);
        assert!(full.warnings.is_empty());
        assert_eq!(full.values["arms[7].name"], json!("arm 7"));
        assert!(calls.get() >= n * n * 2);
        // A tenth of that: each item is compared with a few neighbours,
        // which here is enough, and the cap is reported.
        calls.set(0);
        let budget = n * n * 2 / 10;
        let capped = align_within(&truth, &got, &counted, budget);
        assert!(calls.get() <= budget + 2 * n, "{} comparisons", calls.get());
        assert_eq!(capped.warnings.len(), 1, "{:?}", capped.warnings);
        assert!(
            capped.warnings[0].contains("`arms`: 200 reference and 200 extracted items"),
            "{:?}",
            capped.warnings
        );
        assert_eq!(capped.values, full.values);
    }
}
