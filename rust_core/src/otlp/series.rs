//! A decoded metrics request applied to the store, with no per-point allocation beyond the
//! decoded view itself.
//!
//! Gauges become `value` series; sums become `value` (non-monotonic) or `rate` and `delta`
//! (monotonic, cumulative or delta, with counter resets); histograms become per-stream
//! `count`/`rate`/`mean` series and, per resource, a roll-up over the point attributes
//! (handed to the [`EventAggregator`], which writes `count`, `rate`, `mean`, `p50`, `p90`,
//! `p99` and `error_ratio` (5xx status or `error.type`) per minute); summaries' p50, p90 and
//! p99 become those statistics.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;

use super::aggregator::EventAggregator;
use super::body::{request_bytes, Encoding, IngestReport};
use super::decode::{decode_metrics, view_of};
use super::histogram::Rollup;
use super::view::{Attr, DataView, HistogramPoint, MetricsView};
use super::wire;
use crate::error::IngestError;
use crate::store::{AttrKey, Rejection, SeriesStore};

/// Merges a resource's attributes with each of its points' (the point wins on a clash) into
/// one list sorted by key. SDKs write every point of a metric with the same keys in the same
/// order, so the order found for one point is remembered: a point with the previous point's
/// keys takes it without searching for clashes or sorting again. The result is the same: the
/// order depends on the keys only.
struct Merger<'a> {
    resource: &'a [Attr<'a>],
    /// The previous point's keys, as given, and where each merged attribute comes from.
    keys: Vec<&'a str>,
    order: Vec<Source>,
}

#[derive(Clone, Copy)]
enum Source {
    Point(usize),
    Resource(usize),
}

impl<'a> Merger<'a> {
    fn new(resource: &'a [Attr<'a>]) -> Self {
        Merger {
            resource,
            keys: Vec::new(),
            order: Vec::new(),
        }
    }

    fn merge(&mut self, point: &'a [Attr<'a>], out: &mut Vec<(&'a str, &'a str)>) {
        let same = self.keys.len() == point.len()
            && !self.order.is_empty()
            && self.keys.iter().zip(point).all(|(k, (pk, _))| k == pk);
        if !same {
            let key = |s: &Source| match *s {
                Source::Point(i) => point[i].0,
                Source::Resource(i) => self.resource[i].0,
            };
            self.order.clear();
            self.order.extend((0..point.len()).map(Source::Point));
            for (i, (k, _)) in self.resource.iter().enumerate() {
                if !point.iter().any(|(pk, _)| pk == k) {
                    self.order.push(Source::Resource(i));
                }
            }
            self.order.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            self.keys.clear();
            self.keys.extend(point.iter().map(|(k, _)| *k));
        }
        out.clear();
        out.extend(self.order.iter().map(|s| {
            let (k, v) = match *s {
                Source::Point(i) => &point[i],
                Source::Resource(i) => &self.resource[i],
            };
            (*k, v.as_ref())
        }));
    }
}

/// The state of every cumulative stream, by `stream_key`.
pub type CumulativeStreams = HashMap<Vec<u8>, CumulativeState>;

/// A cumulative stream's key: the metric and the (packed, length-delimited) attributes, so no
/// attribute value can make two streams share a key.
fn stream_key(buf: &mut Vec<u8>, metric: &str, attrs: &AttrKey) {
    buf.clear();
    buf.extend_from_slice(&(metric.len() as u32).to_le_bytes());
    buf.extend_from_slice(metric.as_bytes());
    buf.extend_from_slice(attrs.packed());
}

/// Previous cumulative value of one stream, to turn cumulative points into deltas.
#[derive(Debug, Clone, Default)]
pub struct CumulativeState {
    start_ns: u64,
    time_ns: u64,
    value: f64,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

/// A delta over one interval, ready to become statistics.
struct HistogramDelta<'a> {
    dt_s: f64,
    count: u64,
    sum: Option<f64>,
    bounds: &'a [f64],
    buckets: Cow<'a, [u64]>,
    min: Option<f64>,
    max: Option<f64>,
}

fn is_error_point(attrs: &[Attr<'_>]) -> bool {
    attrs.iter().any(|(k, v)| match *k {
        "http.response.status_code" | "http.status_code" => {
            v.parse::<u32>().map(|c| c >= 500).unwrap_or(false)
        }
        "error.type" => !v.is_empty(),
        _ => false,
    })
}

const NS_PER_MS: u64 = 1_000_000;

/// Resource attributes that identify a service for roll-ups; the others (instance, host, pod,
/// container, process, SDK) are dropped so all instances of a service roll up together.
pub const SERVICE_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "deployment.environment",
    "deployment.environment.name",
];

