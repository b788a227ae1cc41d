//! Streaming baselines: what a series usually looks like, updated in O(1)/O(w) per point.
//!
//! Each series keeps these estimators and the band is taken from the best one that has
//! enough history:
//! * a weekly model: the hour-of-day profile plus an offset per weekday, once the series spans
//!   `week_min_weeks` weeks (a quiet Sunday is not an outage);
//! * hour-of-day seasonal slots (mean/variance per UTC hour, interpolated between slot
//!   centres, plus a slowly adapting level offset) once every slot touched has been seen on
//!   `season_min_days` distinct days: this is what tells an evening peak from an incident;
//! * a rolling median with a MAD scale (floored, because MAD is 0 on flat or quantised series)
//!   otherwise;
//! * fast and slow EWMA mean/variance (the slow variance floors the MAD scale);
//! * for series that rules read, a DDSketch of the learned values (quantiles).
//!
//! Each point also gets a causal anomaly score (see `score.rs`, `update_with_band` and
//! `episode_score`).
//! The whole state stays under 1 KiB per series (a test checks it).
//!
//! Points far outside the band update the estimators with a value clipped to the band edge,
//! so an incident does not teach the baseline that the incident is normal.
//!
//! Why this file is long: it is a few lines over the crate's ~800 because the estimators and
//! the baseline that picks among them are one unit, and split they would share most of their
//! private state. The tests are in `baseline/tests.rs`.

use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use crate::quantile::sorted_quantile;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Most recent z values kept for the level-shift term (`BaselineConfig::shift_points` is
/// capped at this).
const RECENT_Z: usize = 12;

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
    /// Weeks of history (span, and distinct days per hour-of-week slot) before the
    /// hour-of-week band is preferred to the hour-of-day one.
    pub week_min_weeks: u32,
    /// A point's anomaly score is kept only if its raw score exceeds every raw score of the
    /// previous `episode_points` points: one alert per episode, not one per point.
    pub episode_points: usize,
    /// Points (this one included) whose mean z counts as a level shift: `raw` uses
    /// `max(|z|, shift_weight * |mean z|)`, so a shift held for a while scores like a spike.
    pub shift_points: usize,
    pub shift_weight: f64,
    /// A point outside the series' all-time range counts `novelty_boost` times its
    /// `max(|z|, shift term)` (see `score.rs`).
    pub novelty_boost: f64,
    /// A gap longer than this is counted.
    pub gap_s: f64,
    /// A gap longer than this resets the short-memory estimators (median window, fast EWMA,
    /// level offset, episode queue): what came before is stale. Seasonal slots are kept.
    pub gap_reset_s: f64,
    /// Relative accuracy of the per-series quantile sketch.
    pub sketch_alpha: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            fast_alpha: 0.3,
            slow_alpha: 0.02,
            median_window: 48,
            min_samples: 30,
            season_min_days: 3,
            season_memory_days: 7.0,
            band_k: 3.0,
            clip_k: 4.0,
            level_tau_s: 6.0 * 3600.0,
            week_min_weeks: 2,
            episode_points: 288,
            shift_points: 12,
            shift_weight: 2.0,
            novelty_boost: 3.5,
            gap_s: 6.0 * 3600.0,
            gap_reset_s: 24.0 * 3600.0,
            sketch_alpha: 0.01,
        }
    }
}

/// Which estimator produced a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandModel {
    WeeklySlots,
    SeasonalSlots,
    MedianMad,
    /// A fitted band artifact handed over from Python (see `band.rs`).
    Fitted(crate::band::FittedModel),
}

