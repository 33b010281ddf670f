//! What a meta-analysis takes (mean, SD) from what a paper printed (SE, a
//! confidence interval, a t or p of a difference, a median with quartiles
//! or range), by the Cochrane Handbook §6.5.2 and metafor's `conv.fivenum`.
//! Each function returns the number with the method and formula that made
//! it, or the reason it cannot.

use super::quantile::critical;

/// A number a derivation made, with how.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    /// The value.
    pub value: f64,
    /// The method in words, e.g. "SD from 95% CI (t, n < 60)".
    pub method: String,
    /// The formula with the numbers put in.
    pub formula: String,
    /// Warnings the value carries (e.g. `SKEWED`).
    pub warnings: Vec<String>,
}

impl Made {
    fn new(value: f64, method: impl Into<String>, formula: impl Into<String>) -> Self {
        Self {
            value,
            method: method.into(),
            formula: formula.into(),
            warnings: Vec::new(),
        }
    }
}

/// Why a value cannot be derived (shown with the missing value).
pub type Reason = String;

/// Groups this small get t rather than z (Handbook §6.5.2.2).
pub const LARGE_GROUP: f64 = 60.0;

fn positive_n(n: f64) -> Result<(), Reason> {
    if n.is_finite() && n > 0.0 {
        Ok(())
    } else {
        Err(format!("group size {n} is not a positive number"))
    }
}

/// A confidence level as a fraction: 0.95, or 95 read as a percent.
pub fn level(raw: f64) -> Result<f64, Reason> {
    let l = if (50.0..100.0).contains(&raw) {
        raw / 100.0
    } else {
        raw
    };
    if l.is_finite() && l > 0.0 && l < 1.0 {
        Ok(l)
    } else {
        Err(format!("CI level {raw} is outside (0, 1)"))
    }
}

fn pct(level: f64) -> String {
    let p = level * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p}%")
    }
}

/// SD = SE·√n.
pub fn sd_from_se(se: f64, n: f64) -> Result<Made, Reason> {
    positive_n(n)?;
    if se.is_nan() || se < 0.0 {
        return Err(format!("standard error {se} is negative"));
    }
    Ok(Made::new(
        se * n.sqrt(),
        "SD from SE (Handbook 6.5.2.2)",
        format!("SD = SE·√n = {se}·√{n}"),
    ))
}

fn check_ci(lower: f64, upper: f64) -> Result<(), Reason> {
    if !(lower.is_finite() && upper.is_finite()) || upper < lower {
        return Err(format!(
            "CI {lower} to {upper} has its upper bound below its lower"
        ));
    }
    Ok(())
}

/// SD = √n·(U − L)/(2·q): q is z for n ≥ 60, t(n − 1) below.
pub fn sd_from_ci(
    lower: f64,
    upper: f64,
    n: f64,
    level_: f64,
    mean: Option<f64>,
) -> Result<Made, Reason> {
    positive_n(n)?;
    check_ci(lower, upper)?;
    let (q, which) = if n >= LARGE_GROUP {
        (critical(level_, None), "z, n ≥ 60".to_owned())
    } else if n > 1.0 {
        (critical(level_, Some(n - 1.0)), "t, n < 60".to_owned())
    } else {
        return Err("a CI of a group of one says nothing of its SD".into());
    };
    let mut made = Made::new(
        n.sqrt() * (upper - lower) / (2.0 * q),
        format!("SD from {} CI ({which})", pct(level_)),
        format!("SD = √n·(U − L)/(2·q) = √{n}·({upper} − {lower})/(2·{q:.6})"),
    );
    if let Some(m) = mean {
        let mid = (lower + upper) / 2.0;
        // Printed numbers are rounded: only a clear lean is a warning.
        if (m - mid).abs() > 0.05 * (upper - lower) {
            made.warnings.push(format!(
                "ASYMMETRIC_CI: the mean {m} is not the CI's midpoint {mid} (a log-scale interval?)"
            ));
        }
    }
    Ok(made)
}

/// How a difference's uncertainty was printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DifferenceStat {
    /// A CI of the difference at a level.
    Ci {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
        /// Level as a fraction.
        level: f64,
    },
    /// A t statistic.
    T(f64),
    /// A two-sided p value, exact or an upper bound ("p < 0.05").
    P {
        /// The value.
        p: f64,
        /// Printed as "<".
        bound: bool,
    },
}

