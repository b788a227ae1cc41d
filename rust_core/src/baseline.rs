//! Streaming baselines: what a series usually looks like, updated in O(1)/O(w) per point.
//!
//! Each series keeps three estimators and the band is taken from the best one that has
//! enough history:
//! * hour-of-day seasonal slots (mean/variance per UTC hour, interpolated between slot
//!   centres, plus a slowly adapting level offset) once every slot touched has been seen on
//!   `season_min_days` distinct days: this is what tells an evening peak from an incident;
//! * a rolling median with a MAD scale (floored, because MAD is 0 on flat or quantised series)
//!   otherwise;
//! * fast and slow EWMA mean/variance (the slow variance floors the MAD scale).
//!
//! Points far outside the band update the estimators with a value clipped to the band edge,
//! so an incident does not teach the baseline that the incident is normal.

use std::collections::VecDeque;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Tunables of the streaming baseline. The defaults are documented in `docs/baselines.md`.
#[derive(Debug, Clone)]
pub struct BaselineConfig {
    pub fast_alpha: f64,
    pub slow_alpha: f64,
    /// Number of recent points in the rolling median/MAD window.
    pub median_window: usize,
    /// Points needed before any band is given (below it, verdicts are inconclusive).
    pub min_samples: u64,
    /// Distinct days an hour slot must have seen before the seasonal band is used.
    pub season_min_days: u32,
    /// Memory of the seasonal slots, in days.
    pub season_memory_days: f64,
    /// Band half-width in units of sigma.
    pub band_k: f64,
    /// Updates beyond this many sigmas are clipped to it.
    pub clip_k: f64,
    /// Time constant of the level offset from the seasonal profile, in seconds: slow enough
    /// that an incident of an hour barely moves it, fast enough to follow a real level shift
    /// within a day.
    pub level_tau_s: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            fast_alpha: 0.3,
            slow_alpha: 0.02,
            median_window: 64,
            min_samples: 30,
            season_min_days: 3,
            season_memory_days: 7.0,
            band_k: 3.0,
            clip_k: 4.0,
            level_tau_s: 6.0 * 3600.0,
        }
    }
}

/// Which estimator produced a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandModel {
    SeasonalSlots,
    MedianMad,
}

impl BandModel {
    pub fn name(self) -> &'static str {
        match self {
            BandModel::SeasonalSlots => "streaming.hour_of_day",
            BandModel::MedianMad => "streaming.median_mad",
        }
    }
}

/// The expected value of the next point and how far from it is still normal.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    pub expected: f64,
    pub sigma: f64,
    pub lower: f64,
    pub upper: f64,
    pub model: BandModel,
}

impl Band {
    /// Standardised distance of `value` from the expected value.
    pub fn z(&self, value: f64) -> f64 {
        (value - self.expected) / self.sigma
    }

    /// Anomaly score in [0, 1]: the normal probability mass within |z| (0 at the expected
    /// value, 0.68 at one sigma, 0.997 at three).
    pub fn score(&self, value: f64) -> f64 {
        erf(self.z(value).abs() / std::f64::consts::SQRT_2)
    }
}

/// Exponentially weighted mean and variance (West's incremental form).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ewm {
    pub mean: f64,
    pub var: f64,
    initialised: bool,
}

impl Ewm {
    pub fn update(&mut self, x: f64, alpha: f64) {
        if !self.initialised {
            self.mean = x;
            self.var = 0.0;
            self.initialised = true;
            return;
        }
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
    }

    pub fn std(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

/// Rolling median and MAD over the last `capacity` values: a sorted copy is kept beside the
/// insertion-order ring, so each update is a binary search and a short memmove.
#[derive(Debug, Clone, Default)]
pub struct MedianWindow {
    order: VecDeque<f64>,
    sorted: Vec<f64>,
    capacity: usize,
}

impl MedianWindow {
    pub fn new(capacity: usize) -> Self {
        MedianWindow {
            order: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, x: f64) {
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                let i = self.sorted.partition_point(|v| *v < old);
                self.sorted.remove(i);
            }
        }
        self.order.push_back(x);
        let i = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(i, x);
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn median(&self) -> f64 {
        median_of_sorted(&self.sorted)
    }

    /// Median absolute deviation, found by walking outwards from the median of the sorted
    /// window (O(w), no allocation).
    pub fn mad(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let m = self.median();
        // Split point: sorted[..split] < m <= sorted[split..].
        let split = self.sorted.partition_point(|v| *v < m);
        let (mut lo, mut hi) = (split as isize - 1, split);
        let mut take = |k: usize| -> f64 {
            // Returns the k-th smallest deviation (0-based) by merging both sides.
            let mut last = 0.0;
            for _ in 0..=k {
                let dl = if lo >= 0 {
                    m - self.sorted[lo as usize]
                } else {
                    f64::INFINITY
                };
                let dh = if hi < n {
                    self.sorted[hi] - m
                } else {
                    f64::INFINITY
                };
                if dl <= dh {
                    last = dl;
                    lo -= 1;
                } else {
                    last = dh;
                    hi += 1;
                }
            }
            last
        };
        if n % 2 == 1 {
            take(n / 2)
        } else {
            let a = take(n / 2 - 1);
            // `take` continues the merge: one more step gives the next deviation.
            let b = take(0);
            (a + b) / 2.0
        }
    }
}

fn median_of_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// One hour-of-day slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ewm: Ewm,
    points: u32,
    days: u32,
    last_day: i64,
}

/// The per-series streaming baseline.
#[derive(Debug, Clone)]
pub struct StreamingBaseline {
    pub samples: u64,
    pub fast: Ewm,
    pub slow: Ewm,
    /// Offset of recent values from the seasonal profile (tracks level shifts).
    level: Ewm,
    window: MedianWindow,
    slots: Box<[Slot; 24]>,
    pub first_ts: i64,
    pub last_ts: i64,
}

impl StreamingBaseline {
    pub fn new(cfg: &BaselineConfig) -> Self {
        StreamingBaseline {
            samples: 0,
            fast: Ewm::default(),
            slow: Ewm::default(),
            level: Ewm::default(),
            window: MedianWindow::new(cfg.median_window),
            slots: Box::new([Slot::default(); 24]),
            first_ts: i64::MIN,
            last_ts: i64::MIN,
        }
    }

