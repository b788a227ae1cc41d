//! How a claimed metric stands among its subject's other metrics at the decision time (`host`
//! in CEL): a copilot that names the wrong metric of a host during a real incident, or a noisy
//! metric behaving as usual, is told apart by comparing the claimed metric's calibrated
//! evidence with that of every other metric of the same subject over the same window.
//!
//! Each of the subject's metrics is read with the rule's own signal spec (window, history,
//! baseline filter), and its two-sided conformal p-value (`baseline.p_value`) is taken. The
//! p-values are adjusted for the number of metrics with Benjamini–Hochberg, so "q ≤ 0.05"
//! keeps the expected share of false discoveries among a host's anomalous metrics at 5 %,
//! however many metrics the host has.

use serde::Serialize;

use crate::evidence::{window, SignalSpec};
use crate::store::{Series, SeriesStore};

/// The false-discovery rate `host.anomalous` counts at (the conventional 5 %; rules may
/// compare `host.q` with any other level).
pub const FDR: f64 = 0.05;
/// At most this many metric names in `host.anomalous_metrics`.
const NAMED: usize = 10;

/// `host` in CEL.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostView {
    /// The subject's metrics whose evidence could be read over the window (the claimed one
    /// included).
    pub metrics: u64,
    /// How many of them are anomalous now: Benjamini–Hochberg q-value at most `alpha`.
    pub anomalous: u64,
    pub alpha: f64,
    /// The claimed metric's rank by p-value among them (1 = the most anomalous; ties share
    /// the better rank); 0 when the claimed metric's evidence could not be read.
    pub rank: u64,
    /// The claimed metric's two-sided p-value and its Benjamini–Hochberg q-value among the
    /// subject's metrics; NaN when it could not be read.
    pub p: f64,
    pub q: f64,
    /// The smallest q-value among the subject's metrics (NaN when there are none).
    pub min_q: f64,
    /// The anomalous metrics, most anomalous first (at most 10): where a likely cause is.
    pub anomalous_metrics: Vec<String>,
}

/// Benjamini–Hochberg q-values of `p` (same order; NaN stays NaN and is not counted).
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len() as f64;
    let mut q = vec![f64::NAN; p.len()];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0));
        q[i] = running;
    }
    q
}

/// The host context of `claimed` (the series the rule resolved) among `subject`'s metrics.
pub fn context(
    store: &SeriesStore,
    spec: &SignalSpec,
    subject: &[(String, String)],
    at_ms: i64,
    claimed: &Series,
) -> HostView {
    let band_k = spec.band_k.unwrap_or(store.config.baseline.band_k);
    let mut names: Vec<&str> = Vec::new();
    let mut p: Vec<f64> = Vec::new();
    let mut claimed_at = None;
    for series in store.subject_series(claimed.statistic(), subject) {
        let Ok((_, base)) = window(series, spec, at_ms, band_k) else {
            continue;
        };
        if !base.p_value.is_finite() {
            continue;
        }
        if std::ptr::eq(series, claimed) || series.metric() == claimed.metric() {
            claimed_at = Some(p.len());
        }
        names.push(series.metric());
        p.push(base.p_value);
    }
    let q = bh_adjust(&p);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| q[a].total_cmp(&q[b]).then(p[a].total_cmp(&p[b])));
    let anomalous: Vec<usize> = order.iter().copied().filter(|&i| q[i] <= FDR).collect();
    let (rank, claimed_p, claimed_q) = match claimed_at {
        Some(c) => (
            1 + p.iter().filter(|x| **x < p[c]).count() as u64,
            p[c],
            q[c],
        ),
        None => (0, f64::NAN, f64::NAN),
    };
    HostView {
        metrics: p.len() as u64,
        anomalous: anomalous.len() as u64,
        alpha: FDR,
        rank,
        p: claimed_p,
        q: claimed_q,
        min_q: q.iter().copied().fold(f64::NAN, f64::min),
        anomalous_metrics: anomalous
            .iter()
            .take(NAMED)
            .map(|&i| names[i].to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Aggregation;
    use crate::store::StoreConfig;

    #[test]
    fn bh_matches_the_step_up_procedure() {
        // Worked by hand: m = 4, p sorted 0.01, 0.02, 0.03, 0.5 → 0.04, 0.04, 0.04, 0.5.
        let q = bh_adjust(&[0.03, 0.5, 0.01, 0.02, f64::NAN]);
        let want = [0.04, 0.5, 0.04, 0.04];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        assert!(q[4].is_nan());
        assert!(bh_adjust(&[]).is_empty());
    }

    fn spec(metric: &str) -> SignalSpec {
        SignalSpec {
            metric: metric.into(),
            statistic: "value".into(),
            window_s: 0.0,
            agg: Aggregation::Max,
            min_history: 30,
            points: Some(3),
            where_expr: None,
            model: Default::default(),
            band_k: None,
        }
    }

    #[test]
    fn the_claimed_metric_is_ranked_among_the_hosts_metrics() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let host = [("host.name", "h1")];
        let other = [("host.name", "h2")];
        // Eight metrics of h1 wobble deterministically; `jump` leaves its range at the end,
        // `quiet` keeps wobbling. h2's metrics must not count.
        for i in 0..400i64 {
            let wobble = ((i * 7919) % 13) as f64 / 13.0;
            for m in 0..8 {
                let name = format!("m{m}");
                store
                    .push(&name, "value", &host, i * 60_000, 10.0 + wobble)
                    .unwrap();
                store
                    .push(&name, "value", &other, i * 60_000, 10.0 + wobble)
                    .unwrap();
            }
            let jump = if i >= 397 { 50.0 } else { 10.0 + wobble };
            store
                .push("jump", "value", &host, i * 60_000, jump)
                .unwrap();
            store
                .push("quiet", "value", &host, i * 60_000, 10.0 + wobble)
                .unwrap();
        }
        let subject = vec![("host.name".to_string(), "h1".to_string())];
        let at = 399 * 60_000;
        let jump = store.find("jump", "value", &subject)[0];
        let view = context(&store, &spec("jump"), &subject, at, jump);
        assert_eq!(view.metrics, 10, "{view:?}");
        assert_eq!(view.rank, 1);
        assert!(view.q <= FDR, "{view:?}");
        assert_eq!(view.anomalous, 1);
        assert_eq!(view.anomalous_metrics, vec!["jump".to_string()]);
        let quiet = store.find("quiet", "value", &subject)[0];
        let view = context(&store, &spec("quiet"), &subject, at, quiet);
        assert!(view.rank > 1 && view.q > FDR, "{view:?}");
        assert_eq!(view.anomalous_metrics, vec!["jump".to_string()]);
    }
}