/// The within-group SD both arms get from the SE of their difference in
/// means (Handbook §6.5.2.3): SE from the CI, t or p with df = n₁ + n₂ − 2,
/// then SD = SE/√(1/n₁ + 1/n₂).
pub fn sd_from_difference(
    stat: DifferenceStat,
    md: Option<f64>,
    n1: f64,
    n2: f64,
) -> Result<Made, Reason> {
    positive_n(n1)?;
    positive_n(n2)?;
    let df = n1 + n2 - 2.0;
    if df < 1.0 {
        return Err("two groups of one leave no degrees of freedom".into());
    }
    let spread = (1.0 / n1 + 1.0 / n2).sqrt();
    let need_md = || md.ok_or_else(|| "no difference in means to divide by t".to_owned());
    let (se, method, formula, warnings) = match stat {
        DifferenceStat::Ci {
            lower,
            upper,
            level,
        } => {
            check_ci(lower, upper)?;
            let small = n1.min(n2) < LARGE_GROUP;
            let q = critical(level, small.then_some(df));
            (
                (upper - lower) / (2.0 * q),
                format!(
                    "SD from the {} CI of the difference ({}), both arms",
                    pct(level),
                    if small { "t, n < 60" } else { "z, n ≥ 60" }
                ),
                format!("SE = (U − L)/(2·q) = ({upper} − {lower})/(2·{q:.6})"),
                Vec::new(),
            )
        }
        DifferenceStat::T(t) => {
            if t == 0.0 || !t.is_finite() {
                return Err(format!("t = {t} gives no standard error"));
            }
            let md = need_md()?;
            (
                md.abs() / t.abs(),
                "SD from the t statistic of the difference, both arms".to_owned(),
                format!("SE = |MD|/|t| = {}/{}", md.abs(), t.abs()),
                Vec::new(),
            )
        }
        DifferenceStat::P { p, bound } => {
            if !(p > 0.0 && p < 1.0) {
                return Err(format!("p = {p} is outside (0, 1)"));
            }
            let md = need_md()?;
            if md == 0.0 {
                return Err("a difference of 0 gives no standard error from p".into());
            }
            let t = super::quantile::student_t(1.0 - p / 2.0, df);
            let mut w = Vec::new();
            if bound {
                w.push(format!(
                    "CONSERVATIVE_P_BOUND: p < {p} taken as p = {p}, so the SD is an upper bound"
                ));
            }
            (
                md.abs() / t,
                "SD from the p value of the difference (two-sided t), both arms".to_owned(),
                format!(
                    "t = qt(1 − p/2, {df}) = {t:.6}; SE = |MD|/t = {}/{t:.6}",
                    md.abs()
                ),
                w,
            )
        }
    };
    Ok(Made {
        value: se / spread,
        method,
        formula: format!("{formula}; SD = SE/√(1/n₁ + 1/n₂) = {se:.6}/√(1/{n1} + 1/{n2})"),
        warnings,
    })
}

/// A printed p value: `0.008`, `p = 0.03`, `< 0.05`, `P<.001`; "NS" and
/// "p > x" cannot give an SE.
pub fn parse_p(text: &str) -> Result<DifferenceStat, Reason> {
    let t: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let t = t.strip_prefix('p').unwrap_or(&t);
    let (bound, rest) = if let Some(r) = t.strip_prefix("<=").or(t.strip_prefix('≤')) {
        (true, r)
    } else if let Some(r) = t.strip_prefix('<') {
        (true, r)
    } else if t.starts_with('>') || t.starts_with('≥') || t == "ns" || t.contains("n.s") {
        return Err(format!("p \"{}\" bounds nothing from above", text.trim()));
    } else {
        (false, t.strip_prefix('=').unwrap_or(t))
    };
    let rest = if rest.starts_with('.') {
        format!("0{rest}")
    } else {
        rest.to_owned()
    };
    match rest.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(DifferenceStat::P { p, bound }),
        Ok(p) => Err(format!("p = {p} is outside (0, 1)")),
        Err(_) => Err(format!("\"{}\" is not a p value", text.trim())),
    }
}

/// What a paper printed of a skewed group: any of min, Q1, median, Q3, max.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FiveNumbers {
    /// Minimum.
    pub min: Option<f64>,
    /// First quartile.
    pub q1: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// Third quartile.
    pub q3: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