    /// The band for a point at `ts_ms`, from the history seen so far, or `None` while the
    /// history is shorter than `min_samples`.
    pub fn band(&self, ts_ms: i64, cfg: &BaselineConfig) -> Option<Band> {
        if self.samples < cfg.min_samples || self.window.is_empty() {
            return None;
        }
        let (expected, sigma, model) = match self.seasonal(ts_ms, cfg) {
            Some((e, s)) => (e, s, BandModel::SeasonalSlots),
            None => {
                let med = self.window.median();
                let scale = 1.4826 * self.window.mad() + 0.1 * self.slow.std();
                (med, scale, BandModel::MedianMad)
            }
        };
        // Floor sigma so a perfectly flat history still has a (narrow) band.
        let sigma = sigma.max(1e-3 * expected.abs()).max(1e-9);
        Some(Band {
            expected,
            sigma,
            lower: expected - cfg.band_k * sigma,
            upper: expected + cfg.band_k * sigma,
            model,
        })
    }

    fn seasonal(&self, ts_ms: i64, cfg: &BaselineConfig) -> Option<(f64, f64)> {
        if self.last_ts == i64::MIN
            || self.last_ts - self.first_ts < cfg.season_min_days as i64 * DAY_MS
        {
            return None;
        }
        // Slot h describes the hour [h:00, h+1:00); interpolate between slot centres.
        let pos = (ts_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64) - 0.5;
        let lo = pos.floor();
        let frac = pos - lo;
        let a = self.slots[(lo as i64).rem_euclid(24) as usize];
        let b = self.slots[((lo as i64) + 1).rem_euclid(24) as usize];
        if a.days < cfg.season_min_days || b.days < cfg.season_min_days {
            return None;
        }
        let seasonal = a.ewm.mean * (1.0 - frac) + b.ewm.mean * frac;
        let var = a.ewm.var * (1.0 - frac) + b.ewm.var * frac;
        let level = if self.level.initialised {
            self.level.mean
        } else {
            0.0
        };
        Some((seasonal + level, var.max(0.0).sqrt()))
    }

