//! The series store: every live series, its recent points and its streaming baseline.
//!
//! A series is (metric, statistic, attributes), where the attributes are the resource's
//! attributes merged with the point's. Each series keeps a bounded ring of recent samples;
//! every sample records the band it was judged against when it arrived, so window queries
//! and replays read causal expectations without recomputing anything.
//!
//! The number of series is capped: points for a new series beyond the cap are rejected and
//! counted, never silently dropped.

use std::collections::VecDeque;

// Series keys come from our own canonical encoding, hashed on every point: FxHash is several
// times faster than SipHash, and flooding is bounded by the series cap anyway.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet, FxHasher};
use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::band::BandArtifact;
use crate::baseline::{BandModel, BaselineConfig, StreamingBaseline};

/// Attributes of a series, sorted by key.
pub type Attributes = Vec<(String, String)>;

/// One stored point with the band it was judged against on arrival.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ts_ms: i64,
    pub value: f64,
    /// Expected value, sigma, and model, or NaN / `None` while the history was too short.
    pub expected: f64,
    pub sigma: f64,
    /// Anomaly score (0 unless the point opened or topped an episode), and the raw anomaly
    /// it came from (kept so the episode maximum can be found again from the ring).
    pub score: f32,
    pub raw: f32,
    pub model: Option<BandModel>,
}

/// A series attribute: the key shared by every series that has it, the value owned.
pub type Attr = (Arc<str>, Box<str>);

#[derive(Debug)]
pub struct Series {
    /// Metric and statistic names are shared by all series of the signal.
    pub metric: Arc<str>,
    pub statistic: Arc<str>,
    /// Sorted by key.
    pub attributes: Box<[Attr]>,
    pub ring: VecDeque<Sample>,
    pub baseline: StreamingBaseline,
    pub out_of_order: u32,
    pub duplicates: u32,
    /// Set when a rule reads the series: its next point starts a quantile sketch.
    pub wants_sketch: AtomicBool,
    /// Set when a rule reads the series, cleared by `take_touched` (the seasonal fitter).
    pub touched: AtomicBool,
    /// The fitted band handed over from Python, if any (see `band.rs`).
    pub artifact: Option<Box<BandArtifact>>,
}

impl Series {
    /// The attributes as string pairs.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The attributes as owned strings (for output).
    pub fn attributes_owned(&self) -> Attributes {
        self.attrs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn is(&self, metric: &str, statistic: &str, attrs: &[(&str, &str)]) -> bool {
        &*self.metric == metric
            && &*self.statistic == statistic
            && self.attributes.len() == attrs.len()
            && self.attrs().zip(attrs).all(|(a, b)| a == *b)
    }
}

/// A vector in fixed chunks of `CHUNK` items: growing never copies the items, and never
/// leaves up to half of the capacity unused as a doubling `Vec` would (at 100,000 series of
/// ~600 bytes that waste alone would be ~300 bytes per series).
const CHUNK: usize = 4096;

pub struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> std::ops::Index<usize> for Chunks<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Chunks<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Hash of a series identity (metric, statistic, sorted attributes), with separators so no
/// attribute value can forge another identity's sequence of parts.
fn identity_hash(metric: &str, statistic: &str, attrs: &[(&str, &str)]) -> u64 {
    let mut h = FxHasher::default();
    metric.hash(&mut h);
    statistic.hash(&mut h);
    for (k, v) in attrs {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Store-wide counters, reported by `GET /api/v1/series` and the service's metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub series: usize,
    pub max_series: usize,
    pub points_accepted: u64,
    pub points_rejected: u64,
    pub series_rejected: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
}

/// Options of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub max_series: usize,
    pub ring_capacity: usize,
    pub baseline: BaselineConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_series: 100_000,
            ring_capacity: 512,
            baseline: BaselineConfig::default(),
        }
    }
}

/// Why a point was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    SeriesLimit,
    NotFinite,
    OutOfOrder,
}

pub struct SeriesStore {
    pub config: StoreConfig,
    /// Identity hash -> series. The rare series whose hash is already taken by another
    /// identity go to `collided` (checked after a mismatch), so the index never stores keys.
    index: HashMap<u64, u32>,
    collided: Vec<u32>,
    /// (metric, statistic) -> series, so rules resolve signals without scanning every series.
    by_signal: HashMap<(Arc<str>, Arc<str>), Vec<u32>>,
    /// Metric, statistic and attribute-key names, each stored once.
    names: HashSet<Arc<str>>,
    series: Chunks<Series>,
    pub stats: StoreStats,
}

