//! Resolving a rule's signal to a series and reading the window's evidence: what was observed,
//! what the baseline expected over the same window, and how unusual the difference is.
//!
//! A *signal* is what a rule reads (the rule language's `signal:` key, a [`SignalSpec`]: a
//! metric's statistic over a window); the *evidence* is what reading it at a decision time
//! gives: the window's [`SignalView`] and its [`BaselineView`], or why it is [`Missing`].

use serde::Serialize;

use crate::baseline::BandModel;
use crate::quantile::sorted_quantile;
use crate::store::{Series, SeriesStore};

/// How the window's points are reduced to one observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Mean,
    Max,
    Min,
    Last,
}

/// What a rule asks for: a metric's statistic over a window ending at the decision time.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignalSpec {
    pub metric: String,
    #[serde(default = "default_statistic")]
    pub statistic: String,
    pub window_s: f64,
    #[serde(default = "default_agg")]
    pub agg: Aggregation,
    /// History (points) a series needs before its baseline may be used.
    #[serde(default = "default_min_history")]
    pub min_history: u64,
    /// At most the last `points` points up to the decision time, whatever their spacing
    /// (a window in points suits series scraped every minute and every hour alike). With a
    /// positive `window_s` too, only points inside that window count; `window_s <= 0` means
    /// no time bound.
    #[serde(default)]
    pub points: Option<u64>,
    /// `signal.where`: a CEL condition over `series` (the candidate's attributes) that the
    /// series must satisfy; compiled and applied by `rules`.
    #[serde(default, rename = "where")]
    pub where_expr: Option<String>,
    /// `baseline.model`: which baselines may judge the window's points (default: any).
    #[serde(default)]
    pub model: ModelFilter,
    /// `baseline.k`: the band's half-width in sigmas for this rule (default: the store's).
    #[serde(default)]
    pub band_k: Option<f64>,
}

/// `baseline.model` in a rule: the baselines whose judgement of a point the rule accepts.
/// Each point is judged when it arrives, by a fresh fitted band when the series has one and by
/// the streaming band otherwise; a rule that needs one kind reads only the points it judged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(from = "String")]
pub enum ModelFilter {
    /// Whichever baseline judged each point (`auto`).
    #[default]
    Any,
    /// A fitted seasonal model (`fitted`: `statsmodels.*`).
    Fitted,
    /// The streaming baseline (`streaming`: `streaming.*`).
    Streaming,
    /// One model by name, e.g. `statsmodels.stl` or `streaming.hour_of_day`.
    Named(String),
}

impl From<String> for ModelFilter {
    fn from(s: String) -> Self {
        match s.as_str() {
            "" | "auto" => ModelFilter::Any,
            "fitted" => ModelFilter::Fitted,
            "streaming" => ModelFilter::Streaming,
            _ => ModelFilter::Named(s),
        }
    }
}

impl ModelFilter {
    pub fn accepts(&self, model: BandModel) -> bool {
        match self {
            ModelFilter::Any => true,
            ModelFilter::Fitted => matches!(model, BandModel::Fitted(_)),
            ModelFilter::Streaming => !matches!(model, BandModel::Fitted(_)),
            ModelFilter::Named(name) => model.name() == name,
        }
    }

    fn describe(&self) -> &str {
        match self {
            ModelFilter::Any => "auto",
            ModelFilter::Fitted => "fitted",
            ModelFilter::Streaming => "streaming",
            ModelFilter::Named(name) => name,
        }
    }
}

fn default_statistic() -> String {
    "value".into()
}
fn default_agg() -> Aggregation {
    Aggregation::Mean
}
fn default_min_history() -> u64 {
    30
}

