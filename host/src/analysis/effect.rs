//! Effect sizes as metafor's `escalc()` computes them (`add = 1/2, to =
//! "only0", vtype = "LS"`), with arm 1 the intervention: RR and OR on the
//! log scale, RD, MD, and SMD as Hedges' g with its exact correction.

use super::quantile::{critical, ln_gamma};

/// The effect measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum EffectMeasure {
    /// Risk ratio (log scale).
    Rr,
    /// Odds ratio (log scale).
    Or,
    /// Risk difference.
    Rd,
    /// Mean difference.
    Md,
    /// Standardised mean difference (Hedges' g).
    Smd,
}

impl EffectMeasure {
    /// escalc's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rr => "RR",
            Self::Or => "OR",
            Self::Rd => "RD",
            Self::Md => "MD",
            Self::Smd => "SMD",
        }
    }

    /// Whether it takes 2×2 counts (else means and SDs).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::Rr | Self::Or | Self::Rd)
    }

    /// Whether yi is a log ratio (shown exponentiated).
    pub fn is_log(self) -> bool {
        matches!(self, Self::Rr | Self::Or)
    }
}

/// One comparison's effect: yi, its sampling variance, a 95 % CI, and
/// what was done to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The measure.
    pub measure: EffectMeasure,
    /// The estimate (log scale for RR and OR).
    pub yi: f64,
    /// Its sampling variance.
    pub vi: f64,
    /// Lower 95 % bound, yi − z·√vi.
    pub ci_lower: f64,
    /// Upper 95 % bound.
    pub ci_upper: f64,
    /// Warnings (e.g. `ZERO_CELL_CORRECTION`).
    pub warnings: Vec<String>,
}

fn effect(measure: EffectMeasure, yi: f64, vi: f64, warnings: Vec<String>) -> Effect {
    let z = critical(0.95, None);
    Effect {
        measure,
        yi,
        vi,
        ci_lower: yi - z * vi.sqrt(),
        ci_upper: yi + z * vi.sqrt(),
        warnings,
    }
}

/// Why no effect could be computed.
pub type Refusal = String;

/// The warning (and refusal) of a study with no events, or only events, in both arms.
pub const NO_EVENTS_BOTH_ARMS: &str = "NO_EVENTS_BOTH_ARMS";

/// RR, OR or RD from events `a` of `n1` (intervention) and `c` of `n2`.
pub fn binary(measure: EffectMeasure, a: f64, n1: f64, c: f64, n2: f64) -> Result<Effect, Refusal> {
    for (what, events, n) in [("intervention", a, n1), ("comparator", c, n2)] {
        if !(n.is_finite() && n > 0.0) {
            return Err(format!("the {what} arm's group size {n} is not positive"));
        }
        if !(events >= 0.0 && events <= n) {
            return Err(format!(
                "the {what} arm's events {events} are not between 0 and {n}"
            ));
        }
    }
    let (mut a, mut b, mut c, mut d) = (a, n1 - a, c, n2 - c);
    let mut warnings = Vec::new();
    let double = (a == 0.0 && c == 0.0) || (b == 0.0 && d == 0.0);
    if double {
        let what = if a == 0.0 { "no events" } else { "only events" };
        let note = format!("{NO_EVENTS_BOTH_ARMS}: {what} in both arms");
        if measure != EffectMeasure::Rd {
            // metafor's drop00 = TRUE: such a study says nothing of a ratio.
            return Err(format!("{note}, so no {} (kept for RD)", measure.as_str()));
        }
        warnings.push(note);
    }
    if [a, b, c, d].contains(&0.0) {
        (a, b, c, d) = (a + 0.5, b + 0.5, c + 0.5, d + 0.5);
        warnings.push("ZERO_CELL_CORRECTION: 0.5 added to every cell (a zero cell)".into());
    }
    let (n1, n2) = (a + b, c + d);
    let (p1, p2) = (a / n1, c / n2);
    let (yi, vi) = match measure {
        EffectMeasure::Rr => (p1.ln() - p2.ln(), 1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2),
        EffectMeasure::Or => (
            (a * d / (b * c)).ln(),
            1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d,
        ),
        EffectMeasure::Rd => (p1 - p2, p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2),
        EffectMeasure::Md | EffectMeasure::Smd => {
            return Err(format!("{} needs means, not events", measure.as_str()));
        }
    };
    Ok(effect(measure, yi, vi, warnings))
}

/// One arm of continuous data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Continuous {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// Group size.
    pub n: f64,
}