/// Decodes `body` and updates `store`; returns the counts for the response. Protobuf goes
/// through the zero-copy decoder (`wire`), OTLP/JSON through prost's serde types.
pub fn ingest_metrics(
    store: &mut SeriesStore,
    cumulative: &mut CumulativeStreams,
    agg: &mut EventAggregator,
    body: &[u8],
    encoding: Encoding,
    gzip: bool,
    limit: usize,
) -> Result<IngestReport, IngestError> {
    let mut buf = Vec::new();
    let raw = request_bytes(body, gzip, limit, &mut buf)?;
    match encoding {
        Encoding::Protobuf => {
            let view = wire::decode_metrics(raw)
                .map_err(|e| IngestError::BadRequest(format!("protobuf: {e}")))?;
            Ok(apply_view(store, cumulative, agg, &view))
        }
        Encoding::Json => {
            let request = decode_metrics(raw, encoding)?;
            Ok(apply_metrics(store, cumulative, agg, &request))
        }
    }
}

struct Outcome<'a> {
    report: &'a mut IngestReport,
}

impl Outcome<'_> {
    fn reject(&mut self, why: &str) {
        self.report.rejected += 1;
        if self.report.message.is_empty() {
            self.report.message = why.to_string();
        }
    }

    fn result(&mut self, r: Result<(), Rejection>) {
        match r {
            Ok(()) => self.report.accepted += 1,
            Err(Rejection::SeriesLimit) => {
                self.reject("series limit reached; points for new series were rejected")
            }
            Err(Rejection::NotFinite) => self.reject("a data point value was NaN or infinite"),
            Err(Rejection::OutOfOrder) => {
                self.reject("out-of-order or duplicate points were rejected")
            }
        }
    }
}

/// Applies a request decoded by prost to the store.
pub fn apply_metrics(
    store: &mut SeriesStore,
    cumulative: &mut CumulativeStreams,
    agg: &mut EventAggregator,
    request: &ExportMetricsServiceRequest,
) -> IngestReport {
    apply_view(store, cumulative, agg, &view_of(request))
}