impl FiveNumbers {
    /// Whether it holds anything.
    pub fn any(&self) -> bool {
        [self.min, self.q1, self.median, self.q3, self.max]
            .iter()
            .any(Option::is_some)
    }
}

/// Mean and SD estimated from a median with quartiles and/or range.
#[derive(Debug, Clone, PartialEq)]
pub struct FromQuantiles {
    /// The mean estimate (none without a median).
    pub mean: Option<Made>,
    /// The SD estimate.
    pub sd: Made,
}

fn xi(n: f64) -> f64 {
    2.0 * super::quantile::normal((n - 0.375) / (n + 0.25))
}

fn eta(n: f64) -> f64 {
    2.0 * super::quantile::normal((0.75 * n - 0.125) / (n + 0.25))
}

/// metafor's `conv.fivenum` (method "default", `dist = "norm"`, `test =
/// FALSE`): Luo et al. 2018 for the mean, Wan et al. 2014 for the SD from a
/// range or an IQR, Shi et al. 2020 from all five; the skewness screen of
/// Shi et al. 2023 becomes a `SKEWED` warning. Below n = 5, where those
/// need more, Hozo et al. 2005 from the median and range.
pub fn from_quantiles(f: FiveNumbers, n: f64) -> Result<FromQuantiles, Reason> {
    positive_n(n)?;
    let order: Vec<f64> = [f.min, f.q1, f.median, f.q3, f.max]
        .iter()
        .flatten()
        .copied()
        .collect();
    if order.windows(2).any(|w| w[0] > w[1]) {
        return Err("the quantiles are not in order (min ≤ Q1 ≤ median ≤ Q3 ≤ max)".into());
    }
    let range = f.min.zip(f.max);
    let iqr = f.q1.zip(f.q3);
    if range.is_none() && iqr.is_none() {
        return Err(if f.median.is_some() {
            "median without quartiles or range".into()
        } else {
            "no quartiles or range".into()
        });
    }
    if n < 5.0 {
        return hozo(f, n);
    }
    let (sd, sd_formula, sd_method) = match (range, iqr) {
        (Some((a, b)), Some((q1, q3))) => {
            let w = 1.0 / (1.0 + 0.07 * n.powf(0.6));
            (
                w * (b - a) / xi(n) + (1.0 - w) * (q3 - q1) / eta(n),
                format!(
                    "SD = w·(max − min)/ξ(n) + (1 − w)·(Q3 − Q1)/η(n), w = 1/(1 + 0.07·n^0.6) = {w:.6}, ξ = {:.6}, η = {:.6}",
                    xi(n),
                    eta(n)
                ),
                "Shi et al. 2020 (median, IQR and range)",
            )
        }
        (Some((a, b)), None) => (
            (b - a) / xi(n),
            format!(
                "SD = (max − min)/ξ(n), ξ = 2·Φ⁻¹((n − 0.375)/(n + 0.25)) = {:.6}",
                xi(n)
            ),
            "Wan et al. 2014 (range)",
        ),
        (None, Some((q1, q3))) => (
            (q3 - q1) / eta(n),
            format!(
                "SD = (Q3 − Q1)/η(n), η = 2·Φ⁻¹((0.75n − 0.125)/(n + 0.25)) = {:.6}",
                eta(n)
            ),
            "Wan et al. 2014 (IQR)",
        ),
        (None, None) => unreachable_reason()?,
    };
    let mut sd = Made::new(sd, format!("SD from quantiles: {sd_method}"), sd_formula);
    let mut mean = None;
    if let Some(m) = f.median {
        let (value, formula, method) = match (range, iqr) {
            (Some((a, b)), Some((q1, q3))) => {
                let w1 = 2.2 / (2.2 + n.powf(0.75));
                let w2 = 0.7 - 0.72 / n.powf(0.55);
                (
                    w1 * (a + b) / 2.0 + w2 * (q1 + q3) / 2.0 + (1.0 - w1 - w2) * m,
                    format!(
                        "mean = w₁·(min + max)/2 + w₂·(Q1 + Q3)/2 + (1 − w₁ − w₂)·median, w₁ = {w1:.6}, w₂ = {w2:.6}"
                    ),
                    "Luo et al. 2018 (median, IQR and range)",
                )
            }
            (Some((a, b)), None) => {
                let w = 4.0 / (4.0 + n.powf(0.75));
                (
                    w * (a + b) / 2.0 + (1.0 - w) * m,
                    format!("mean = w·(min + max)/2 + (1 − w)·median, w = 4/(4 + n^0.75) = {w:.6}"),
                    "Luo et al. 2018 (median and range)",
                )
            }
            (None, Some((q1, q3))) => {
                let w = 0.7 + 0.39 / n;
                (
                    w * (q1 + q3) / 2.0 + (1.0 - w) * m,
                    format!("mean = w·(Q1 + Q3)/2 + (1 − w)·median, w = 0.7 + 0.39/n = {w:.6}"),
                    "Luo et al. 2018 (median and IQR)",
                )
            }
            (None, None) => unreachable_reason()?,
        };
        let mut made = Made::new(value, format!("mean from quantiles: {method}"), formula);
        if let Some(w) = skewness(f, m, n) {
            made.warnings.push(w.clone());
            sd.warnings.push(w);
        }
        mean = Some(made);
    }
    if sd.value == 0.0 {
        sd.warnings
            .push("ZERO_SPREAD: the quartiles or range are equal, so the SD is 0".into());
    }
    Ok(FromQuantiles { mean, sd })
}

