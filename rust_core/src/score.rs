//! The per-point anomaly score's raw term (see `docs/baselines.md`, "Per-point anomaly score").
//!
//! For a point judged against a band, the raw anomaly combines three signs of trouble:
//! * the point's own deviation, `|z|`;
//! * a level shift: `shift_weight · |mean z|` over the last `shift_points` points, so a shift
//!   of 1.5σ held for an hour counts like a 3σ spike;
//! * novelty: a point outside the range of every value the series has ever had multiplies
//!   the larger of the two by `novelty_boost`. A 4σ excursion to a level never seen before (a machine
//!   cooling past its coldest reading, a latency above its all-time worst) is rarer than a 4σ
//!   excursion on a series that makes them every day, and z alone cannot tell the two apart.
//!
//! `raw = a / (a + band_k)` with `a` the largest of these, so `raw` is 0.5 at the band's edge and
//! never saturates. The baseline then keeps one alert per episode (`episode_score`).
//!
//! The range costs 8 bytes per series and lives in the hot state, not in the lazily allocated
//! part: the score must not depend on whether a rule happened to read the series earlier.

/// The all-time range of a series' values, in single precision (8 bytes). Single precision is
/// enough: a value counts as novel only if it is beyond the range after rounding, and the
/// rounding (about 6e-8 relative) is far below any deviation that matters.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    lo: f32,
    hi: f32,
}

impl Default for Range {
    /// Empty: `lo > hi`, so the first value is novel (it has no band to score against anyway).
    fn default() -> Self {
        Range {
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }
}

impl Range {
    /// Whether `x` lies strictly outside every value seen so far, then widens the range to
    /// include it. Non-finite values are neither novel nor kept (the store rejects them).
    pub fn observe(&mut self, x: f64) -> bool {
        let x = x as f32;
        if !x.is_finite() {
            return false;
        }
        let novel = x > self.hi || x < self.lo;
        if novel {
            self.lo = self.lo.min(x);
            self.hi = self.hi.max(x);
        }
        novel
    }
}

/// What the raw anomaly of one point is computed from.
#[derive(Debug, Clone, Copy)]
pub struct RawInputs {
    /// The point's z against the band it was judged with.
    pub z: f64,
    /// Mean z of this point and the previous points of the level-shift window.
    pub mean_z: f64,
    /// Whether the point is outside the series' all-time range.
    pub novel: bool,
}

/// Raw anomaly in [0, 1]: `a / (a + band_k)` with
/// `a = max(|z|, shift_weight · |mean z|) · (novelty_boost if novel else 1)`; 1 for an
/// infinite deviation.
pub fn raw_anomaly(x: RawInputs, shift_weight: f64, novelty_boost: f64, band_k: f64) -> f64 {
    if !x.z.is_finite() {
        return if x.z.is_nan() { 0.0 } else { 1.0 };
    }
    let shift = if x.mean_z.is_finite() {
        shift_weight * x.mean_z.abs()
    } else {
        0.0
    };
    // Novelty scales both terms: a level shift to a level never seen is what a failing
    // machine or a misconfigured autoscaler looks like.
    let a = x.z.abs().max(shift) * if x.novel { novelty_boost.max(1.0) } else { 1.0 };
    if a.is_finite() {
        a / (a + band_k.max(1e-9))
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(z: f64, mean_z: f64, novel: bool) -> f64 {
        raw_anomaly(RawInputs { z, mean_z, novel }, 2.0, 3.0, 3.0)
    }

    #[test]
    fn range_tracks_the_extremes_and_flags_only_strict_novelty() {
        let mut r = Range::default();
        let seen: Vec<bool> = [5.0, 3.0, 7.0, 5.0, 3.0, 7.0, 4.0, 7.5, 2.9]
            .iter()
            .map(|x| r.observe(*x))
            .collect();
        assert_eq!(
            seen,
            [true, true, true, false, false, false, false, true, true]
        );
        assert!(!r.observe(f64::NAN) && !r.observe(f64::INFINITY));
        assert!(r.observe(8.0), "non-finite values do not widen the range");
        assert!(!r.observe(8.0), "and a repeat of the maximum is not novel");
    }

    #[test]
    fn raw_anomaly_combines_point_shift_and_novelty() {
        assert_eq!(raw(0.0, 0.0, false), 0.0);
        assert!(
            (raw(3.0, 0.0, false) - 0.5).abs() < 1e-12,
            "0.5 at the band edge"
        );
        // A 1.5σ shift held counts like a 3σ point.
        assert!((raw(1.0, 1.5, false) - 0.5).abs() < 1e-12);
        // Novelty triples the deviation: 3σ to a new extreme ranks like 9σ, and so does a
        // held 1.5σ shift that ends at one.
        assert!((raw(3.0, 0.0, true) - raw(9.0, 0.0, false)).abs() < 1e-12);
        assert!((raw(1.0, 1.5, true) - raw(9.0, 0.0, false)).abs() < 1e-12);
        // It multiplies the deviation, so a point at the expected value stays at 0.
        assert_eq!(raw(0.0, 0.0, true), 0.0);
        assert_eq!(raw(f64::INFINITY, 0.0, false), 1.0);
        assert_eq!(raw(f64::NAN, 0.0, false), 0.0);
        for z in [0.1, 1.0, 10.0, 1e6] {
            let r = raw(z, z, true);
            assert!((0.0..1.0).contains(&r) || r == 1.0, "{r}");
        }
    }

    /// The baseline feeds the novelty term: a point beyond every earlier value scores higher
    /// with the boost than without, a point inside the range scores the same.
    #[test]
    fn baseline_boosts_only_new_extremes() {
        use crate::baseline::{BaselineConfig, StreamingBaseline};
        let run = |boost: f64, last: f64| {
            let cfg = BaselineConfig {
                novelty_boost: boost,
                episode_points: 0,
                ..Default::default()
            };
            let mut b = StreamingBaseline::new(&cfg);
            for i in 0..200 {
                // 10..12 most of the time, with an early excursion to 30 that sets the range.
                let x = if i == 50 { 30.0 } else { 10.0 + (i % 3) as f64 };
                b.update(i * 60_000, x, &cfg);
            }
            b.update(200 * 60_000, last, &cfg);
            b.last_raw
        };
        assert!(run(3.0, 40.0) > run(1.0, 40.0), "40 is beyond the range");
        assert_eq!(run(3.0, 25.0), run(1.0, 25.0), "25 is inside it");
        assert!(run(1.0, 25.0) > 0.5, "and still outside the band");
    }
}
