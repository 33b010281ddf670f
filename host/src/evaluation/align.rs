//! List items matched to reference items by content, not position: a model
//! that lists the comparisons in another order than the reviewer did is not
//! wrong. Items are paired greedily by how well their values agree (the
//! fields' own comparators), best pairs first; nested lists are aligned
//! within each matched pair.

use std::collections::BTreeMap;

use serde_json::Value;

/// Scores one value against its reference: `(concrete path, want, got)`.
pub type Scorer<'a> = dyn Fn(&str, &Value, Option<&Value>) -> f64 + 'a;

/// `got` with its list indices renumbered to the reference items they
/// match (`comparisons[2].n` → `comparisons[0].n`); unmatched extracted
/// items are dropped. Paths are concrete (`arms[0].outcomes[1].events`).
pub fn align(
    truth: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
) -> BTreeMap<String, Value> {
    align_under("", truth, got, score)
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

/// The items of list `name`, by index.
fn items<'g>(groups: &'g Groups<'_>, name: &str) -> BTreeMap<usize, &'g BTreeMap<String, Value>> {
    groups
        .iter()
        .filter_map(|((n, i), m)| i.filter(|_| *n == name).map(|i| (i, m)))
        .collect()
}

fn align_under(
    prefix: &str,
    truth: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    score: &Scorer<'_>,
) -> BTreeMap<String, Value> {
    let (t_groups, _) = group(truth);
    let (g_groups, g_leaves) = group(got);
    let mut out = g_leaves;
    // Objects (no index): the same object on both sides.
    for ((name, idx), t_sub) in &t_groups {
        if idx.is_none()
            && let Some(g_sub) = g_groups.get(&(*name, None))
        {
            let inner = align_under(&format!("{prefix}{name}."), t_sub, g_sub, score);
            out.extend(inner.into_iter().map(|(k, v)| (format!("{name}.{k}"), v)));
        }
    }
    // Lists: pair items by agreement.
    let names: Vec<&str> = t_groups
        .keys()
        .filter(|(_, i)| i.is_some())
        .map(|(n, _)| *n)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for name in names {
        let (t_items, g_items) = (items(&t_groups, name), items(&g_groups, name));
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (&ti, t) in &t_items {
            let base = format!("{prefix}{name}[{ti}].");
            for (&gj, g) in &g_items {
                let total: f64 = t
                    .iter()
                    .map(|(k, want)| score(&format!("{base}{k}"), want, g.get(k)))
                    .sum();
                let s = total / t.len().max(1) as f64;
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
        let (mut t_used, mut g_used) = (Vec::new(), Vec::new());
        for (_, ti, gj) in pairs {
            if t_used.contains(&ti) || g_used.contains(&gj) {
                continue;
            }
            t_used.push(ti);
            g_used.push(gj);
            let inner = align_under(
                &format!("{prefix}{name}[{ti}]."),
                t_items[&ti],
                g_items[&gj],
                score,
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
        let a = align(&truth, &got, &exact);
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
        let a = align(&truth, &got, &exact);
        assert_eq!(a["arms[0].outcomes[0].events"], json!(3));
        assert_eq!(a["arms[0].outcomes[1].events"], json!(7));
        assert_eq!(a["arms[0].outcomes[1].name"], json!("stroke"));
    }

    #[test]
    fn nothing_in_common_matches_nothing() {
        let truth = map(json!({ "arms[0].name": "a" }));
        let got = map(json!({ "arms[0].name": "z" }));
        assert!(align(&truth, &got, &exact).is_empty());
    }
}