/// `signal` in CEL.
#[derive(Debug, Clone, Serialize)]
pub struct SignalView {
    pub metric: String,
    pub statistic: String,
    pub series: std::collections::BTreeMap<String, String>,
    pub window_s: f64,
    pub samples: u64,
    pub observed: f64,
    pub mean: f64,
    pub max: f64,
    pub min: f64,
    pub last: f64,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// `baseline` in CEL.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineView {
    pub model: String,
    pub freshness_s: f64,
    /// Points the baseline had learned from before the window.
    pub history: u64,
    pub ready: bool,
    pub expected: f64,
    pub sigma: f64,
    pub lower: f64,
    pub upper: f64,
    /// (observed - expected) / sigma.
    pub z: f64,
    /// The per-point anomaly score (causal, in [0, 1]; `docs/baselines.md`) of the window's
    /// latest judged point: what `referee replay` writes in its `score` column. One alert per
    /// episode: it is 0 on a point that does not exceed every raw anomaly of the previous 288.
    pub score: f64,
    /// The latest judged point's raw anomaly, before that de-duplication: stays high while an
    /// excursion lasts.
    pub raw_score: f64,
    /// Largest per-point score in the window.
    pub max_point_score: f64,
    /// Largest raw anomaly in the window: how far out its worst point was, whether or not
    /// an earlier point of the same excursion already raised the alert.
    pub max_raw_score: f64,
    /// Largest and smallest per-point z, `(value - expected) / sigma`, each point against the
    /// band it was judged with when it arrived (not the window's mean band).
    pub max_z: f64,
    pub min_z: f64,
    /// Mean per-point |z| over the window: how well the band fits the recent points. About 0.8
    /// for a calibrated band (E|z| of a normal); much lower means the band is too wide for
    /// them to say much, much higher that they keep leaving it.
    pub mean_abs_z: f64,
    /// Mean per-point z over the window (signed): a sustained shift, which a point-wise test
    /// misses, shows here.
    pub mean_z: f64,
    /// Median per-point z over the window: above c, at least half the points sit more than
    /// cσ on the high side (persistence; a single spike does not move it).
    pub median_z: f64,
    /// The series' own recent |z|: quantiles of the per-point |z| of the points in the ring
    /// (the last `ring_capacity` points stored) *before* the window that had a band, and how
    /// many there were. They calibrate z per series: a 4σ point is routine on a series whose
    /// p99 is 6. NaN when there is no such point. Computed at read time from the ring.
    pub prior_points: u64,
    pub prior_abs_z_p50: f64,
    pub prior_abs_z_p90: f64,
    pub prior_abs_z_p99: f64,
    pub prior_abs_z_p995: f64,
    /// Calibrated evidence (`docs/baselines.md`, "Calibrated evidence"): conformal p-values of
    /// the window against the series' own earlier windows in the ring. The window's score is
    /// its highest per-point z (`p_up`) or its lowest (`p_down`, negated); each earlier run of
    /// as many judged points gives one score the same way, and the p-value is the share of
    /// them at least as extreme (ties count half, plus one for the window itself). Small
    /// means rare *for this series*: the same threshold holds on a smooth series, a quantised
    /// counter or a min-max scaled one. NaN when there is no earlier window.
    pub prior_windows: u64,
    pub p_up: f64,
    pub p_down: f64,
    /// Two-sided: `min(1, 2 * min(p_up, p_down))`.
    pub p_value: f64,
    /// The same for the level itself: the share of the ring's earlier values at least as high
    /// as the window's highest (`level_p_up`), or as low as its lowest (`level_p_down`). A
    /// jump to a level the series often sits at has a large level p-value, however far the
    /// band was from it.
    pub level_p_up: f64,
    pub level_p_down: f64,
    /// observed / expected (0 when expected is 0).
    pub ratio: f64,
    /// Quantiles of every value the series' baseline has learned (DDSketch, 1% relative
    /// accuracy), NaN before any point.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Why evidence could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    NoSeries,
    NoPointsInWindow,
    HistoryTooShort {
        have: u64,
        need: u64,
    },
    /// Points were judged, but none by the kind of baseline the rule asks for.
    ModelUnavailable {
        want: String,
        have: String,
    },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NoSeries => write!(f, "no series matches the signal and subject"),
            Missing::NoPointsInWindow => write!(f, "no points in the window"),
            Missing::HistoryTooShort { have, need } => {
                write!(f, "baseline history too short ({have} of {need} points)")
            }
            Missing::ModelUnavailable { want, have } => write!(
                f,
                "no point in the window was judged by a `{want}` baseline (they were judged by {have})"
            ),
        }
    }
}

