//! Inverse-variance pooling, as metafor's `rma(yi, vi, method = "FE")` and
//! `method = "DL"` give it: a preview beside the comparisons, not the
//! team's analysis.

use super::quantile::critical;

/// A pooled estimate with its 95 % CI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The pooled effect.
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Lower 95 % bound.
    pub ci_lower: f64,
    /// Upper 95 % bound.
    pub ci_upper: f64,
}

/// Fixed-effect and DerSimonian–Laird random-effects estimates of one set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pooled {
    /// How many comparisons went in.
    pub k: usize,
    /// Inverse-variance fixed effect.
    pub fixed: Estimate,
    /// DerSimonian–Laird random effects.
    pub random: Estimate,
    /// Between-study variance (DL).
    pub tau2: f64,
    /// Cochran's Q.
    pub q: f64,
    /// I², in percent.
    pub i2: f64,
}

fn estimate(y: &[f64], w: &[f64]) -> Estimate {
    let sw: f64 = w.iter().sum();
    let mu = y.iter().zip(w).map(|(y, w)| y * w).sum::<f64>() / sw;
    let se = (1.0 / sw).sqrt();
    let z = critical(0.95, None);
    Estimate {
        estimate: mu,
        se,
        ci_lower: mu - z * se,
        ci_upper: mu + z * se,
    }
}

/// Pools `(yi, vi)` pairs; none when there are none with a positive variance.
pub fn pool(effects: &[(f64, f64)]) -> Option<Pooled> {
    let (y, v): (Vec<f64>, Vec<f64>) = effects
        .iter()
        .filter(|(y, v)| y.is_finite() && v.is_finite() && *v > 0.0)
        .copied()
        .unzip();
    if y.is_empty() {
        return None;
    }
    let w: Vec<f64> = v.iter().map(|v| 1.0 / v).collect();
    let fixed = estimate(&y, &w);
    let k = y.len();
    let q: f64 = y
        .iter()
        .zip(&w)
        .map(|(y, w)| w * (y - fixed.estimate).powi(2))
        .sum();
    let df = (k - 1) as f64;
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let tau2 = if k > 1 {
        ((q - df) / (sw - sw2 / sw)).max(0.0)
    } else {
        0.0
    };
    let wr: Vec<f64> = v.iter().map(|v| 1.0 / (v + tau2)).collect();
    let i2 = if q > 0.0 {
        (100.0 * (q - df) / q).max(0.0)
    } else {
        0.0
    };
    Some(Pooled {
        k,
        fixed,
        random: estimate(&y, &wr),
        tau2,
        q,
        i2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::effect::{EffectMeasure, binary};

    /// dat.bcg (metafor): rows P1 and P2 of tests/reference/meta-analysis.md.
    #[test]
    fn pooling_matches_rma_on_dat_bcg() {
        let bcg = [
            (4.0, 119.0, 11.0, 128.0),
            (6.0, 300.0, 29.0, 274.0),
            (3.0, 228.0, 11.0, 209.0),
            (62.0, 13536.0, 248.0, 12619.0),
            (33.0, 5036.0, 47.0, 5761.0),
            (180.0, 1361.0, 372.0, 1079.0),
            (8.0, 2537.0, 10.0, 619.0),
            (505.0, 87886.0, 499.0, 87892.0),
            (29.0, 7470.0, 45.0, 7232.0),
            (17.0, 1699.0, 65.0, 1600.0),
            (186.0, 50448.0, 141.0, 27197.0),
            (5.0, 2493.0, 3.0, 2338.0),
            (27.0, 16886.0, 29.0, 17825.0),
        ];
        let effects: Vec<(f64, f64)> = bcg
            .iter()
            .map(|&(a, b, c, d)| {
                let e = binary(EffectMeasure::Rr, a, a + b, c, c + d).expect("counts");
                (e.yi, e.vi)
            })
            .collect();
        let p = pool(&effects).expect("pooled");
        let near = |a: f64, b: f64| assert!((a - b).abs() < 1e-8 * b.abs().max(1.0), "{a} vs {b}");
        near(p.fixed.estimate, -0.4302851637);
        near(p.fixed.se, 0.04049875171);
        near(p.fixed.ci_lower, -0.5096612584);
        near(p.q, 152.2330081);
        near(p.i2, 92.11734685);
        near(p.random.estimate, -0.7141172221);
        near(p.random.se, 0.1787420895);
        near(p.random.ci_upper, -0.3637891641);
        near(p.tau2, 0.3087602629);
        let one = pool(&effects[..1]).expect("one");
        assert_eq!((one.tau2, one.i2, one.k), (0.0, 0.0, 1));
        assert!(pool(&[]).is_none());
    }
}