impl BandModel {
    pub fn name(self) -> &'static str {
        match self {
            BandModel::WeeklySlots => "streaming.hour_of_week",
            BandModel::SeasonalSlots => "streaming.hour_of_day",
            BandModel::MedianMad => "streaming.median_mad",
            BandModel::Fitted(m) => m.name(),
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

    /// Raw per-point anomaly in [0, 1): |z| / (|z| + band_k), which is 0.5 at the band's edge
    /// and, unlike `score`, never saturates, so extreme points still rank above large ones.
    pub fn raw_anomaly(&self, value: f64, band_k: f64) -> f64 {
        let z = self.z(value).abs();
        if z.is_finite() {
            z / (z + band_k.max(1e-9))
        } else {
            1.0
        }
    }
}

/// Exponentially weighted mean and variance (West's incremental form). 16 bytes: a NaN mean
/// marks "no value yet".
#[derive(Debug, Clone, Copy)]
pub struct Ewm {
    pub mean: f64,
    pub var: f64,
}

impl Default for Ewm {
    fn default() -> Self {
        Ewm {
            mean: f64::NAN,
            var: 0.0,
        }
    }
}

impl Ewm {
    pub fn initialised(&self) -> bool {
        !self.mean.is_nan()
    }

    pub fn update(&mut self, x: f64, alpha: f64) {
        if !self.initialised() {
            self.mean = x;
            self.var = 0.0;
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

/// Rolling median and MAD over the last `capacity` values (at most 255), in 5 bytes per value.
/// Only the sorted values are kept, each with an age tag (its insertion number modulo the
/// capacity): the oldest value is the one whose tag comes next, so no second, insertion-order
/// copy is needed. Values are single precision: their rounding (about 6e-8 relative) is far
/// below the band's own floor of 1e-3 of the expected value. Each update is a binary search,
/// a scan of `capacity` bytes and a short memmove.
#[derive(Debug, Clone, Default)]
pub struct MedianWindow {
    /// `capacity` slots, the first `len` in use (a box, not a `Vec`: 8 bytes less per series).
    sorted: Box<[f32]>,
    tags: Box<[u8]>,
    len: u8,
    next: u8,
    capacity: u8,
}

impl MedianWindow {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 255);
        MedianWindow {
            sorted: vec![0.0; capacity].into_boxed_slice(),
            tags: vec![0; capacity].into_boxed_slice(),
            len: 0,
            next: 0,
            capacity: capacity as u8,
        }
    }

    pub fn push(&mut self, x: f64) {
        let x = x as f32;
        let n = self.len as usize;
        if n == self.capacity as usize {
            // The oldest value carries the tag the new one is about to take.
            if let Some(i) = self.tags[..n].iter().position(|t| *t == self.next) {
                self.sorted.copy_within(i + 1..n, i);
                self.tags.copy_within(i + 1..n, i);
                self.len -= 1;
            }
        }
        let n = self.len as usize;
        let i = self.sorted().partition_point(|v| *v < x);
        self.sorted.copy_within(i..n, i + 1);
        self.sorted[i] = x;
        self.tags.copy_within(i..n, i + 1);
        self.tags[i] = self.next;
        self.len += 1;
        self.next = (self.next + 1) % self.capacity;
    }

    /// The sorted values (for quantiles of the recent window).
    pub fn sorted(&self) -> &[f32] {
        &self.sorted[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn median(&self) -> f64 {
        sorted_quantile(self.sorted(), 0.5)
    }

    /// Median absolute deviation, found by walking outwards from the median of the sorted
    /// window (O(w), no allocation).
    pub fn mad(&self) -> f64 {
        let n = self.len();
        if n == 0 {
            return 0.0;
        }
        let m = self.median();
        // Split point: sorted[..split] < m <= sorted[split..].
        let split = self.sorted().partition_point(|v| (*v as f64) < m);
        let (mut lo, mut hi) = (split as isize - 1, split);
        let mut take = |k: usize| -> f64 {
            // Returns the k-th smallest deviation (0-based) by merging both sides.
            let mut last = 0.0;
            for _ in 0..=k {
                let dl = if lo >= 0 {
                    m - self.sorted[lo as usize] as f64
                } else {
                    f64::INFINITY
                };
                let dh = if hi < n {
                    self.sorted[hi] as f64 - m
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

/// Hour-of-day slots, stored column-wise in single precision (264 bytes for 24 slots):
/// mean and variance per UTC hour, the points seen (saturating: they only matter while the
/// slot is young), and on how many distinct days. Points arrive in time order, so a point
/// starts a new day for its slot exactly when the previous point was in another clock hour:
/// no per-slot date needs to be kept.
#[derive(Debug, Clone)]
struct DaySlots {
    mean: [f32; 24],
    var: [f32; 24],
    points: [u16; 24],
    days: [u8; 24],
}

impl Default for DaySlots {
    fn default() -> Self {
        DaySlots {
            mean: [f32::NAN; 24],
            var: [0.0; 24],
            points: [0; 24],
            days: [0; 24],
        }
    }
}

/// Counts the distinct days a slot has seen (saturating at 255, far above any minimum): a
/// point whose `period` (clock hour, or day) differs from the previous point's is a new visit.
fn count_day(days: &mut u8, prev_ts: i64, ts_ms: i64, period_ms: i64) {
    if prev_ts == i64::MIN || prev_ts.div_euclid(period_ms) != ts_ms.div_euclid(period_ms) {
        *days = days.saturating_add(1);
    }
}

impl DaySlots {
    /// Adds `x` to slot `h` with a plain mean at first, then an exponential memory of about
    /// `memory_days` days of that hour's points. Returns the slot mean before the update.
    fn update(&mut self, h: usize, ts_ms: i64, prev_ts: i64, x: f64, memory_days: f64) -> f64 {
        self.points[h] = self.points[h].saturating_add(1);
        count_day(&mut self.days[h], prev_ts, ts_ms, HOUR_MS);
        let per_day = self.points[h] as f64 / self.days[h].max(1) as f64;
        let effective = (self.points[h] as f64).min(per_day * memory_days);
        let mut e = Ewm {
            mean: self.mean[h] as f64,
            var: self.var[h] as f64,
        };
        let before = e.mean;
        e.update(x, 1.0 / effective.max(1.0));
        self.mean[h] = e.mean as f32;
        self.var[h] = e.var as f32;
        before
    }
}

/// The weekly part of the baseline: how much each day of the week sits above or below the
/// hour-of-day profile (an offset per weekday, with the spread of the residuals around it).
/// 7 offsets instead of 168 hour-of-week slots: the weekday/weekend level difference that
/// most services show, in 100 bytes per series.
#[derive(Debug, Clone)]
struct Weekdays {
    /// Mean and variance of the residual per weekday, single precision.
    offset: [(f32, f32); 7],
    days: [u8; 7],
    points: [u16; 7],
}

impl Weekdays {
    fn get(&self, d: usize) -> Ewm {
        let (mean, var) = self.offset[d];
        Ewm {
            mean: mean as f64,
            var: var as f64,
        }
    }
}

impl Default for Weekdays {
    fn default() -> Self {
        Weekdays {
            offset: [(f32::NAN, 0.0); 7],
            days: [0; 7],
            points: [0; 7],
        }
    }
}

/// Day of the week of `ts_ms`, 0 = Thursday 1970-01-01 (only consistency matters).
fn weekday(ts_ms: i64) -> usize {
    ts_ms.div_euclid(DAY_MS).rem_euclid(7) as usize
}

/// A DDSketch quantile sketch (the crate's type has no `Debug`).
#[derive(Clone)]
pub struct Sketch(pub DDSketch);

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch({} values)", self.0.count())
    }
}

/// The per-series streaming baseline: under 1 KiB per series with the default window.
#[derive(Debug, Clone)]
pub struct StreamingBaseline {
    pub samples: u64,
    pub fast: Ewm,
    pub slow: Ewm,
    /// Offset of recent values from the seasonal profile (tracks level shifts).
    level: Ewm,
    window: MedianWindow,
    slots: DaySlots,
    /// Weekday offsets, allocated once the series spans a day (most short-lived series never
    /// need them).
    week: Option<Box<Weekdays>>,
    /// Quantiles of the (clipped) learned values, kept for the series rules read (see
    /// `enable_sketch`): a sketch per series would cost more than the rest of the baseline.
    pub sketch: Option<Box<Sketch>>,
    /// The largest raw anomaly among the previous `episode_points` points and its point
    /// number: a cache over the raw anomalies the store keeps in the series' ring (see
    /// `SeriesStore::push`), rescanned only when that maximum leaves the horizon.
    pub episode_max: f32,
    pub episode_max_at: u64,
    /// First point number the episode may look back to (after a reset, the points before it
    /// are still in the ring but no longer count).
    episode_since: u64,
    /// Raw anomaly of the last point added (0 before it had a band).
    pub last_raw: f64,
    /// z of the last points (0 for points without a band), in tenths of sigma clipped to
    /// ±12.7: the level-shift term of the score needs only their mean, so 12 bytes do.
    recent_z: [i8; RECENT_Z],
    recent_pos: u8,
    recent_n: u8,
    /// All-time range of the values, for the novelty term of the score (never reset).
    range: crate::score::Range,
    /// Anomaly score of the last point added (0 before it had a band).
    pub last_score: f64,
    /// Gaps longer than `gap_s`, and those longer than `gap_reset_s` (which reset).
    pub gaps: u32,
    pub resets: u32,
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
            slots: DaySlots::default(),
            week: None,
            sketch: None,
            episode_max: f32::NEG_INFINITY,
            episode_max_at: 0,
            episode_since: 0,
            last_raw: 0.0,
            recent_z: [0; RECENT_Z],
            recent_pos: 0,
            recent_n: 0,
            range: crate::score::Range::default(),
            last_score: 0.0,
            gaps: 0,
            resets: 0,
            first_ts: i64::MIN,
            last_ts: i64::MIN,
        }
    }

    /// Starts a quantile sketch, seeded with `history` (the series' recent values). Called
    /// for series that rules read; from then on every point is added.
    pub fn enable_sketch(&mut self, history: impl Iterator<Item = f64>, cfg: &BaselineConfig) {
        if self.sketch.is_some() {
            return;
        }
        let mut sketch = DDSketch::new(SketchConfig::new(cfg.sketch_alpha, 256, 1e-9));
        for x in history {
            sketch.add(x);
        }
        self.sketch = Some(Box::new(Sketch(sketch)));
    }

    /// The band for a point at `ts_ms`, from the history seen so far, or `None` while the
    /// history is shorter than `min_samples`.
    pub fn band(&self, ts_ms: i64, cfg: &BaselineConfig) -> Option<Band> {
        if self.samples < cfg.min_samples || self.window.is_empty() {
            return None;
        }
        let (expected, sigma, model) = match (self.weekly(ts_ms, cfg), self.seasonal(ts_ms, cfg)) {
            (Some((e, s)), _) => (e, s, BandModel::WeeklySlots),
            (None, Some((e, s))) => (e, s, BandModel::SeasonalSlots),
            (None, None) => {
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

    /// The hour-of-day profile at `ts_ms` (interpolated between slot centres), its variance,
    /// and whether both slots have seen `min_days` days.
    fn profile(&self, ts_ms: i64, min_days: u32) -> Option<(f64, f64)> {
        // Slot h describes the hour [h:00, h+1:00); interpolate between slot centres.
        let pos = (ts_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64) - 0.5;
        let lo = pos.floor();
        let frac = pos - lo;
        let a = (lo as i64).rem_euclid(24) as usize;
        let b = ((lo as i64) + 1).rem_euclid(24) as usize;
        let sl = &self.slots;
        if (sl.days[a] as u32) < min_days || (sl.days[b] as u32) < min_days {
            return None;
        }
        let mean = sl.mean[a] as f64 * (1.0 - frac) + sl.mean[b] as f64 * frac;
        let var = sl.var[a] as f64 * (1.0 - frac) + sl.var[b] as f64 * frac;
        Some((mean, var))
    }

    /// The weekly band: the hour-of-day profile plus this weekday's offset, with the spread
    /// of that weekday's residuals, once the series spans `week_min_weeks` weeks and the
    /// weekday has been seen on that many days.
    fn weekly(&self, ts_ms: i64, cfg: &BaselineConfig) -> Option<(f64, f64)> {
        let week = self.week.as_ref()?;
        let need = cfg.week_min_weeks.max(1);
        if self.last_ts - self.first_ts < need as i64 * WEEK_MS {
            return None;
        }
        let d = weekday(ts_ms);
        let offset = week.get(d);
        if (week.days[d] as u32) < need || !offset.initialised() {
            return None;
        }
        let (profile, _) = self.profile(ts_ms, 1)?;
        Some((profile + offset.mean, offset.std()))
    }

    /// Quantile `q` in [0, 1] of the values learned since the sketch was enabled (within
    /// `sketch_alpha` relative accuracy), or `None` without a sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.as_ref()?.0.quantile(q).ok().flatten()
    }

    /// Quantile `q` of the recent median window (exact, interpolated like every exact quantile:
    /// `crate::quantile`), for series without a sketch.
    pub fn window_quantile(&self, q: f64) -> Option<f64> {
        let s = self.window.sorted();
        (!s.is_empty()).then(|| sorted_quantile(s, q))
    }

    fn seasonal(&self, ts_ms: i64, cfg: &BaselineConfig) -> Option<(f64, f64)> {
        if self.last_ts == i64::MIN
            || self.last_ts - self.first_ts < cfg.season_min_days as i64 * DAY_MS
        {
            return None;
        }
        let (seasonal, var) = self.profile(ts_ms, cfg.season_min_days)?;
        let level = if self.level.initialised() {
            self.level.mean
        } else {
            0.0
        };
        Some((seasonal + level, var.max(0.0).sqrt()))
    }

    /// Adds a point; returns the band it was judged against (before the update).
    pub fn update(&mut self, ts_ms: i64, value: f64, cfg: &BaselineConfig) -> Option<Band> {
        self.update_judged(ts_ms, value, None, None, cfg)
    }

    /// Adds a point, judged against `fitted` (expected, sigma, model) when a fitted band
    /// covers its time and the streaming band otherwise; returns the band used. The fitted
    /// band needs the same minimum history as the streaming one.
    pub fn update_judged(
        &mut self,
        ts_ms: i64,
        value: f64,
        fitted: Option<(f64, f64, BandModel)>,
        history: Option<&mut dyn Iterator<Item = f32>>,
        cfg: &BaselineConfig,
    ) -> Option<Band> {
        if self.last_ts != i64::MIN {
            let gap_s = (ts_ms - self.last_ts) as f64 / 1000.0;
            if gap_s > cfg.gap_s {
                self.gaps = self.gaps.saturating_add(1);
            }
            if gap_s > cfg.gap_reset_s {
                // What the short-memory estimators hold is stale after a long gap.
                self.resets = self.resets.saturating_add(1);
                self.window = MedianWindow::new(cfg.median_window);
                self.fast = Ewm::default();
                self.level = Ewm::default();
                self.episode_max = f32::NEG_INFINITY;
                self.episode_max_at = self.samples;
                // Points before the gap no longer count for the episode or the level shift.
                self.episode_since = self.samples;
                self.recent_z = [0; RECENT_Z];
                self.recent_n = 0;
            }
        }
        let mut band = self.band(ts_ms, cfg);
        if let (Some(_), Some((expected, sigma, model))) = (band, fitted) {
            let sigma = sigma.max(1e-3 * expected.abs()).max(1e-9);
            band = Some(Band {
                expected,
                sigma,
                lower: expected - cfg.band_k * sigma,
                upper: expected + cfg.band_k * sigma,
                model,
            });
        }
        self.update_with_band(ts_ms, value, band, history, cfg);
        band
    }

    /// Adds a point judged against `band` (the streaming band, or a fitted one that covers
    /// the point's time): updates the anomaly score and the estimators.
    pub fn update_with_band(
        &mut self,
        ts_ms: i64,
        value: f64,
        judged: Option<Band>,
        history: Option<&mut dyn Iterator<Item = f32>>,
        cfg: &BaselineConfig,
    ) {
        let novel = self.range.observe(value);
        self.last_score = match judged {
            Some(b) => {
                let z = b.z(value);
                // Mean z of this point and the previous `shift_points - 1`.
                let k = cfg.shift_points.clamp(1, RECENT_Z) - 1;
                let n = (self.recent_n as usize).min(k);
                let sum: f64 = (1..=n)
                    .map(|back| {
                        let i = (self.recent_pos as usize + RECENT_Z - back) % RECENT_Z;
                        self.recent_z[i] as f64 / 10.0
                    })
                    .sum();
                let inputs = crate::score::RawInputs {
                    z,
                    mean_z: (sum + z) / (n as f64 + 1.0),
                    novel,
                };
                crate::score::raw_anomaly(inputs, cfg.shift_weight, cfg.novelty_boost, cfg.band_k)
            }
            None => 0.0,
        };
        self.last_raw = self.last_score;
        let z = judged.map_or(0.0, |b| b.z(value));
        let q = if z.is_finite() {
            (z * 10.0).round().clamp(-127.0, 127.0) as i8
        } else {
            0
        };
        self.recent_z[self.recent_pos as usize] = q;
        self.recent_pos = ((self.recent_pos as usize + 1) % RECENT_Z) as u8;
        self.recent_n = self.recent_n.saturating_add(1).min(RECENT_Z as u8);
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
        if let Some(sketch) = self.sketch.as_mut() {
            sketch.0.add(learned);
        }

        // Weekday offsets: the residual from the hour-of-day profile, per day of the week.
        if self.week.is_none() && self.last_ts - self.first_ts >= DAY_MS {
            self.week = Some(Box::default());
        }
        if let (Some((profile, _)), true) = (self.profile(ts_ms, 1), self.week.is_some()) {
            let learned_weekly = clip(
                self.weekly(ts_ms, cfg)
                    .map(|(e, s)| (e, s.max(1e-3 * e.abs()).max(1e-9))),
            );
            if let Some(week) = self.week.as_mut() {
                let d = weekday(ts_ms);
                week.points[d] = week.points[d].saturating_add(1);
                count_day(&mut week.days[d], prev_ts, ts_ms, DAY_MS);
                // A plain mean at first, then a memory of about `season_memory_days` weeks.
                let per_day = week.points[d] as f64 / week.days[d].max(1) as f64;
                let effective = (week.points[d] as f64).min(per_day * cfg.season_memory_days);
                let mut offset = week.get(d);
                offset.update(learned_weekly - profile, 1.0 / effective.max(1.0));
                week.offset[d] = (offset.mean as f32, offset.var as f32);
            }
        }

        let hour = (ts_ms.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let had = !self.slots.mean[hour].is_nan();
        let seasonal_before = self.slots.update(
            hour,
            ts_ms,
            prev_ts,
            learned_seasonal,
            cfg.season_memory_days,
        );
        if had {
            let dt_s = if prev_ts == i64::MIN {
                0.0
            } else {
                (ts_ms - prev_ts).max(0) as f64 / 1000.0
            };
            let alpha = (1.0 - (-dt_s / cfg.level_tau_s).exp()).clamp(1e-6, 1.0);
            self.level.update(learned_seasonal - seasonal_before, alpha);
        }
        self.last_score = self.episode_score(self.last_raw, history, cfg);
    }

    /// One alert per episode: `raw` counts only if it exceeds every raw anomaly of the
    /// previous `episode_points` points; otherwise the score is 0. The maximum is cached;
    /// when it leaves the horizon, `history` (the raw anomalies of the previous points, newest
    /// first, as the store keeps them in the ring) is rescanned. Without a history (a bare
    /// baseline, in tests) an expired maximum is simply forgotten.
    pub fn episode_score(
        &mut self,
        raw: f64,
        history: Option<&mut dyn Iterator<Item = f32>>,
        cfg: &BaselineConfig,
    ) -> f64 {
        if cfg.episode_points == 0 {
            return raw;
        }
        // This point's number is `samples - 1` (the update has counted it).
        let idx = self.samples.saturating_sub(1);
        let horizon = cfg.episode_points as u64;
        if idx.saturating_sub(self.episode_max_at) > horizon
            || self.episode_max == f32::NEG_INFINITY
        {
            self.episode_max = f32::NEG_INFINITY;
            if let Some(h) = history {
                let usable = idx.saturating_sub(self.episode_since) as usize;
                for (j, r) in h.take(cfg.episode_points.min(usable)).enumerate() {
                    if r > self.episode_max {
                        self.episode_max = r;
                        self.episode_max_at = idx - 1 - j as u64;
                    }
                }
            }
        }
        let prev_max = self.episode_max as f64;
        if raw as f32 >= self.episode_max {
            self.episode_max = raw as f32;
            self.episode_max_at = idx;
        }
        if raw > prev_max {
            raw
        } else {
            0.0
        }
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
mod tests;