/// Reads the evidence for `spec` about `subject` over the window ending at `at_ms`.
pub fn read(
    store: &SeriesStore,
    spec: &SignalSpec,
    subject: &[(String, String)],
    at_ms: i64,
) -> Result<(SignalView, BaselineView), Missing> {
    read_where(store, spec, subject, at_ms, &|_| true)
}

/// `read`, among the series `accept` keeps (the rule's `signal.where`).
pub fn read_where(
    store: &SeriesStore,
    spec: &SignalSpec,
    subject: &[(String, String)],
    at_ms: i64,
    accept: &dyn Fn(&Series) -> bool,
) -> Result<(SignalView, BaselineView), Missing> {
    let series = resolve(store, spec, subject, accept)?;
    window(
        series,
        spec,
        at_ms,
        spec.band_k.unwrap_or(store.config.baseline.band_k),
    )
}

/// The series `spec` reads for `subject` (the first `accept` keeps), marked as read.
pub fn resolve<'s>(
    store: &'s SeriesStore,
    spec: &SignalSpec,
    subject: &[(String, String)],
    accept: &dyn Fn(&Series) -> bool,
) -> Result<&'s Series, Missing> {
    let found = store.find(&spec.metric, &spec.statistic, subject);
    let series = found
        .into_iter()
        .find(|s| accept(s))
        .ok_or(Missing::NoSeries)?;
    store.touch(series);
    Ok(series)
}