/// MD or SMD (Hedges' g, `vtype = "LS"`) of intervention `x` against comparator `y`.
pub fn continuous(measure: EffectMeasure, x: Continuous, y: Continuous) -> Result<Effect, Refusal> {
    for (what, arm) in [("intervention", x), ("comparator", y)] {
        if !(arm.n.is_finite() && arm.n > 0.0) {
            return Err(format!(
                "the {what} arm's group size {} is not positive",
                arm.n
            ));
        }
        if arm.sd.is_nan() || arm.sd < 0.0 || !arm.mean.is_finite() {
            return Err(format!("the {what} arm's SD {} is negative", arm.sd));
        }
    }
    match measure {
        EffectMeasure::Md => Ok(effect(
            measure,
            x.mean - y.mean,
            x.sd * x.sd / x.n + y.sd * y.sd / y.n,
            Vec::new(),
        )),
        EffectMeasure::Smd => {
            let m = x.n + y.n - 2.0;
            if m <= 1.0 {
                return Err("SMD needs more than three participants in all".into());
            }
            let pooled = (((x.n - 1.0) * x.sd * x.sd + (y.n - 1.0) * y.sd * y.sd) / m).sqrt();
            if pooled == 0.0 {
                return Err("SMD is undefined when both arms have an SD of 0".into());
            }
            let j = (ln_gamma(m / 2.0) - 0.5 * (m / 2.0).ln() - ln_gamma((m - 1.0) / 2.0)).exp();
            let g = j * (x.mean - y.mean) / pooled;
            let vi = 1.0 / x.n + 1.0 / y.n + g * g / (2.0 * (x.n + y.n));
            let mut warnings = Vec::new();
            if g.abs() > 3.0 {
                warnings.push(format!(
                    "LARGE_SMD: g = {g:.2}; an SD that is really an SE gives this"
                ));
            }
            Ok(effect(measure, g, vi, warnings))
        }
        _ => Err(format!("{} needs events, not means", measure.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EffectMeasure::*;

    fn close(e: &Effect, yi: f64, vi: f64) {
        for (got, want) in [(e.yi, yi), (e.vi, vi)] {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1e-3),
                "{e:?}: got {got}, escalc gave {want}"
            );
        }
    }

    fn arm(mean: f64, sd: f64, n: f64) -> Continuous {
        Continuous { mean, sd, n }
    }

    /// Rows B1–B11 and C1–C5 of tests/reference/meta-analysis.md.
    #[test]
    fn effects_match_escalc() {
        close(
            &binary(Rr, 11.0, 49.0, 21.0, 50.0).unwrap(),
            -0.6264244576,
            0.09811997526,
        );
        close(
            &binary(Or, 11.0, 49.0, 21.0, 50.0).unwrap(),
            -0.9169174947,
            0.1993266866,
        );
        close(
            &binary(Rd, 11.0, 49.0, 21.0, 50.0).unwrap(),
            -0.1955102041,
            0.008424941376,
        );
        close(
            &binary(Rr, 0.0, 47.0, 1.0, 45.0).unwrap(),
            -1.141171903,
            2.624094203,
        );
        close(
            &binary(Or, 0.0, 47.0, 1.0, 45.0).unwrap(),
            -1.163852811,
            2.710191208,
        );
        close(
            &binary(Rd, 0.0, 47.0, 1.0, 45.0).unwrap(),
            -0.02219202899,
            0.0009005222106,
        );
        close(
            &binary(Rr, 22.0, 22.0, 16.0, 20.0).unwrap(),
            0.2191831501,
            0.01395319656,
        );
        close(
            &binary(Or, 22.0, 22.0, 16.0, 20.0).unwrap(),
            2.507379506,
            2.327272727,
        );
        assert!(
            binary(Rr, 0.0, 33.0, 0.0, 33.0)
                .unwrap_err()
                .starts_with(NO_EVENTS_BOTH_ARMS)
        );
        let rd = binary(Rd, 0.0, 33.0, 0.0, 33.0).unwrap();
        close(&rd, 0.0, 0.0008523305516);
        assert!(rd.warnings[0].starts_with(NO_EVENTS_BOTH_ARMS));
        close(
            &continuous(Md, arm(74.1, 12.2, 22.0), arm(78.0, 6.4, 20.0)).unwrap(),
            -3.9,
            8.813454545,
        );
        close(
            &continuous(Smd, arm(5.2, 1.1, 10.0), arm(4.4, 1.3, 12.0)).unwrap(),
            0.6338569788,
            0.1924645758,
        );
        close(
            &continuous(Md, arm(9.9, 14.8, 940.0), arm(9.1, 9.9, 1831.0)).unwrap(),
            0.8,
            0.2865494033,
        );
        close(
            &continuous(Smd, arm(9.9, 14.8, 940.0), arm(9.1, 9.9, 1831.0)).unwrap(),
            0.06782388328,
            0.001610809472,
        );
        close(
            &continuous(Smd, arm(0.82, 0.05, 10.0), arm(0.92, 0.07, 10.0)).unwrap(),
            -1.574361028,
            0.2619653162,
        );
        let b1 = binary(Rr, 11.0, 49.0, 21.0, 50.0).unwrap();
        assert!(
            (b1.ci_lower - -1.240365696).abs() < 1e-8 && (b1.ci_upper - -0.012483219).abs() < 1e-8
        );
    }

    #[test]
    fn impossible_counts_are_refused() {
        assert!(binary(Rr, 5.0, 0.0, 1.0, 10.0).is_err());
        assert!(binary(Rr, 12.0, 10.0, 1.0, 10.0).is_err());
        assert!(binary(Or, -1.0, 10.0, 1.0, 10.0).is_err());
        assert!(continuous(Md, arm(1.0, -2.0, 10.0), arm(1.0, 1.0, 10.0)).is_err());
        assert!(continuous(Smd, arm(1.0, 0.0, 10.0), arm(2.0, 0.0, 10.0)).is_err());
        assert!(continuous(Md, arm(1.0, 1.0, 0.0), arm(2.0, 1.0, 10.0)).is_err());
    }
}