fn unreachable_reason<T>() -> Result<T, Reason> {
    Err("no quartiles or range".into())
}

/// Shi et al. 2023's test of normality from the printed quantiles: a
/// warning when the data look skewed.
fn skewness(f: FiveNumbers, m: f64, n: f64) -> Option<String> {
    let ratio = |lo: f64, hi: f64| {
        let r = ((lo + hi - 2.0 * m) / (hi - lo)).abs();
        if r.is_nan() { 0.0 } else { r }
    };
    let (t, c) = match (f.min.zip(f.max), f.q1.zip(f.q3)) {
        (Some((a, b)), Some((q1, q3))) => (
            (2.65 * (0.6 * n).ln() / n.sqrt() * ratio(a, b)).max(ratio(q1, q3)),
            3.0 / n.sqrt() - 40.0 / n.powi(3),
        ),
        (Some((a, b)), None) => (ratio(a, b), 1.0 / (n + 9.0).ln() + 2.5 / (n + 1.0)),
        (None, Some((q1, q3))) => (ratio(q1, q3), 2.65 / n.sqrt() - 6.0 / (n * n)),
        (None, None) => return None,
    };
    (t >= c).then(|| {
        format!(
            "SKEWED: the quantiles suggest skewed data (Shi et al. 2023: T = {t:.4} ≥ {c:.4}); the mean and SD may mislead"
        )
    })
}