pub(crate) fn window(
    series: &Series,
    spec: &SignalSpec,
    at_ms: i64,
    band_k: f64,
) -> Result<(SignalView, BaselineView), Missing> {
    let start = if spec.points.is_some() && spec.window_s <= 0.0 {
        i64::MIN
    } else {
        at_ms - (spec.window_s * 1000.0) as i64
    };
    let mut points: Vec<_> = series
        .ring
        .iter()
        .filter(|s| s.ts_ms > start && s.ts_ms <= at_ms)
        .collect();
    if let Some(k) = spec.points {
        let keep = (k as usize).min(points.len());
        points.drain(..points.len() - keep);
    }
    if points.is_empty() {
        return Err(Missing::NoPointsInWindow);
    }
    let n = points.len() as f64;
    let mean = points.iter().map(|s| s.value).sum::<f64>() / n;
    let max = points
        .iter()
        .map(|s| s.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let min = points.iter().map(|s| s.value).fold(f64::INFINITY, f64::min);
    let last = points.last().map(|s| s.value).unwrap_or(f64::NAN);
    let observed = match spec.agg {
        Aggregation::Mean => mean,
        Aggregation::Max => max,
        Aggregation::Min => min,
        Aggregation::Last => last,
    };
    // History before the window: everything the baseline learned minus the window's points.
    let history = series.baseline.samples.saturating_sub(points.len() as u64);
    let signal = SignalView {
        metric: series.metric().to_string(),
        statistic: series.statistic().to_string(),
        series: series
            .attrs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        window_s: spec.window_s,
        samples: points.len() as u64,
        observed,
        mean,
        max,
        min,
        last,
        start_ms: points.first().map(|s| s.ts_ms).unwrap_or(start),
        end_ms: points.last().map(|s| s.ts_ms).unwrap_or(at_ms),
    };
    if history < spec.min_history {
        return Err(Missing::HistoryTooShort {
            have: history,
            need: spec.min_history,
        });
    }
    let judged: Vec<_> = points
        .iter()
        .filter(|s| s.model.is_some_and(|m| spec.model.accepts(m)))
        .collect();
    if judged.is_empty() {
        let mut have: Vec<&str> = points
            .iter()
            .filter_map(|s| s.model)
            .map(|m| m.name())
            .collect();
        if have.is_empty() {
            return Err(Missing::HistoryTooShort {
                have: history,
                need: spec.min_history,
            });
        }
        have.sort_unstable();
        have.dedup();
        return Err(Missing::ModelUnavailable {
            want: spec.model.describe().to_string(),
            have: have.join(", "),
        });
    }
    let m = judged.len() as f64;
    let expected = judged.iter().map(|s| s.expected).sum::<f64>() / m;
    let sigma = judged.iter().map(|s| s.sigma).sum::<f64>() / m;
    let z = (observed - expected) / sigma;
    let point_z: Vec<f64> = judged
        .iter()
        .map(|s| (s.value - s.expected) / s.sigma)
        .collect();
    // The ring's points before the window: their z, each against its own band (in time
    // order), and their values.
    let first_ts = points.first().map_or(i64::MIN, |s| s.ts_ms);
    let before = || series.ring.iter().take_while(|s| s.ts_ms < first_ts);
    let prior_z: Vec<f64> = before()
        .filter(|s| s.model.is_some())
        .map(|s| (s.value - s.expected) / s.sigma)
        .filter(|z| z.is_finite())
        .collect();
    let prior_values: Vec<f64> = before().map(|s| s.value).collect();
    let mut prior: Vec<f64> = prior_z.iter().map(|z| z.abs()).collect();
    prior.sort_unstable_by(f64::total_cmp);
    let calibrated = calibrate(&point_z, &prior_z, &points, &prior_values);
    let model = judged
        .last()
        .and_then(|s| s.model)
        .map(|m| m.name())
        .unwrap_or("none");
    // Freshness: the age of the fitted band when one judged the window, else of the data.
    let fitted_at = series
        .artifact
        .as_ref()
        .filter(|a| a.model.name() == model)
        .map(|a| a.fitted_at_ms);
    // The sketch starts when a rule first reads the series; until then, the recent window.
    let q = |p: f64| {
        series
            .baseline
            .quantile(p)
            .or_else(|| series.baseline.window_quantile(p))
            .unwrap_or(f64::NAN)
    };
    let baseline = BaselineView {
        model: model.to_string(),
        freshness_s: ((at_ms - fitted_at.unwrap_or(signal.end_ms)).max(0) as f64) / 1000.0,
        history,
        ready: true,
        expected,
        sigma,
        lower: expected - band_k * sigma,
        upper: expected + band_k * sigma,
        z,
        score: judged.last().map_or(0.0, |s| s.score as f64),
        raw_score: judged.last().map_or(0.0, |s| s.raw as f64),
        max_point_score: judged.iter().map(|s| s.score as f64).fold(0.0, f64::max),
        max_raw_score: judged.iter().map(|s| s.raw as f64).fold(0.0, f64::max),
        max_z: point_z.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        min_z: point_z.iter().copied().fold(f64::INFINITY, f64::min),
        mean_abs_z: point_z.iter().map(|z| z.abs()).sum::<f64>() / m,
        mean_z: point_z.iter().sum::<f64>() / m,
        median_z: {
            let mut sorted = point_z.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            sorted_quantile(&sorted, 0.5)
        },
        prior_points: prior.len() as u64,
        prior_abs_z_p50: sorted_quantile(&prior, 0.5),
        prior_abs_z_p90: sorted_quantile(&prior, 0.9),
        prior_abs_z_p99: sorted_quantile(&prior, 0.99),
        prior_abs_z_p995: sorted_quantile(&prior, 0.995),
        prior_windows: calibrated.windows,
        p_up: calibrated.p_up,
        p_down: calibrated.p_down,
        p_value: two_sided(calibrated.p_up, calibrated.p_down),
        level_p_up: calibrated.level_p_up,
        level_p_down: calibrated.level_p_down,
        ratio: if expected != 0.0 {
            observed / expected
        } else {
            0.0
        },
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
    };
    Ok((signal, baseline))
}

/// The conformal p-values of a window (see `BaselineView::p_up`).
struct Calibrated {
    windows: u64,
    p_up: f64,
    p_down: f64,
    level_p_up: f64,
    level_p_down: f64,
}

fn calibrate(
    window_z: &[f64],
    prior_z: &[f64],
    points: &[&crate::store::Sample],
    prior_values: &[f64],
) -> Calibrated {
    let m = window_z.len();
    let high = window_z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let low = window_z.iter().copied().fold(f64::INFINITY, f64::min);
    let (mut up, mut down) = (Rank::default(), Rank::default());
    if m > 0 && prior_z.len() >= m {
        for run in prior_z.windows(m) {
            let (hi, lo) = run
                .iter()
                .fold((f64::NEG_INFINITY, f64::INFINITY), |(h, l), z| {
                    (h.max(*z), l.min(*z))
                });
            up.add_within(hi, high, Z_RESOLUTION);
            down.add_within(-lo, -low, Z_RESOLUTION);
        }
    }
    let top = points
        .iter()
        .map(|s| s.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let bottom = points.iter().map(|s| s.value).fold(f64::INFINITY, f64::min);
    let (mut level_up, mut level_down) = (Rank::default(), Rank::default());
    for v in prior_values.iter().filter(|v| v.is_finite()) {
        level_up.add(*v, top);
        level_down.add(-v, -bottom);
    }
    Calibrated {
        windows: up.n,
        p_up: up.p_value(),
        p_down: down.p_value(),
        level_p_up: level_up.p_value(),
        level_p_down: level_down.p_value(),
    }
}

/// Scores closer than this are ties. It is the resolution of a z-score: a band estimated from a
/// few hundred points moves by more than a twentieth of a sigma from one point to the next, so a
/// window that beats every earlier one by less is not rarer than they are. Without it, a
/// perfectly periodic series, whose every window repeats the last one, scores p = 1/(n+1)
/// because the band converges by a hair each cycle.
const Z_RESOLUTION: f64 = 0.05;

/// Counts how many earlier scores are above and equal to the one being judged: its conformal
/// p-value with ties split (mid-rank), so that a quantised series with a handful of distinct
/// values is neither always rare nor never rare.
#[derive(Default)]
struct Rank {
    n: u64,
    above: u64,
    ties: u64,
}

impl Rank {
    fn add(&mut self, earlier: f64, judged: f64) {
        self.add_within(earlier, judged, 0.0);
    }

    /// As `add`, with scores within `tolerance` of the judged one counted as ties.
    fn add_within(&mut self, earlier: f64, judged: f64, tolerance: f64) {
        self.n += 1;
        if (earlier - judged).abs() <= tolerance {
            self.ties += 1;
        } else if earlier > judged {
            self.above += 1;
        }
    }

    fn p_value(&self) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        (self.above as f64 + 0.5 * (self.ties as f64 + 1.0)) / (self.n as f64 + 1.0)
    }
}

/// The two-sided p-value of two one-sided ones.
pub fn two_sided(p_up: f64, p_down: f64) -> f64 {
    (2.0 * p_up.min(p_down)).min(1.0)
}

#[cfg(test)]
#[path = "evidence/calibration_tests.rs"]
mod calibration_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    fn spec(window_s: f64) -> SignalSpec {
        SignalSpec {
            metric: "m".into(),
            statistic: "value".into(),
            window_s,
            agg: Aggregation::Mean,
            min_history: 30,
            points: None,
            where_expr: None,
            model: Default::default(),
            band_k: None,
        }
    }

    #[test]
    fn window_compares_observed_with_what_was_expected() {
        let mut store = SeriesStore::new(StoreConfig::default());
        for i in 0..100 {
            store
                .push(
                    "m",
                    "value",
                    &[("service.name", "a")],
                    i * 60_000,
                    10.0 + (i % 2) as f64,
                )
                .unwrap();
        }
        for i in 100..105 {
            store
                .push("m", "value", &[("service.name", "a")], i * 60_000, 40.0)
                .unwrap();
        }
        let subject = vec![("service.name".to_string(), "a".to_string())];
        let (sig, base) = read(&store, &spec(300.0), &subject, 104 * 60_000).unwrap();
        assert_eq!(sig.samples, 5);
        assert_eq!(sig.observed, 40.0);
        assert!((base.expected - 10.5).abs() < 1.5, "{base:?}");
        // One alert per episode: the jump's first point scores, the four that hold it do not,
        // though their raw anomaly stays high.
        assert!(base.max_point_score > 0.9, "{base:?}");
        assert_eq!(base.score, 0.0);
        assert!(base.raw_score > 0.9, "{base:?}");
        assert!(base.max_raw_score >= base.raw_score && base.max_raw_score >= base.max_point_score);
        assert_eq!(base.history, 100);
    }

    #[test]
    fn a_window_in_points_and_per_point_z() {
        let mut store = SeriesStore::new(StoreConfig::default());
        for i in 0..100 {
            let v = 10.0 + (i % 2) as f64;
            store
                .push("m", "value", &[("service.name", "a")], i * 3_600_000, v)
                .unwrap();
        }
        store
            .push(
                "m",
                "value",
                &[("service.name", "a")],
                100 * 3_600_000,
                40.0,
            )
            .unwrap();
        let subject = vec![("service.name".to_string(), "a".to_string())];
        let mut s = spec(0.0);
        s.points = Some(6);
        let (sig, base) = read(&store, &s, &subject, 100 * 3_600_000).unwrap();
        assert_eq!(
            sig.samples, 6,
            "hourly points: six of them whatever the time span"
        );
        assert_eq!(sig.max, 40.0);
        assert!(base.max_z > 3.0 && base.min_z < 3.0, "{base:?}");
        assert!(base.mean_abs_z > 0.0 && base.mean_abs_z < base.max_z);
        // With a time bound too, only the points inside it count.
        s.window_s = 7_200.0;
        let (sig, _) = read(&store, &s, &subject, 100 * 3_600_000).unwrap();
        assert_eq!(sig.samples, 2);
    }

    #[test]
    fn prior_abs_z_calibrates_against_the_series_own_history() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let attrs = [("service.name", "a")];
        // Alternating 10/11 with a large spike every 20th point: 5% of points are routine spikes.
        for i in 0..300 {
            let v = if i % 20 == 19 {
                30.0
            } else {
                10.0 + (i % 2) as f64
            };
            store.push("m", "value", &attrs, i * 60_000, v).unwrap();
        }
        let subject = vec![("service.name".to_string(), "a".to_string())];
        let mut s = spec(0.0);
        s.points = Some(6);
        let (_, base) = read(&store, &s, &subject, 299 * 60_000).unwrap();
        let series = store.find("m", "value", &subject)[0];
        let before: Vec<f64> = series
            .ring
            .iter()
            .take(series.ring.len() - 6)
            .filter(|p| p.model.is_some())
            .map(|p| ((p.value - p.expected) / p.sigma).abs())
            .collect();
        assert_eq!(base.prior_points, before.len() as u64);
        // Interpolated between ranks: at most one point more than the exact share lies above.
        let n = before.len() as f64;
        let above = |q: f64| before.iter().filter(|z| **z > q).count() as f64;
        assert!(above(base.prior_abs_z_p50) <= 0.5 * n + 1.0, "{base:?}");
        assert!(above(base.prior_abs_z_p90) <= 0.1 * n + 1.0);
        assert!(above(base.prior_abs_z_p99) <= 0.01 * n + 1.0);
        assert!(base.prior_abs_z_p50 <= base.prior_abs_z_p90);
        assert!(base.prior_abs_z_p90 <= base.prior_abs_z_p99);
        assert!(base.prior_abs_z_p99 <= base.prior_abs_z_p995);
        // The spikes are routine: the p99 is far beyond the band's 3σ edge.
        assert!(base.prior_abs_z_p99 > 3.0, "{base:?}");
        assert!(base.mean_z.abs() <= base.mean_abs_z);
        assert!(base.median_z >= base.min_z && base.median_z <= base.max_z);
        assert!(sorted_quantile::<f64>(&[], 0.5).is_nan());
        assert_eq!(sorted_quantile(&[1.0, 3.0], 0.5), 2.0);
    }

    #[test]
    fn missing_evidence_is_reported() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let subject = vec![("service.name".to_string(), "a".to_string())];
        assert_eq!(
            read(&store, &spec(60.0), &subject, 0).unwrap_err(),
            Missing::NoSeries
        );
        for i in 0..5 {
            store
                .push("m", "value", &[("service.name", "a")], i * 60_000, 1.0)
                .unwrap();
        }
        assert!(matches!(
            read(&store, &spec(120.0), &subject, 4 * 60_000),
            Err(Missing::HistoryTooShort { .. })
        ));
        assert_eq!(
            read(&store, &spec(60.0), &subject, 100 * 60_000).unwrap_err(),
            Missing::NoPointsInWindow
        );
    }
}