    /// Adds a point; returns the band it was judged against (before the update).
    pub fn update(&mut self, ts_ms: i64, value: f64, cfg: &BaselineConfig) -> Option<Band> {
        let band = self.band(ts_ms, cfg);
        // Clip what the estimators learn from points far outside the band. The seasonal slots
        // are clipped only against their own band: during warm-up the non-seasonal band would
        // clip every daily peak and the slots would never learn it.
        let clip = |b: Option<(f64, f64)>| match b {
            Some((expected, sigma)) => {
                let lim = cfg.clip_k * sigma;
                value.clamp(expected - lim, expected + lim)
            }
            None => value,
        };
        let learned = clip(band.map(|b| (b.expected, b.sigma)));
        let learned_seasonal = clip(
            self.seasonal(ts_ms, cfg)
                .map(|(e, s)| (e, s.max(1e-3 * e.abs()).max(1e-9))),
        );
        self.samples += 1;
        let prev_ts = self.last_ts;
        if self.first_ts == i64::MIN {
            self.first_ts = ts_ms;
        }
        self.last_ts = self.last_ts.max(ts_ms);
        self.fast.update(learned, cfg.fast_alpha);
        self.slow.update(learned, cfg.slow_alpha);
        self.window.push(learned);

        let hour = (ts_ms.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let day = ts_ms.div_euclid(DAY_MS);
        let slot = &mut self.slots[hour];
        slot.points = slot.points.saturating_add(1);
        if slot.days == 0 || slot.last_day != day {
            slot.days = slot.days.saturating_add(1);
            slot.last_day = day;
        }
        // A plain mean at first, then an exponential memory of about `season_memory_days`.
        let points_per_day = slot.points as f64 / slot.days as f64;
        let effective = (slot.points as f64).min(points_per_day * cfg.season_memory_days);
        let seasonal_before = slot.ewm.mean;
        let had = slot.ewm.initialised;
        slot.ewm.update(learned_seasonal, 1.0 / effective.max(1.0));
        if had {
            let dt_s = if prev_ts == i64::MIN {
                0.0
            } else {
                (ts_ms - prev_ts).max(0) as f64 / 1000.0
            };
            let alpha = (1.0 - (-dt_s / cfg.level_tau_s).exp()).clamp(1e-6, 1.0);
            self.level.update(learned_seasonal - seasonal_before, alpha);
        }
        band
    }
}

/// Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
pub fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_match_a_sort() {
        let mut w = MedianWindow::new(5);
        for x in [5.0, 1.0, 9.0, 3.0, 7.0, 2.0] {
            w.push(x);
        }
        // window is [1, 9, 3, 7, 2] -> sorted [1, 2, 3, 7, 9]
        assert_eq!(w.median(), 3.0);
        // deviations [2, 1, 0, 4, 6] -> median 2
        assert_eq!(w.mad(), 2.0);
        w.push(4.0); // [9, 3, 7, 2, 4] -> sorted [2,3,4,7,9], median 4, devs [2,1,0,3,5] -> 2
        assert_eq!(w.median(), 4.0);
        assert_eq!(w.mad(), 2.0);
    }

    #[test]
    fn mad_even_window() {
        let mut w = MedianWindow::new(4);
        for x in [1.0, 2.0, 3.0, 10.0] {
            w.push(x);
        }
        assert_eq!(w.median(), 2.5);
        // deviations [1.5, 0.5, 0.5, 7.5] -> sorted [0.5, 0.5, 1.5, 7.5] -> median 1.0
        assert_eq!(w.mad(), 1.0);
    }

    #[test]
    fn flat_series_still_has_a_band() {
        let cfg = BaselineConfig::default();
        let mut b = StreamingBaseline::new(&cfg);
        for i in 0..100 {
            b.update(i * 60_000, 5.0, &cfg);
        }
        let band = b.band(100 * 60_000, &cfg).unwrap();
        assert_eq!(band.expected, 5.0);
        assert!(band.sigma > 0.0);
        assert!(band.score(10.0) > 0.99);
    }

    #[test]
    fn no_band_before_min_samples() {
        let cfg = BaselineConfig::default();
        let mut b = StreamingBaseline::new(&cfg);
        for i in 0..(cfg.min_samples as i64 - 1) {
            b.update(i * 60_000, 1.0, &cfg);
        }
        assert!(b.band(0, &cfg).is_none());
    }

    /// A daily cycle: after a few days the evening peak is expected, not anomalous.
    #[test]
    fn seasonal_slots_learn_a_daily_peak() {
        let cfg = BaselineConfig::default();
        let mut b = StreamingBaseline::new(&cfg);
        let step = 5 * 60_000;
        let profile = |ts: i64| {
            let h = (ts.rem_euclid(DAY_MS)) as f64 / HOUR_MS as f64;
            100.0 + 80.0 * (-((h - 19.0) / 2.0).powi(2)).exp()
        };
        let days = 5;
        for i in 0..(days * DAY_MS / step) {
            let ts = i * step;
            b.update(ts, profile(ts), &cfg);
        }
        let peak = days * DAY_MS + 19 * HOUR_MS;
        let band = b.band(peak, &cfg).unwrap();
        assert_eq!(band.model, BandModel::SeasonalSlots);
        assert!((band.expected - profile(peak)).abs() < 10.0, "{band:?}");
        assert!(band.score(profile(peak)) < 0.9);
        // Twice the usual peak is still an anomaly.
        assert!(band.score(2.0 * profile(peak)) > 0.99);
    }

    #[test]
    fn clipping_limits_what_an_incident_teaches() {
        let cfg = BaselineConfig::default();
        let mut b = StreamingBaseline::new(&cfg);
        for i in 0..200 {
            b.update(i * 60_000, 10.0 + (i % 3) as f64, &cfg);
        }
        for i in 200..210 {
            b.update(i * 60_000, 1000.0, &cfg);
        }
        let band = b.band(210 * 60_000, &cfg).unwrap();
        assert!(band.expected < 20.0, "{band:?}");
    }

    #[test]
    fn erf_is_accurate() {
        assert!((erf(1.0) - 0.842_700_79).abs() < 1e-6);
        assert!((erf(-0.5) + 0.520_499_88).abs() < 1e-6);
        assert!(erf(0.0).abs() < 1e-9);
    }
}