/// Hozo et al. 2005, used only where Luo and Wan cannot apply (n < 5).
fn hozo(f: FiveNumbers, n: f64) -> Result<FromQuantiles, Reason> {
    let (Some(a), Some(b)) = (f.min, f.max) else {
        return Err(format!(
            "n = {n} is below 5, where only Hozo et al. 2005 (median and range) applies, and there is no range"
        ));
    };
    let why = "Hozo et al. 2005 (n < 5: Luo and Wan need n ≥ 5)";
    let sd_value;
    let sd_formula;
    match f.median {
        Some(m) => {
            sd_value = (((a - 2.0 * m + b).powi(2) / 4.0 + (b - a).powi(2)) / 12.0).sqrt();
            sd_formula = "SD = √(((min − 2·median + max)²/4 + (max − min)²)/12)".to_owned();
        }
        None => return Err("Hozo et al. 2005 needs the median with the range".into()),
    }
    let m = f.median.unwrap_or_default();
    Ok(FromQuantiles {
        mean: Some(Made::new(
            (a + 2.0 * m + b) / 4.0,
            format!("mean from quantiles: {why}"),
            "mean = (min + 2·median + max)/4",
        )),
        sd: Made::new(sd_value, format!("SD from quantiles: {why}"), sd_formula),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "got {a}, metafor/R gave {b}"
        );
    }

    /// The rows S1–S10 and F1–F10 of tests/reference/meta-analysis.md.
    #[test]
    fn derivations_match_the_reference_rows() {
        close(sd_from_se(1.3, 47.0).unwrap().value, 8.912350981);
        close(
            sd_from_ci(8.2, 11.8, 30.0, 0.95, None).unwrap().value,
            4.820488532,
        );
        close(
            sd_from_ci(8.2, 11.8, 100.0, 0.95, None).unwrap().value,
            9.183842225,
        );
        close(
            sd_from_ci(8.2, 11.8, 30.0, 0.90, None).unwrap().value,
            5.802394925,
        );
        close(
            sd_from_ci(8.2, 11.8, 100.0, 0.90, None).unwrap().value,
            10.94322297,
        );
        close(
            sd_from_ci(8.2, 11.8, 80.0, 0.99, None).unwrap().value,
            6.250293611,
        );
        let ci = DifferenceStat::Ci {
            lower: -7.77,
            upper: -0.12,
            level: 0.95,
        };
        close(
            sd_from_difference(ci, None, 47.0, 45.0).unwrap().value,
            9.231366327,
        );
        let p = parse_p("p = 0.008").unwrap();
        close(
            sd_from_difference(p, Some(3.8), 25.0, 22.0).unwrap().value,
            4.683469341,
        );
        close(
            sd_from_difference(DifferenceStat::T(2.1), Some(3.8), 25.0, 22.0)
                .unwrap()
                .value,
            6.190086497,
        );
        let bound =
            sd_from_difference(parse_p("p < 0.05").unwrap(), Some(3.8), 25.0, 22.0).unwrap();
        close(bound.value, 6.454078631);
        assert!(bound.warnings[0].starts_with("CONSERVATIVE_P_BOUND"));
        let f = |min, q1, median, q3, max| FiveNumbers {
            min,
            q1,
            median,
            q3,
            max,
        };
        let r = from_quantiles(f(None, Some(20.0), Some(25.0), Some(31.0), None), 50.0).unwrap();
        close(r.mean.unwrap().value, 25.3539);
        close(r.sd.value, 8.396350389);
        let r = from_quantiles(f(Some(2.0), None, Some(10.0), None, Some(25.0)), 40.0).unwrap();
        close(r.mean.unwrap().value, 10.70332622);
        close(r.sd.value, 5.333071892);
        let five = f(Some(2.0), Some(8.0), Some(11.0), Some(15.0), Some(28.0));
        let r = from_quantiles(five, 60.0).unwrap();
        close(r.mean.as_ref().unwrap().value, 11.68252561);
        close(r.sd.value, 5.484647104);
        assert!(r.sd.warnings.is_empty(), "{:?}", r.sd.warnings);
        let skewed = from_quantiles(f(None, Some(4.0), Some(4.0), Some(5.0), None), 24.0).unwrap();
        close(skewed.mean.as_ref().unwrap().value, 4.358125);
        close(skewed.sd.value, 0.7880575292);
        assert!(
            skewed.sd.warnings[0].starts_with("SKEWED"),
            "{:?}",
            skewed.sd.warnings
        );
        let flat = from_quantiles(f(None, Some(5.0), Some(5.0), Some(5.0), None), 24.0).unwrap();
        close(flat.mean.unwrap().value, 5.0);
        assert_eq!(flat.sd.value, 0.0);
        assert!(
            flat.sd
                .warnings
                .iter()
                .any(|w| w.starts_with("ZERO_SPREAD"))
        );
        let tiny = from_quantiles(f(Some(2.0), None, Some(10.0), None, Some(25.0)), 4.0).unwrap();
        close(tiny.mean.unwrap().value, 11.75);
        close(tiny.sd.value, 6.715963569);
        assert!(tiny.sd.method.contains("Hozo"));
        assert_eq!(
            from_quantiles(f(None, None, Some(10.0), None, None), 30.0).unwrap_err(),
            "median without quartiles or range"
        );
    }

    #[test]
    fn bad_numbers_are_reasons_not_values() {
        assert!(sd_from_se(-1.0, 10.0).unwrap_err().contains("negative"));
        assert!(sd_from_se(1.0, 0.0).unwrap_err().contains("positive"));
        assert!(sd_from_ci(3.0, 1.0, 10.0, 0.95, None).is_err());
        assert!(level(1.5).is_err() && level(0.0).is_err() && level(-0.95).is_err());
        assert_eq!(level(95.0).unwrap(), 0.95);
        assert!(parse_p("NS").is_err() && parse_p("p > 0.05").is_err());
        assert_eq!(
            parse_p("P<.001").unwrap(),
            DifferenceStat::P {
                p: 0.001,
                bound: true
            }
        );
        assert!(parse_p("1.2").is_err());
        let f = FiveNumbers {
            q1: Some(5.0),
            median: Some(4.0),
            q3: Some(6.0),
            ..Default::default()
        };
        assert!(from_quantiles(f, 30.0).unwrap_err().contains("order"));
    }
}
