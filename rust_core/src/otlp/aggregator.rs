//! One-minute buckets: log record counts, server-span RED statistics and histogram roll-ups
//! per series, written to the store once their minute is over.
//!
//! Buckets are fixed one-minute intervals keyed by the record's, span's or point's own time.
//! A bucket is written to the store when a later bucket of the same series starts, or when
//! `flush` is called with a time past its end (the service does so periodically), so a series
//! gets exactly one point per minute and never an out-of-order one.

use std::collections::HashMap;

use super::histogram::Rollup;
use crate::quantile::sorted_quantile;
use crate::store::SeriesStore;

/// Width of the aggregation buckets for log counts and span RED series.
pub const BUCKET_MS: i64 = 60_000;
/// Durations kept per bucket for quantiles; beyond it every other one is dropped (and the
/// keep-stride doubled), so memory stays bounded and the sample stays spread over the bucket.
const MAX_DURATIONS: usize = 4096;

#[derive(Default)]
struct Bucket {
    start_ms: i64,
    count: u64,
    errors: u64,
    sum: f64,
    durations: Vec<f64>,
    stride: u64,
    seen: u64,
    rollup: Option<Rollup>,
}

impl Bucket {
    fn new(start_ms: i64) -> Self {
        Bucket {
            start_ms,
            stride: 1,
            ..Default::default()
        }
    }

    fn add_duration(&mut self, d: f64) {
        self.seen += 1;
        if self.seen % self.stride != 0 {
            return;
        }
        self.durations.push(d);
        if self.durations.len() >= MAX_DURATIONS {
            let mut i = 0;
            self.durations.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride *= 2;
        }
    }
}

/// Which statistics a bucket becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Logs,
    Spans,
    Histogram,
}

/// A bucket's key: metric name and attributes.
type BucketKey = (String, Vec<(String, String)>);

/// Open one-minute buckets, per (metric, attributes).
#[derive(Default)]
pub struct EventAggregator {
    open: HashMap<BucketKey, (Kind, Bucket)>,
    /// Records or spans that arrived for a bucket already written (counted into the open one).
    pub late: u64,
    /// Records, spans or roll-ups refused because `max_series` buckets were already open
    /// (a flood of distinct routes or services cannot grow the aggregator without bound).
    pub refused: u64,
}

fn write(
    store: &mut SeriesStore,
    metric: &str,
    attrs: &[(String, String)],
    kind: Kind,
    b: &mut Bucket,
) {
    let attrs: Vec<(&str, &str)> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let ts = b.start_ms + BUCKET_MS;
    let minutes = BUCKET_MS as f64 / 60_000.0;
    let mut push = |stat: &str, v: f64| {
        let _ = store.push(metric, stat, &attrs, ts, v);
    };
    if let (Kind::Histogram, Some(ru)) = (kind, &b.rollup) {
        push("count", ru.count as f64);
        if let Some(rate) = ru.rate() {
            push("rate", rate);
        }
        if ru.count > 0 {
            push("error_ratio", ru.errors as f64 / ru.count as f64);
            if ru.has_sum {
                push("mean", ru.sum / ru.count as f64);
            }
            for (stat, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                if let Some(v) = ru.quantile(q) {
                    push(stat, v);
                }
            }
        }
        return;
    }
    push("count", b.count as f64);
    push("rate", b.count as f64 / (minutes * 60.0));
    if kind == Kind::Spans && b.count > 0 {
        push("error_ratio", b.errors as f64 / b.count as f64);
        push("mean", b.sum / b.count as f64);
        b.durations.sort_unstable_by(|a, c| a.total_cmp(c));
        if !b.durations.is_empty() {
            push("p50", sorted_quantile(&b.durations, 0.5));
            push("p90", sorted_quantile(&b.durations, 0.9));
            push("p99", sorted_quantile(&b.durations, 0.99));
        }
    }
}

impl EventAggregator {
    /// The open bucket of `(metric, attrs)` for `ts_ms`; a bucket it replaces is written first.
    /// `None` (counted in `refused`) when a new bucket would exceed the store's series cap.
    fn bucket(
        &mut self,
        store: &mut SeriesStore,
        metric: &str,
        attrs: Vec<(String, String)>,
        kind: Kind,
        ts_ms: i64,
    ) -> Option<&mut Bucket> {
        let start = ts_ms.div_euclid(BUCKET_MS) * BUCKET_MS;
        let key = (metric.to_string(), attrs);
        if self.open.len() >= store.config.max_series && !self.open.contains_key(&key) {
            self.refused += 1;
            return None;
        }
        if let Some((k, open)) = self.open.get_mut(&key) {
            if start > open.start_ms {
                let mut done = std::mem::replace(open, Bucket::new(start));
                write(store, &key.0, &key.1, *k, &mut done);
            } else if start < open.start_ms {
                self.late += 1;
            }
        }
        Some(
            &mut self
                .open
                .entry(key)
                .or_insert_with(|| (kind, Bucket::new(start)))
                .1,
        )
    }

    /// Adds a histogram roll-up (one request's points of one metric and service at one time)
    /// to the service's bucket for that minute.
    pub fn add_rollup(
        &mut self,
        store: &mut SeriesStore,
        metric: &str,
        service: &[(String, String)],
        ts_ms: i64,
        rollup: &Rollup,
    ) {
        let mut rollup = rollup.clone();
        rollup.last_ms = ts_ms;
        rollup.first_ms = ts_ms - (rollup.dt_s * 1000.0) as i64;
        let Some(b) = self.bucket(store, metric, service.to_vec(), Kind::Histogram, ts_ms) else {
            return;
        };
        match &mut b.rollup {
            Some(r) => r.merge(&rollup),
            None => b.rollup = Some(rollup),
        }
    }

    /// Writes every bucket that ended at or before `now_ms`.
    pub fn flush(&mut self, store: &mut SeriesStore, now_ms: i64) -> usize {
        let mut n = 0;
        self.open.retain(|(metric, attrs), (kind, b)| {
            if b.start_ms + BUCKET_MS <= now_ms {
                write(store, metric, attrs, *kind, b);
                n += 1;
                false
            } else {
                true
            }
        });
        n
    }

    /// Counts one log record in the bucket of `(metric, attrs)` for `ts_ms`; false when the
    /// bucket was refused (see `bucket`).
    pub(super) fn add_log_record(
        &mut self,
        store: &mut SeriesStore,
        metric: &str,
        attrs: Vec<(String, String)>,
        ts_ms: i64,
    ) -> bool {
        match self.bucket(store, metric, attrs, Kind::Logs, ts_ms) {
            Some(b) => {
                b.count += 1;
                true
            }
            None => false,
        }
    }

    /// Adds one server span (whether it failed, how long it took) to the bucket of
    /// `(metric, attrs)` for `ts_ms`; false when the bucket was refused (see `bucket`).
    pub(super) fn add_span(
        &mut self,
        store: &mut SeriesStore,
        metric: &str,
        attrs: Vec<(String, String)>,
        ts_ms: i64,
        error: bool,
        duration_s: f64,
    ) -> bool {
        match self.bucket(store, metric, attrs, Kind::Spans, ts_ms) {
            Some(b) => {
                b.count += 1;
                b.errors += u64::from(error);
                b.sum += duration_s;
                b.add_duration(duration_s);
                true
            }
            None => false,
        }
    }

    /// Open buckets (for statistics).
    pub fn open_buckets(&self) -> usize {
        self.open.len()
    }
}
