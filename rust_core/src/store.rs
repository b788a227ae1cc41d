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
use rustc_hash::FxHashMap as HashMap;

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
    pub score: f64,
    pub model: Option<BandModel>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub metric: String,
    pub statistic: String,
    pub attributes: Attributes,
    pub ring: VecDeque<Sample>,
    pub baseline: StreamingBaseline,
    pub out_of_order: u64,
    pub duplicates: u64,
    /// The fitted band handed over from Python, if any (see `band.rs`).
    pub artifact: Option<Box<BandArtifact>>,
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
    index: HashMap<String, usize>,
    /// (metric, statistic) -> series, so rules resolve signals without scanning every series.
    by_signal: HashMap<(String, String), Vec<usize>>,
    series: Vec<Series>,
    pub stats: StoreStats,
    key_buf: String,
    /// Series read by rules since the fitter last asked (see `touch`).
    touched: std::sync::Mutex<std::collections::HashSet<(String, String, Attributes)>>,
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
            by_signal: HashMap::default(),
            series: Vec::new(),
            key_buf: String::with_capacity(256),
            touched: Default::default(),
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
        let mut key = std::mem::take(&mut self.key_buf);
        write_key(&mut key, metric, statistic, attrs);
        let idx = match self.index.get(key.as_str()) {
            Some(i) => *i,
            None => {
                if self.series.len() >= self.config.max_series {
                    self.key_buf = key;
                    self.stats.points_rejected += 1;
                    self.stats.series_rejected += 1;
                    return Err(Rejection::SeriesLimit);
                }
                let i = self.series.len();
                self.series.push(Series {
                    metric: metric.to_owned(),
                    statistic: statistic.to_owned(),
                    attributes: attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ring: VecDeque::with_capacity(self.config.ring_capacity.min(64)),
                    baseline: StreamingBaseline::new(&self.config.baseline),
                    out_of_order: 0,
                    duplicates: 0,
                    artifact: None,
                });
                self.index.insert(key.clone(), i);
                self.by_signal
                    .entry((metric.to_owned(), statistic.to_owned()))
                    .or_default()
                    .push(i);
                self.stats.series = self.series.len();
                i
            }
        };
        self.key_buf = key;
        let cfg = &self.config.baseline;
        let series = &mut self.series[idx];
        if let Some(last) = series.ring.back() {
            if ts_ms == last.ts_ms {
                // A repeated timestamp replaces nothing: the first write wins, the repeat is counted.
                series.duplicates += 1;
                self.stats.duplicates += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
            if ts_ms < last.ts_ms {
                series.out_of_order += 1;
                self.stats.out_of_order += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
        }
        let fitted = series
            .artifact
            .as_ref()
            .and_then(|a| a.at(ts_ms).map(|(e, s)| (e, s, BandModel::Fitted(a.model))));
        let band = series.baseline.update_judged(ts_ms, value, fitted, cfg);
        let sample = match band {
            Some(b) => Sample {
                ts_ms,
                value,
                expected: b.expected,
                sigma: b.sigma,
                score: series.baseline.last_score,
                model: Some(b.model),
            },
            None => Sample {
                ts_ms,
                value,
                expected: f64::NAN,
                sigma: f64::NAN,
                score: 0.0,
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
        let Some(candidates) = self
            .by_signal
            .get(&(metric.to_owned(), statistic.to_owned()))
        else {
            return Vec::new();
        };
        let mut found: Vec<&Series> = candidates
            .iter()
            .map(|i| &self.series[*i])
            .filter(|s| {
                subject
                    .iter()
                    .all(|(k, v)| s.attributes.iter().any(|(sk, sv)| sk == k && sv == v))
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
        if let Ok(mut t) = self.touched.lock() {
            if t.len() < self.config.max_series {
                t.insert((
                    series.metric.clone(),
                    series.statistic.clone(),
                    series.attributes.clone(),
                ));
            }
        }
    }

    /// The series touched since the last call (and forgets them).
    pub fn take_touched(&self) -> Vec<(String, String, Attributes)> {
        let mut out: Vec<_> = self
            .touched
            .lock()
            .map(|mut t| t.drain().collect())
            .unwrap_or_default();
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
        let mut key = String::new();
        write_key(&mut key, metric, statistic, attrs);
        let i = *self
            .index
            .get(key.as_str())
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
        let mut key = String::new();
        write_key(&mut key, metric, statistic, attrs);
        self.index.get(key.as_str()).map(|i| &self.series[*i])
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
}
