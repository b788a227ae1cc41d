//! Calibration of the conformal p-values on synthetic series of the kinds a host has: on a
//! normal stretch the share of points with p < α is about α (at most α, plus sampling noise,
//! where the values are discrete), whatever the series' scale or shape; a real excursion gets
//! a small p-value; a jump to a level the series often sits at does not.

use super::*;
use crate::store::StoreConfig;

/// A deterministic generator: xorshift64* for uniforms, Box–Muller for normals.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn one_point() -> SignalSpec {
    SignalSpec {
        metric: "m".into(),
        statistic: "value".into(),
        window_s: 0.0,
        agg: Aggregation::Max,
        min_history: 30,
        points: Some(1),
        where_expr: None,
        model: Default::default(),
        band_k: None,
    }
}

/// Pushes `values` (one a minute) and reads the one-point evidence at every 5th point after a
/// warm-up of 600: (p_up, p_down, level_p_up) at each.
fn p_values(values: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut store = SeriesStore::new(StoreConfig::default());
    let attrs = [("host.name", "h")];
    let subject = vec![("host.name".to_string(), "h".to_string())];
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let at = i as i64 * 60_000;
        store.push("m", "value", &attrs, at, *v).unwrap();
        if i >= 600 && i % 5 == 0 {
            let (_, b) = read(&store, &one_point(), &subject, at).unwrap();
            assert!(b.prior_windows > 100, "{b:?}");
            out.push((b.p_up, b.p_down, b.level_p_up));
        }
    }
    out
}

fn share_below(ps: &[f64], alpha: f64) -> f64 {
    ps.iter().filter(|p| **p < alpha).count() as f64 / ps.len() as f64
}

/// On a normal stretch: at most about α of the points have p < α (both directions), and on
/// continuous data about α exactly.
fn assert_calibrated(name: &str, values: &[f64], continuous: bool) {
    let ps = p_values(values);
    let (up, down): (Vec<f64>, Vec<f64>) = ps.iter().map(|p| (p.0, p.1)).unzip();
    for alpha in [0.05, 0.1] {
        for (side, sample) in [("up", &up), ("down", &down)] {
            let share = share_below(sample, alpha);
            assert!(
                share <= 1.6 * alpha + 0.01,
                "{name} {side}: {share} of p < {alpha}"
            );
            if continuous {
                assert!(
                    share >= 0.5 * alpha,
                    "{name} {side}: only {share} of p < {alpha}"
                );
            }
        }
    }
}

const N: usize = 6_000;

#[test]
fn smooth_series_are_calibrated_at_any_scale() {
    let mut rng = Rng(1);
    let smooth: Vec<f64> = (0..N)
        .map(|i| 120.0 + 15.0 * (i as f64 / 90.0).sin() + 4.0 * rng.normal())
        .collect();
    assert_calibrated("smooth latency", &smooth, true);
    // The same series min-max scaled to [0, 1]: the p-values are the same kind of number.
    let (lo, hi) = smooth
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let scaled: Vec<f64> = smooth.iter().map(|v| (v - lo) / (hi - lo)).collect();
    assert_calibrated("min-max scaled", &scaled, true);
    let heavy: Vec<f64> = (0..N)
        .map(|_| 10.0 + rng.normal() / rng.uniform().max(0.05).sqrt())
        .collect();
    assert_calibrated("heavy-tailed", &heavy, true);
}

#[test]
fn quantised_and_stepwise_series_are_not_always_rare() {
    let mut rng = Rng(2);
    // A counter with five distinct values, the top one rare-ish (3 %).
    let quantised: Vec<f64> = (0..N)
        .map(|_| match rng.uniform() {
            u if u < 0.4 => 0.0,
            u if u < 0.7 => 1.0,
            u if u < 0.87 => 2.0,
            u if u < 0.97 => 3.0,
            _ => 4.0,
        })
        .collect();
    assert_calibrated("quantised", &quantised, false);
    // Stepwise: sits on one of three levels for 20-80 minutes, then jumps to another.
    let mut stepwise = Vec::with_capacity(N);
    let levels = [0.2, 0.5, 0.9];
    let mut level = 0;
    while stepwise.len() < N {
        let hold = 20 + (rng.uniform() * 60.0) as usize;
        stepwise.extend(std::iter::repeat_n(levels[level], hold));
        level = (level + 1 + (rng.uniform() * 2.0) as usize) % 3;
    }
    stepwise.truncate(N);
    assert_calibrated("stepwise", &stepwise, false);
    // The jumps between its usual levels are not rare for it: no step lands below 0.05,
    // however far the band was from the new level.
    let ps = p_values(&stepwise);
    assert!(
        ps.iter().all(|p| p.2 >= 0.05),
        "level p-values of a usual level"
    );
}

#[test]
fn constant_then_moving_is_rare_once_and_calibrated_after() {
    let mut rng = Rng(3);
    let mut series = vec![5.0; 1_500];
    series.extend((0..N - 1_500).map(|_| 5.0 + rng.normal()));
    let ps = p_values(&series);
    // While constant, nothing is rare (ties split: p = 1/2 for every point).
    let constant: Vec<&(f64, f64, f64)> = ps.iter().take(150).collect();
    assert!(
        constant.iter().all(|p| (p.0 - 0.5).abs() < 1e-9),
        "{:?}",
        constant[0]
    );
    // Once it has moved for longer than the ring holds, it is calibrated again.
    let settled: Vec<f64> = ps.iter().skip(500).map(|p| p.0).collect();
    let share = share_below(&settled, 0.05);
    assert!((0.02..=0.09).contains(&share), "{share}");
}

#[test]
fn a_real_excursion_gets_a_small_p_value_on_every_kind_of_series() {
    let mut rng = Rng(4);
    let cases: Vec<(&str, Vec<f64>, f64)> = vec![
        (
            "smooth",
            (0..800).map(|_| 50.0 + rng.normal()).collect(),
            60.0,
        ),
        (
            "quantised",
            (0..800).map(|_| (rng.uniform() * 3.0).floor()).collect(),
            9.0,
        ),
        (
            "scaled",
            (0..800).map(|_| 0.3 + 0.01 * rng.normal()).collect(),
            0.9,
        ),
    ];
    for (name, mut values, spike) in cases {
        values.push(spike);
        let mut store = SeriesStore::new(StoreConfig::default());
        for (i, v) in values.iter().enumerate() {
            store
                .push("m", "value", &[("host.name", "h")], i as i64 * 60_000, *v)
                .unwrap();
        }
        let subject = vec![("host.name".to_string(), "h".to_string())];
        let (_, b) = read(&store, &one_point(), &subject, 800 * 60_000).unwrap();
        assert!(b.p_up < 0.01 && b.level_p_up < 0.01, "{name}: {b:?}");
        assert!(b.p_down > 0.5 && b.p_value < 0.02, "{name}: {b:?}");
    }
}
