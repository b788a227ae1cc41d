//! What the store tells about its series: a summary per live series (`GET /api/v1/series`,
//! watch passes, replay) and one series' baseline in detail. Plain structs; the PyO3 layer
//! wraps them as they are.

use std::collections::BTreeMap;

use crate::baseline::erf;
use crate::store::{Sample, Series};

/// One live series: its identity, how many points its baseline learned, its newest point.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    pub metric: String,
    pub statistic: String,
    pub attributes: BTreeMap<String, String>,
    /// Points the streaming baseline has learned.
    pub points: u64,
    pub last_ts_ms: Option<i64>,
    pub last_value: Option<f64>,
    /// The newest point's expected value, when it had a band.
    pub last_expected: Option<f64>,
    /// A sustained deviation, not a blip: the lowest band score (the normal mass within |z|)
    /// of the last three points; None with fewer than three. Not the stored per-point anomaly
    /// score, which fires once per episode and is 0 while an incident goes on.
    pub recent_score: Option<f64>,
    pub out_of_order: u32,
    pub duplicates: u32,
}

/// The band score of one point: erf(|z| / √2), 0 without a band.
fn band_score(x: &Sample) -> f64 {
    if x.sigma.is_finite() && x.sigma > 0.0 && x.expected.is_finite() {
        erf((x.value - x.expected).abs() / x.sigma / std::f64::consts::SQRT_2)
    } else {
        0.0
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl SeriesSummary {
    pub fn of(s: &Series) -> Self {
        let last = s.ring.back();
        let recent_score = (s.ring.len() >= 3).then(|| {
            s.ring
                .iter()
                .rev()
                .take(3)
                .map(band_score)
                .fold(f64::INFINITY, f64::min)
        });
        SeriesSummary {
            metric: s.metric().to_string(),
            statistic: s.statistic().to_string(),
            attributes: s
                .attrs()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: s.baseline.samples,
            last_ts_ms: last.map(|x| x.ts_ms),
            // Stored values are finite; the filter keeps the JSON-era meaning (null) regardless.
            last_value: last.and_then(|x| finite(x.value)),
            last_expected: last.and_then(|x| finite(x.expected)),
            recent_score: recent_score.and_then(finite),
            out_of_order: s.out_of_order,
            duplicates: s.duplicates,
        }
    }
}

/// A fitted band artifact as a series holds it (its grid left out).
#[derive(Debug, Clone, PartialEq)]
pub struct BandInfo {
    pub version: u64,
    pub model: &'static str,
    pub anchor_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub valid_until_ms: i64,
    pub fitted_at_ms: i64,
    pub backtest_mae: f64,
    pub streaming_mae: f64,
}

/// One series' baseline: its counters, the quantiles of what it learned, the model that judged
/// its newest point and the fitted band it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineInfo {
    pub samples: u64,
    pub first_ts_ms: Option<i64>,
    pub last_ts_ms: Option<i64>,
    pub gaps: u32,
    pub resets: u32,
    pub duplicates: u32,
    pub out_of_order: u32,
    /// Quantiles of the learned values (None before any, or without a sketch).
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    /// The baseline that judged the newest point (None before it had a band).
    pub model: Option<&'static str>,
    pub artifact: Option<BandInfo>,
}

impl BaselineInfo {
    pub fn of(s: &Series) -> Self {
        let b = &s.baseline;
        let q = |p: f64| b.quantile(p).and_then(finite);
        BaselineInfo {
            samples: b.samples,
            first_ts_ms: (b.first_ts != i64::MIN).then_some(b.first_ts),
            last_ts_ms: (b.last_ts != i64::MIN).then_some(b.last_ts),
            gaps: b.gaps,
            resets: b.resets,
            duplicates: s.duplicates,
            out_of_order: s.out_of_order,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            model: s.ring.back().and_then(|x| x.model).map(|m| m.name()),
            artifact: s.artifact.as_ref().map(|a| BandInfo {
                version: a.version,
                model: a.model.name(),
                anchor_ms: a.anchor_ms,
                end_ms: a.end_ms(),
                step_ms: a.step_ms,
                valid_until_ms: a.valid_until_ms,
                fitted_at_ms: a.fitted_at_ms,
                backtest_mae: a.backtest_mae,
                streaming_mae: a.streaming_mae,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SeriesStore, StoreConfig};

    #[test]
    fn a_series_summary_and_its_baseline() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let attrs = [("a", "1"), ("service.name", "web")];
        for i in 0..2 {
            store
                .push("m", "value", &attrs, 60_000 * i, 1.0 + i as f64)
                .unwrap();
        }
        let s = store
            .get("m", "value", &[("a", "1"), ("service.name", "web")])
            .unwrap();
        let summary = SeriesSummary::of(s);
        assert_eq!(summary.metric, "m");
        assert_eq!(
            summary.attributes.keys().collect::<Vec<_>>(),
            ["a", "service.name"]
        );
        assert_eq!(summary.points, 2);
        assert_eq!(summary.last_ts_ms, Some(60_000));
        assert_eq!(summary.last_value, Some(2.0));
        assert_eq!(summary.last_expected, None, "no band yet");
        assert_eq!(summary.recent_score, None, "fewer than three points");
        let info = BaselineInfo::of(s);
        assert_eq!(
            (info.samples, info.first_ts_ms, info.last_ts_ms),
            (2, Some(0), Some(60_000))
        );
        assert_eq!((info.model, info.artifact), (None, None));
    }
}