/// Applies a decoded request to the store.
pub fn apply_view(
    store: &mut SeriesStore,
    cumulative: &mut CumulativeStreams,
    agg: &mut EventAggregator,
    v: &MetricsView<'_>,
) -> IngestReport {
    let mut report = IngestReport::default();
    let mut out = Outcome {
        report: &mut report,
    };
    let mut key: Vec<u8> = Vec::new();
    // Reused for every point: the resource's and the point's attributes, sorted by key, and
    // the same prepared for the store.
    let mut all: Vec<(&str, &str)> = Vec::new();
    let mut attr_key = AttrKey::default();
    for rv in &v.resources {
        let resource = &rv.attrs[..];
        // Roll-ups are per service, across its instances: only the attributes that name the
        // service are kept (see SERVICE_ATTRIBUTES).
        let mut service: Vec<(String, String)> = resource
            .iter()
            .filter(|(k, _)| SERVICE_ATTRIBUTES.contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        service.sort_unstable();
        service.dedup_by(|a, b| a.0 == b.0);
        let mut merger = Merger::new(resource);
        for metric in &v.metrics[rv.metrics.clone()] {
            let name = metric.name;
            if name.is_empty() {
                let n = metric.data.as_ref().map_or(0, |d| d.points().len());
                for _ in 0..n.max(1) {
                    out.reject("a metric without a name was rejected");
                }
                continue;
            }
            match &metric.data {
                Some(DataView::Gauge { points }) => {
                    for p in &v.numbers[points.clone()] {
                        let Some(val) = p.value else {
                            out.reject("a number data point had no value");
                            continue;
                        };
                        merger.merge(&v.attrs[p.attrs.clone()], &mut all);
                        attr_key.set(&all);
                        out.result(store.push_key(
                            name,
                            "value",
                            &attr_key,
                            (p.time_ns / NS_PER_MS) as i64,
                            val,
                        ));
                    }
                }
                Some(DataView::Sum {
                    temporality,
                    monotonic,
                    points,
                }) => {
                    let is_cumulative = *temporality == AggregationTemporality::Cumulative as i32;
                    for p in &v.numbers[points.clone()] {
                        let Some(val) = p.value else {
                            out.reject("a number data point had no value");
                            continue;
                        };
                        merger.merge(&v.attrs[p.attrs.clone()], &mut all);
                        attr_key.set(&all);
                        let ts = (p.time_ns / NS_PER_MS) as i64;
                        if !monotonic {
                            out.result(store.push_key(name, "value", &attr_key, ts, val));
                            continue;
                        }
                        let delta = if is_cumulative {
                            stream_key(&mut key, name, &attr_key);
                            // The stream's state is updated in place: no key or state is
                            // allocated for a stream already known.
                            let room = cumulative.len() < store.config.max_series;
                            let prev = cumulative.get_mut(&key[..]);
                            let d = match prev.as_deref() {
                                // Same stream, value not lower: an ordinary increase.
                                Some(prev) if prev.start_ns == p.start_ns && val >= prev.value => {
                                    if p.time_ns <= prev.time_ns {
                                        None
                                    } else {
                                        Some((val - prev.value, p.time_ns - prev.time_ns))
                                    }
                                }
                                // First point, or a reset: the value counts from its start time.
                                _ if p.start_ns > 0 && p.time_ns > p.start_ns => {
                                    Some((val, p.time_ns - p.start_ns))
                                }
                                _ => None,
                            };
                            let next = CumulativeState {
                                start_ns: p.start_ns,
                                time_ns: p.time_ns,
                                value: val,
                                ..Default::default()
                            };
                            match prev {
                                Some(prev) => *prev = next,
                                None if room => {
                                    cumulative.insert(key.clone(), next);
                                }
                                None => {}
                            }
                            d
                        } else if p.time_ns > p.start_ns && p.start_ns > 0 {
                            Some((val, p.time_ns - p.start_ns))
                        } else {
                            Some((val, 0))
                        };
                        match delta {
                            Some((d, dt_ns)) => {
                                let r = store.push_key(name, "delta", &attr_key, ts, d);
                                if dt_ns > 0 && r.is_ok() {
                                    let _ = store.push_key(
                                        name,
                                        "rate",
                                        &attr_key,
                                        ts,
                                        d / (dt_ns as f64 / 1e9),
                                    );
                                }
                                out.result(r);
                            }
                            // The first cumulative point without a start time only primes the stream.
                            None => out.report.accepted += 1,
                        }
                    }
                }
                Some(
                    DataView::Histogram {
                        temporality,
                        points,
                    }
                    | DataView::ExponentialHistogram {
                        temporality,
                        points,
                    },
                ) => {
                    // Exponential histograms were turned into explicit-bucket points when
                    // decoded: both take this path (deltas, per-stream series, roll-ups).
                    let is_cumulative = *temporality == AggregationTemporality::Cumulative as i32;
                    let mut rollups: Vec<(u64, Rollup)> = Vec::new();
                    for p in &v.histograms[points.clone()] {
                        let attrs = &v.attrs[p.attrs.clone()];
                        merger.merge(attrs, &mut all);
                        attr_key.set(&all);
                        if is_cumulative {
                            // Only cumulative streams are looked up by key.
                            stream_key(&mut key, name, &attr_key);
                        }
                        let delta = histogram_delta(
                            p,
                            &v.bounds[p.bounds.clone()],
                            &v.counts[p.counts.clone()],
                            is_cumulative,
                            cumulative,
                            &key,
                            store.config.max_series,
                        );
                        let Some(d) = delta else {
                            out.report.accepted += 1;
                            continue;
                        };
                        let ts = (p.time_ns / NS_PER_MS) as i64;
                        let r = store.push_key(name, "count", &attr_key, ts, d.count as f64);
                        if r.is_ok() {
                            if d.dt_s > 0.0 {
                                let _ = store.push_key(
                                    name,
                                    "rate",
                                    &attr_key,
                                    ts,
                                    d.count as f64 / d.dt_s,
                                );
                            }
                            if let (Some(sum), true) = (d.sum, d.count > 0) {
                                let _ = store.push_key(
                                    name,
                                    "mean",
                                    &attr_key,
                                    ts,
                                    sum / d.count as f64,
                                );
                            }
                        }
                        out.result(r);
                        let slot = match rollups.iter().position(|(t, _)| *t == p.time_ns) {
                            Some(i) => i,
                            None => {
                                rollups.push((
                                    p.time_ns,
                                    Rollup {
                                        bounds: d.bounds.to_vec(),
                                        buckets: vec![0.0; d.buckets.len()],
                                        min: f64::INFINITY,
                                        max: f64::NEG_INFINITY,
                                        ..Default::default()
                                    },
                                ));
                                rollups.len() - 1
                            }
                        };
                        let ru = &mut rollups[slot].1;
                        ru.dt_s = ru.dt_s.max(d.dt_s);
                        ru.count += d.count;
                        if let Some(s) = d.sum {
                            ru.sum += s;
                            ru.has_sum = true;
                        }
                        if is_error_point(attrs) {
                            ru.errors += d.count;
                        }
                        ru.add_buckets(d.bounds, &d.buckets);
                        if let Some(m) = d.min {
                            ru.min = ru.min.min(m);
                        }
                        if let Some(m) = d.max {
                            ru.max = ru.max.max(m);
                        }
                    }
                    for (t, ru) in rollups {
                        agg.add_rollup(store, name, &service, (t / NS_PER_MS) as i64, &ru);
                    }
                }
                Some(DataView::Summary { points }) => {
                    for p in &v.summaries[points.clone()] {
                        merger.merge(&v.attrs[p.attrs.clone()], &mut all);
                        attr_key.set(&all);
                        let ts = (p.time_ns / NS_PER_MS) as i64;
                        let mut r = Ok(());
                        for (quantile, value) in &v.quantiles[p.quantiles.clone()] {
                            let stat = match *quantile {
                                x if (x - 0.5).abs() < 1e-9 => "p50",
                                x if (x - 0.9).abs() < 1e-9 => "p90",
                                x if (x - 0.99).abs() < 1e-9 => "p99",
                                _ => continue,
                            };
                            r = r.and(store.push_key(name, stat, &attr_key, ts, *value));
                        }
                        out.result(r);
                    }
                }
                None => out.reject("a metric had no data"),
            }
        }
    }
    report
}

fn histogram_delta<'a>(
    p: &HistogramPoint,
    bounds: &'a [f64],
    counts: &'a [u64],
    is_cumulative: bool,
    cumulative: &mut CumulativeStreams,
    key: &[u8],
    max_streams: usize,
) -> Option<HistogramDelta<'a>> {
    let since_start = || {
        (p.start_ns > 0 && p.time_ns > p.start_ns).then(|| (p.time_ns - p.start_ns) as f64 / 1e9)
    };
    if !is_cumulative {
        return Some(HistogramDelta {
            dt_s: since_start().unwrap_or(0.0),
            count: p.count,
            sum: p.sum,
            bounds,
            buckets: Cow::Borrowed(counts),
            min: p.min,
            max: p.max,
        });
    }
    // The stream's state is updated in place: no key, state or bucket vector is allocated for
    // a stream already known.
    let room = cumulative.len() < max_streams;
    let prev = cumulative.get_mut(key);
    let delta = match prev.as_deref() {
        Some(prev)
            if prev.start_ns == p.start_ns
                && p.count >= prev.count
                && prev.buckets.len() == counts.len() =>
        {
            (p.time_ns > prev.time_ns).then(|| HistogramDelta {
                dt_s: (p.time_ns - prev.time_ns) as f64 / 1e9,
                count: p.count - prev.count,
                sum: p.sum.map(|s| s - prev.sum),
                bounds,
                buckets: Cow::Owned(
                    counts
                        .iter()
                        .zip(&prev.buckets)
                        .map(|(a, b)| a.saturating_sub(*b))
                        .collect(),
                ),
                // min/max of a cumulative point cover the whole stream: still valid outer
                // bounds for the interval's quantiles.
                min: p.min,
                max: p.max,
            })
        }
        _ => since_start().map(|dt_s| HistogramDelta {
            dt_s,
            count: p.count,
            sum: p.sum,
            bounds,
            buckets: Cow::Borrowed(counts),
            min: p.min,
            max: p.max,
        }),
    };
    match prev {
        Some(prev) => {
            prev.start_ns = p.start_ns;
            prev.time_ns = p.time_ns;
            prev.value = 0.0;
            prev.count = p.count;
            prev.sum = p.sum.unwrap_or(0.0);
            prev.buckets.clear();
            prev.buckets.extend_from_slice(counts);
        }
        None if room => {
            let next = CumulativeState {
                start_ns: p.start_ns,
                time_ns: p.time_ns,
                count: p.count,
                sum: p.sum.unwrap_or(0.0),
                buckets: counts.to_vec(),
                ..Default::default()
            };
            cumulative.insert(key.to_owned(), next);
        }
        None => {}
    }
    delta
}

#[cfg(test)]
mod tests;