/// Canonical key of a series: unit-separator-joined so no attribute value can forge another key.
pub fn write_key(buf: &mut String, metric: &str, statistic: &str, attrs: &[(&str, &str)]) {
    buf.clear();
    buf.push_str(metric);
    buf.push('\u{1f}');
    buf.push_str(statistic);
    for (k, v) in attrs {
        buf.push('\u{1f}');
        buf.push_str(k);
        buf.push('\u{1e}');
        buf.push_str(v);
    }
}

impl SeriesStore {
    pub fn new(config: StoreConfig) -> Self {
        SeriesStore {
            stats: StoreStats {
                max_series: config.max_series,
                ..Default::default()
            },
            config,
            index: HashMap::default(),
            collided: Vec::new(),
            by_signal: HashMap::default(),
            names: HashSet::default(),
            series: Chunks::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Series> {
        self.series.iter()
    }

    /// Adds one point. `attrs` must be sorted by key and free of duplicate keys.
    pub fn push(
        &mut self,
        metric: &str,
        statistic: &str,
        attrs: &[(&str, &str)],
        ts_ms: i64,
        value: f64,
    ) -> Result<(), Rejection> {
        if !value.is_finite() {
            self.stats.points_rejected += 1;
            return Err(Rejection::NotFinite);
        }
        let hash = identity_hash(metric, statistic, attrs);
        let idx = match self.lookup(hash, metric, statistic, attrs) {
            Some(i) => i,
            None => {
                if self.series.len() >= self.config.max_series {
                    self.stats.points_rejected += 1;
                    self.stats.series_rejected += 1;
                    return Err(Rejection::SeriesLimit);
                }
                let i = self.series.len();
                let metric = self.name(metric);
                let statistic = self.name(statistic);
                let attributes = attrs
                    .iter()
                    .map(|(k, v)| (self.name(k), Box::<str>::from(*v)))
                    .collect();
                self.series.push(Series {
                    metric: metric.clone(),
                    statistic: statistic.clone(),
                    attributes,
                    ring: VecDeque::with_capacity(self.config.ring_capacity.min(64)),
                    baseline: StreamingBaseline::new(&self.config.baseline),
                    out_of_order: 0,
                    duplicates: 0,
                    wants_sketch: AtomicBool::new(false),
                    touched: AtomicBool::new(false),
                    artifact: None,
                });
                match self.index.entry(hash) {
                    Entry::Vacant(e) => {
                        e.insert(i as u32);
                    }
                    Entry::Occupied(_) => self.collided.push(i as u32),
                }
                self.by_signal
                    .entry((metric, statistic))
                    .or_default()
                    .push(i as u32);
                self.stats.series = self.series.len();
                i
            }
        };
        let cfg = &self.config.baseline;
        let series = &mut self.series[idx];
        if let Some(last) = series.ring.back() {
            if ts_ms == last.ts_ms {
                // A repeated timestamp replaces nothing: the first write wins, the repeat is counted.
                series.duplicates = series.duplicates.saturating_add(1);
                self.stats.duplicates += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
            if ts_ms < last.ts_ms {
                series.out_of_order = series.out_of_order.saturating_add(1);
                self.stats.out_of_order += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
        }
        let fitted = series
            .artifact
            .as_ref()
            .and_then(|a| a.at(ts_ms).map(|(e, s)| (e, s, BandModel::Fitted(a.model))));
        if series.baseline.sketch.is_none() && *series.wants_sketch.get_mut() {
            series
                .baseline
                .enable_sketch(series.ring.iter().map(|s| s.value), cfg);
        }
        let mut history = series.ring.iter().rev().map(|s| s.raw);
        let band = series
            .baseline
            .update_judged(ts_ms, value, fitted, Some(&mut history), cfg);
        let sample = match band {
            Some(b) => Sample {
                ts_ms,
                value,
                expected: b.expected,
                sigma: b.sigma,
                score: series.baseline.last_score as f32,
                raw: series.baseline.last_raw as f32,
                model: Some(b.model),
            },
            None => Sample {
                ts_ms,
                value,
                expected: f64::NAN,
                sigma: f64::NAN,
                score: 0.0,
                raw: 0.0,
                model: None,
            },
        };
        if series.ring.len() == self.config.ring_capacity {
            series.ring.pop_front();
        }
        series.ring.push_back(sample);
        self.stats.points_accepted += 1;
        Ok(())
    }

    /// Series of `metric`/`statistic` whose attributes include every `subject` pair, fewest
    /// attributes first (the service-level roll-up before per-route series), then by key.
    pub fn find(
        &self,
        metric: &str,
        statistic: &str,
        subject: &[(String, String)],
    ) -> Vec<&Series> {
        let (Some(m), Some(st)) = (self.names.get(metric), self.names.get(statistic)) else {
            return Vec::new();
        };
        let Some(candidates) = self.by_signal.get(&(m.clone(), st.clone())) else {
            return Vec::new();
        };
        let mut found: Vec<&Series> = candidates
            .iter()
            .map(|i| &self.series[*i as usize])
            .filter(|s| {
                subject
                    .iter()
                    .all(|(k, v)| s.attrs().any(|(sk, sv)| sk == k && sv == v))
            })
            .collect();
        found.sort_by(|a, b| {
            a.attributes
                .len()
                .cmp(&b.attributes.len())
                .then_with(|| a.attributes.cmp(&b.attributes))
        });
        found
    }

    /// Records that a rule or suggestion read `series`, so seasonal fits are spent only on
    /// series someone asks about.
    pub fn touch(&self, series: &Series) {
        // Two relaxed stores: reading a signal must stay cheap (no lock, no allocation).
        series.wants_sketch.store(true, Ordering::Relaxed);
        series.touched.store(true, Ordering::Relaxed);
    }

    /// The interned copy of a metric, statistic or attribute-key name.
    fn name(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.names.get(s) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(s);
        self.names.insert(n.clone());
        n
    }

    /// The series with this identity, if any.
    fn lookup(
        &self,
        hash: u64,
        metric: &str,
        statistic: &str,
        attrs: &[(&str, &str)],
    ) -> Option<usize> {
        let i = *self.index.get(&hash)? as usize;
        if self.series[i].is(metric, statistic, attrs) {
            return Some(i);
        }
        self.collided
            .iter()
            .map(|c| *c as usize)
            .find(|c| self.series[*c].is(metric, statistic, attrs))
    }

    /// The series touched since the last call (and forgets them), sorted.
    pub fn take_touched(&self) -> Vec<(String, String, Attributes)> {
        let mut out: Vec<_> = self
            .series
            .iter()
            .filter(|s| s.touched.swap(false, Ordering::Relaxed))
            .map(|s| {
                (
                    s.metric.to_string(),
                    s.statistic.to_string(),
                    s.attributes_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Hands a fitted band to a series. Refused (with the reason) for an unknown series or a
    /// version not newer than the current one.
    pub fn set_band(
        &mut self,
        metric: &str,
        statistic: &str,
        attrs: &[(&str, &str)],
        artifact: BandArtifact,
    ) -> Result<(), String> {
        let i = self
            .lookup(
                identity_hash(metric, statistic, attrs),
                metric,
                statistic,
                attrs,
            )
            .ok_or_else(|| "series: no such series".to_string())?;
        let series = &mut self.series[i];
        if let Some(cur) = &series.artifact {
            if artifact.version <= cur.version {
                return Err(format!(
                    "version: {} is not newer than the current {}",
                    artifact.version, cur.version
                ));
            }
        }
        series.artifact = Some(Box::new(artifact));
        Ok(())
    }

    /// Looks a series up by its exact identity.
    pub fn get(&self, metric: &str, statistic: &str, attrs: &[(&str, &str)]) -> Option<&Series> {
        self.lookup(
            identity_hash(metric, statistic, attrs),
            metric,
            statistic,
            attrs,
        )
        .map(|i| &self.series[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_series_and_counts_rejections() {
        let mut store = SeriesStore::new(StoreConfig {
            max_series: 2,
            ..Default::default()
        });
        assert!(store.push("m", "value", &[("a", "1")], 1, 1.0).is_ok());
        assert!(store.push("m", "value", &[("a", "2")], 1, 1.0).is_ok());
        assert_eq!(
            store.push("m", "value", &[("a", "3")], 1, 1.0),
            Err(Rejection::SeriesLimit)
        );
        // An existing series still takes points at the cap.
        assert!(store.push("m", "value", &[("a", "1")], 2, 1.0).is_ok());
        assert_eq!(store.stats.series_rejected, 1);
        assert_eq!(store.stats.points_accepted, 3);
    }

    #[test]
    fn out_of_order_and_duplicates_are_counted() {
        let mut store = SeriesStore::new(StoreConfig::default());
        store.push("m", "value", &[], 10, 1.0).unwrap();
        assert!(store.push("m", "value", &[], 10, 2.0).is_err());
        assert!(store.push("m", "value", &[], 5, 2.0).is_err());
        assert!(store.push("m", "value", &[], 11, f64::NAN).is_err());
        assert_eq!(store.stats.duplicates, 1);
        assert_eq!(store.stats.out_of_order, 1);
        assert_eq!(store.stats.points_rejected, 3);
    }

    #[test]
    fn find_prefers_the_rollup() {
        let mut store = SeriesStore::new(StoreConfig::default());
        store
            .push(
                "m",
                "p99",
                &[("http.route", "/a"), ("service.name", "web")],
                1,
                1.0,
            )
            .unwrap();
        store
            .push("m", "p99", &[("service.name", "web")], 1, 1.0)
            .unwrap();
        store
            .push("m", "p99", &[("service.name", "db")], 1, 1.0)
            .unwrap();
        let subject = vec![("service.name".to_string(), "web".to_string())];
        let found = store.find("m", "p99", &subject);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].attributes.len(), 1);
    }

    #[test]
    fn fitted_band_judges_points_it_covers() {
        use crate::band::{ArtifactSpec, BandArtifact};
        let mut store = SeriesStore::new(StoreConfig::default());
        for i in 0..50 {
            store.push("m", "value", &[], i * 1000, 10.0).unwrap();
        }
        let spec = |version| ArtifactSpec {
            version,
            model: "statsmodels.stl".into(),
            anchor_ms: 50_000,
            step_ms: 1000,
            expected: vec![100.0; 10],
            sigma: vec![5.0; 10],
            valid_until_ms: 55_000,
            fitted_at_ms: 49_000,
            backtest_mae: 1.0,
            streaming_mae: 2.0,
        };
        let art = BandArtifact::from_spec(spec(1)).unwrap();
        assert!(store.set_band("nope", "value", &[], art.clone()).is_err());
        store.set_band("m", "value", &[], art).unwrap();
        let stale = BandArtifact::from_spec(spec(1)).unwrap();
        assert!(store
            .set_band("m", "value", &[], stale)
            .unwrap_err()
            .starts_with("version:"));
        store.push("m", "value", &[], 50_000, 100.0).unwrap();
        store.push("m", "value", &[], 56_000, 100.0).unwrap(); // past valid_until
        let s = store.get("m", "value", &[]).unwrap();
        let fitted = s.ring[s.ring.len() - 2];
        assert_eq!(fitted.model.unwrap().name(), "statsmodels.stl");
        assert_eq!(fitted.expected, 100.0);
        assert_eq!(fitted.score, 0.0);
        let fallback = s.ring[s.ring.len() - 1];
        assert_eq!(fallback.model.unwrap().name(), "streaming.median_mad");
    }

    #[test]
    fn reads_are_recorded_as_touches() {
        let mut store = SeriesStore::new(StoreConfig::default());
        store.push("m", "value", &[("a", "1")], 1, 1.0).unwrap();
        store.push("m", "value", &[("a", "2")], 1, 1.0).unwrap();
        let s = store.get("m", "value", &[("a", "2")]).unwrap();
        store.touch(s);
        let touched = store.take_touched();
        assert_eq!(touched.len(), 1);
        assert_eq!(touched[0].2, vec![("a".to_string(), "2".to_string())]);
        assert!(store.take_touched().is_empty());
    }

    #[test]
    fn ring_is_bounded() {
        let mut store = SeriesStore::new(StoreConfig {
            ring_capacity: 4,
            ..Default::default()
        });
        for i in 0..10 {
            store.push("m", "value", &[], i, i as f64).unwrap();
        }
        let s = store.get("m", "value", &[]).unwrap();
        assert_eq!(s.ring.len(), 4);
        assert_eq!(s.ring.front().unwrap().ts_ms, 6);
    }

    #[test]
    fn one_alert_per_episode_over_the_ring_and_not_across_a_reset() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let attrs = [("service.name", "web")];
        let t = std::cell::Cell::new(0i64);
        let push = |store: &mut SeriesStore, v: f64| {
            t.set(t.get() + 60_000);
            store.push("m", "value", &attrs, t.get(), v).unwrap();
            store
                .get("m", "value", &attrs)
                .unwrap()
                .ring
                .back()
                .unwrap()
                .score
        };
        for i in 0..100 {
            push(&mut store, 10.0 + (i % 3) as f64);
        }
        let first = push(&mut store, 100.0);
        assert!(first > 0.5, "{first}");
        assert_eq!(
            push(&mut store, 90.0),
            0.0,
            "a smaller outlier in the episode"
        );
        // 288 points later the first outlier has left the horizon: the ring is rescanned and
        // the second one (still inside) keeps a similar outlier quiet...
        for i in 0..287 {
            push(&mut store, 10.0 + (i % 3) as f64);
        }
        assert_eq!(push(&mut store, 80.0), 0.0);
        // ...until it has left too.
        for i in 0..289 {
            push(&mut store, 10.0 + (i % 3) as f64);
        }
        assert!(push(&mut store, 80.0) > 0.5);
        // After a gap long enough to reset, earlier maxima no longer count.
        t.set(t.get() + 2 * 86_400_000);
        for i in 0..40 {
            push(&mut store, 10.0 + (i % 3) as f64);
        }
        assert!(push(&mut store, 60.0) > 0.5);
    }
}
