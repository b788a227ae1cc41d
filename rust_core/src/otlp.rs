//! OTLP ingest: request bytes in, series updates out, with no per-point allocation beyond the
//! decoded message itself.
//!
//! * bodies are inflated here (gzip, several members allowed) under a hard size limit that is
//!   checked while inflating, so a gzip bomb is refused without being held in memory;
//! * protobuf metrics are decoded without copying by `otlp_wire` into a `MetricsView` (strings
//!   borrowed from the request); OTLP/JSON, logs and traces with prost into the
//!   `opentelemetry-proto` types (JSON through their serde support: lowerCamelCase, 64-bit
//!   integers as strings or numbers), and JSON metrics then viewed the same way (`view_of`);
//! * gauges become `value` series; sums become `value` (non-monotonic) or `rate` and `delta`
//!   (monotonic, cumulative or delta, with counter resets); histograms become per-stream
//!   `count`/`rate`/`mean` series and, per resource, a roll-up over the point attributes with
//!   `count`, `rate`, `mean`, `p50`, `p90`, `p99` and `error_ratio` (5xx status or `error.type`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric::Data, number_data_point, AggregationTemporality,
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
};
use prost::Message;
use std::ops::Range;

use crate::error::IngestError;
use crate::otlp_events::EventAggregator;
use crate::otlp_wire::{
    self, Attr, DataView, HistogramPoint, MetricView, MetricsView, NumberPoint, ResourceView,
    SummaryPoint,
};
use crate::store::{AttrKey, Rejection, SeriesStore};

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Outcome of one export request: the numbers for OTLP's `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub rejected: u64,
    /// Empty on full success; otherwise what was wrong with the first rejected points.
    pub message: String,
}

/// Inflates a gzip body (all members) into at most `limit` bytes.
pub fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    // A gzip member ends with its inflated size (ISIZE, mod 2^32): for the usual single-member
    // body that sizes the buffer exactly, so it is never grown and copied. It is only a hint:
    // the limit is still enforced while inflating.
    let hint = body
        .len()
        .checked_sub(4)
        .map(|i| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]) as usize)
        .filter(|n| *n > 0)
        .unwrap_or(body.len().saturating_mul(4));
    // Deflate cannot expand more than ~1032:1, so a forged ISIZE cannot make a small body
    // reserve much.
    let hint = hint.min(body.len().saturating_mul(1032));
    let mut out = Vec::with_capacity(hint.min(limit).saturating_add(1));
    let mut decoder = MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("gzip: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

/// Decodes an export request of any signal from protobuf or OTLP/JSON.
pub fn decode<T: Message + Default + serde::de::DeserializeOwned>(
    raw: &[u8],
    encoding: Encoding,
) -> Result<T, IngestError> {
    match encoding {
        Encoding::Protobuf => {
            T::decode(raw).map_err(|e| IngestError::BadRequest(format!("protobuf: {e}")))
        }
        Encoding::Json => {
            serde_json::from_slice(raw).map_err(|e| IngestError::BadRequest(format!("json: {e}")))
        }
    }
}

/// Decodes an `ExportMetricsServiceRequest`.
pub fn decode_metrics(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, IngestError> {
    decode(body, encoding)
}

/// The request body as sent (`gzip` false) or inflated into `buf`, within `limit` bytes either
/// way.
pub fn request_bytes<'a>(
    body: &'a [u8],
    gzip: bool,
    limit: usize,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], IngestError> {
    if gzip {
        *buf = inflate(body, limit)?;
        Ok(&buf[..])
    } else if body.len() > limit {
        Err(IngestError::TooLarge { limit })
    } else {
        Ok(body)
    }
}

/// Renders an attribute value as the string series are keyed by.
pub fn any_value_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => {
            let parts: Vec<String> = a
                .values
                .iter()
                .map(|x| any_value_string(&Some(x.clone())))
                .collect();
            format!("[{}]", parts.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let parts: Vec<String> = kv
                .values
                .iter()
                .map(|x| format!("{}={}", x.key, any_value_string(&x.value)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        // Profiles' string-table references carry no text of their own here.
        Some(any_value::Value::StringValueStrindex(i)) => format!("#{i}"),
        None => String::new(),
    }
}

fn attrs_to_strings(kvs: &[KeyValue]) -> Vec<Attr<'_>> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
                _ => Cow::Owned(any_value_string(&kv.value)),
            };
            (kv.key.as_str(), v)
        })
        .collect()
}

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

/// Roll-up of one histogram metric over a service's points (all instances, routes and
/// statuses) at one timestamp, or, once merged in `EventAggregator`, over one minute.
#[derive(Default, Debug, Clone)]
pub struct Rollup {
    pub dt_s: f64,
    pub count: u64,
    pub sum: f64,
    pub has_sum: bool,
    pub errors: u64,
    pub bounds: Vec<f64>,
    pub buckets: Vec<f64>,
    pub min: f64,
    pub max: f64,
    /// Earliest start and latest end (ms) of the intervals merged: the time the counts cover.
    pub first_ms: i64,
    pub last_ms: i64,
}

/// The range of bucket `k` of an explicit histogram with `bounds`.
fn bucket_range(bounds: &[f64], k: usize) -> (f64, f64) {
    let lo = if k == 0 {
        f64::NEG_INFINITY
    } else {
        bounds[k - 1]
    };
    let hi = if k == bounds.len() {
        f64::INFINITY
    } else {
        bounds[k]
    };
    (lo, hi)
}

impl Rollup {
    /// Adds a histogram's buckets. Histograms with other bounds (several SDKs, or exponential
    /// histograms at other scales) are merged onto the union of both bound sets, each count
    /// spread over the union buckets its own bucket overlaps, in proportion to the overlap.
    fn add_buckets(&mut self, bounds: &[f64], buckets: &[u64]) {
        if self.bounds == bounds && self.buckets.len() == buckets.len() {
            for (a, b) in self.buckets.iter_mut().zip(buckets) {
                *a += *b as f64;
            }
            return;
        }
        let counts: Vec<f64> = buckets.iter().map(|c| *c as f64).collect();
        self.add_buckets_f(bounds, &counts);
    }

    /// Merges another roll-up (same metric and service) into this one.
    pub fn merge(&mut self, other: &Rollup) {
        self.dt_s = self.dt_s.max(other.dt_s);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.count += other.count;
        self.sum += other.sum;
        self.has_sum |= other.has_sum;
        self.errors += other.errors;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if self.buckets.is_empty() {
            self.bounds.clone_from(&other.bounds);
            self.buckets.clone_from(&other.buckets);
        } else {
            self.add_buckets_f(&other.bounds, &other.buckets);
        }
    }

    /// Requests per second over the time the merged intervals cover (several exports of one
    /// instance in a minute, or one export covering five minutes, both come out right).
    pub fn rate(&self) -> Option<f64> {
        let span_s = (self.last_ms - self.first_ms) as f64 / 1000.0;
        (span_s > 0.0).then(|| self.count as f64 / span_s)
    }

    /// Quantile `q` of the merged buckets, bounded by the recorded min/max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        bucket_quantile_f(&self.bounds, &self.buckets, q, self.min, self.max)
    }

    fn add_buckets_f(&mut self, bounds: &[f64], buckets: &[f64]) {
        if buckets.len() != bounds.len() + 1 {
            return;
        }
        if self.bounds == bounds && self.buckets.len() == buckets.len() {
            for (a, b) in self.buckets.iter_mut().zip(buckets) {
                *a += *b;
            }
            return;
        }
        let mut union: Vec<f64> = self.bounds.iter().chain(bounds).copied().collect();
        union.sort_unstable_by(|a, b| a.total_cmp(b));
        union.dedup();
        let mut merged = vec![0.0; union.len() + 1];
        let old_bounds = std::mem::take(&mut self.bounds);
        let old: Vec<f64> = std::mem::take(&mut self.buckets);
        let sources = [(old_bounds.as_slice(), old), (bounds, buckets.to_vec())];
        for (b, counts) in &sources {
            if counts.len() != b.len() + 1 {
                continue;
            }
            for (k, c) in counts.iter().enumerate() {
                if *c == 0.0 {
                    continue;
                }
                let (lo, hi) = bucket_range(b, k);
                if !lo.is_finite() || !hi.is_finite() {
                    // An open-ended bucket goes whole to the union bucket at its finite edge.
                    let j = if lo.is_finite() {
                        union.partition_point(|u| *u <= lo)
                    } else {
                        union.partition_point(|u| *u < hi)
                    };
                    merged[j] += c;
                    continue;
                }
                for (j, m) in merged.iter_mut().enumerate() {
                    let (ulo, uhi) = bucket_range(&union, j);
                    let overlap = hi.min(uhi) - lo.max(ulo);
                    if overlap > 0.0 {
                        *m += c * overlap / (hi - lo);
                    }
                }
            }
        }
        self.bounds = union;
        self.buckets = merged;
    }
}

/// Estimates quantile `q` from explicit-bucket counts by linear interpolation in the bucket.
pub fn bucket_quantile(bounds: &[f64], buckets: &[u64], q: f64, min: f64, max: f64) -> Option<f64> {
    let counts: Vec<f64> = buckets.iter().map(|c| *c as f64).collect();
    bucket_quantile_f(bounds, &counts, q, min, max)
}

/// `bucket_quantile` over fractional counts (merged roll-ups).
pub fn bucket_quantile_f(
    bounds: &[f64],
    buckets: &[f64],
    q: f64,
    min: f64,
    max: f64,
) -> Option<f64> {
    let total: f64 = buckets.iter().sum();
    if total <= 0.0 || buckets.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total;
    let mut seen = 0.0;
    for (i, c) in buckets.iter().enumerate() {
        let c = *c;
        if c > 0.0 && seen + c >= rank {
            let lower = if i == 0 {
                min.min(bounds.first().copied().unwrap_or(0.0))
            } else {
                bounds[i - 1]
            };
            let upper = if i == bounds.len() {
                max.max(lower)
            } else {
                bounds[i]
            };
            let lower = if lower.is_finite() {
                lower
            } else {
                upper.min(0.0)
            };
            let upper = if upper.is_finite() { upper } else { lower };
            let frac = ((rank - seen) / c).clamp(0.0, 1.0);
            let estimate = lower + (upper - lower) * frac;
            // Coarse buckets (the SDK's default bounds are milliseconds-sized even for seconds)
            // put estimates far from every value: the recorded min/max bound them.
            return Some(
                estimate
                    .min(max.max(estimate.min(lower)))
                    .max(min.min(estimate)),
            );
        }
        seen += c;
    }
    None
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
/// through the zero-copy decoder (`otlp_wire`), OTLP/JSON through prost's serde types.
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
            let view = otlp_wire::decode_metrics(raw)
                .map_err(|e| IngestError::BadRequest(format!("protobuf: {e}")))?;
            Ok(apply_view(store, cumulative, agg, &view))
        }
        Encoding::Json => {
            let request = decode_metrics(raw, encoding)?;
            Ok(apply_metrics(store, cumulative, agg, &request))
        }
    }
}

/// The view of a request decoded by prost (OTLP/JSON, and the reference in tests), borrowing
/// its strings: what `otlp_wire::decode_metrics` returns for the same request's protobuf.
pub fn view_of(request: &ExportMetricsServiceRequest) -> MetricsView<'_> {
    let mut v = MetricsView::default();
    for rm in &request.resource_metrics {
        let attrs = rm
            .resource
            .as_ref()
            .map(|r| attrs_to_strings(&r.attributes))
            .unwrap_or_default();
        let first = v.metrics.len();
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let data = metric.data.as_ref().map(|data| view_data(&mut v, data));
                v.metrics.push(MetricView {
                    name: &metric.name,
                    data,
                });
            }
        }
        v.resources.push(ResourceView {
            attrs,
            metrics: first..v.metrics.len(),
        });
    }
    v
}

fn push_attrs<'a>(v: &mut MetricsView<'a>, kvs: &'a [KeyValue]) -> Range<usize> {
    let start = v.attrs.len();
    v.attrs.extend(attrs_to_strings(kvs));
    start..v.attrs.len()
}

/// A view's histogram point from a prost explicit or exponential histogram data point (the two
/// share these fields' names).
macro_rules! histogram_point {
    ($p:expr, $attrs:expr, $bounds:expr, $counts:expr) => {
        HistogramPoint {
            attrs: $attrs,
            start_ns: $p.start_time_unix_nano,
            time_ns: $p.time_unix_nano,
            count: $p.count,
            sum: $p.sum,
            bounds: $bounds,
            counts: $counts,
            min: $p.min,
            max: $p.max,
            flags: $p.flags,
        }
    };
}

fn view_data<'a>(v: &mut MetricsView<'a>, data: &'a Data) -> DataView {
    let numbers = |v: &mut MetricsView<'a>, points: &'a [NumberDataPoint]| {
        let start = v.numbers.len();
        for p in points {
            let attrs = push_attrs(v, &p.attributes);
            v.numbers.push(NumberPoint {
                attrs,
                start_ns: p.start_time_unix_nano,
                time_ns: p.time_unix_nano,
                value: number_value(&p.value),
                flags: p.flags,
            });
        }
        start..v.numbers.len()
    };
    match data {
        Data::Gauge(g) => DataView::Gauge {
            points: numbers(v, &g.data_points),
        },
        Data::Sum(s) => DataView::Sum {
            temporality: s.aggregation_temporality,
            monotonic: s.is_monotonic,
            points: numbers(v, &s.data_points),
        },
        Data::Histogram(h) => {
            let start = v.histograms.len();
            for p in &h.data_points {
                let attrs = push_attrs(v, &p.attributes);
                let b = v.bounds.len();
                v.bounds.extend(&p.explicit_bounds);
                let c = v.counts.len();
                v.counts.extend(&p.bucket_counts);
                v.histograms.push(histogram_point!(
                    p,
                    attrs,
                    b..v.bounds.len(),
                    c..v.counts.len()
                ));
            }
            DataView::Histogram {
                temporality: h.aggregation_temporality,
                points: start..v.histograms.len(),
            }
        }
        Data::ExponentialHistogram(e) => {
            let start = v.histograms.len();
            for p in &e.data_points {
                let attrs = push_attrs(v, &p.attributes);
                let side = |b: &'a Option<exponential_histogram_data_point::Buckets>| {
                    b.as_ref()
                        .map(|b| (b.offset, &b.bucket_counts[..]))
                        .unwrap_or((0, &[]))
                };
                let (b, c) = (v.bounds.len(), v.counts.len());
                exponential_buckets(
                    p.scale,
                    p.zero_count,
                    p.zero_threshold,
                    side(&p.negative),
                    side(&p.positive),
                    &mut v.bounds,
                    &mut v.counts,
                );
                v.histograms.push(histogram_point!(
                    p,
                    attrs,
                    b..v.bounds.len(),
                    c..v.counts.len()
                ));
            }
            DataView::ExponentialHistogram {
                temporality: e.aggregation_temporality,
                points: start..v.histograms.len(),
            }
        }
        Data::Summary(s) => {
            let start = v.summaries.len();
            for p in &s.data_points {
                let attrs = push_attrs(v, &p.attributes);
                let q = v.quantiles.len();
                v.quantiles
                    .extend(p.quantile_values.iter().map(|q| (q.quantile, q.value)));
                v.summaries.push(SummaryPoint {
                    attrs,
                    start_ns: p.start_time_unix_nano,
                    time_ns: p.time_unix_nano,
                    quantiles: q..v.quantiles.len(),
                    flags: p.flags,
                });
            }
            DataView::Summary {
                points: start..v.summaries.len(),
            }
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

fn number_value(v: &Option<number_data_point::Value>) -> Option<f64> {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => Some(*d),
        Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
        None => None,
    }
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

/// An exponential histogram's buckets as explicit ones, appended to `bounds` and `counts`:
/// negative buckets (most negative first), the zero bucket, then positive buckets; bucket `i`
/// at scale `s` covers `(base^i, base^(i+1)]` with `base = 2^(2^-s)`. `negative` and
/// `positive` are (offset, counts).
pub fn exponential_buckets(
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    negative: (i32, &[u64]),
    positive: (i32, &[u64]),
    bounds: &mut Vec<f64>,
    counts: &mut Vec<u64>,
) {
    let (b0, c0) = (bounds.len(), counts.len());
    let base = 2f64.powf(2f64.powi(-scale));
    let (offset, neg) = negative;
    for (k, c) in neg.iter().enumerate().rev() {
        let i = offset as f64 + k as f64;
        bounds.push(-base.powf(i));
        counts.push(*c);
    }
    let has_negative = counts.len() > c0;
    if zero_count > 0 || has_negative {
        bounds.push(zero_threshold.max(0.0));
        counts.push(zero_count);
    }
    let (offset, pos) = positive;
    for (k, c) in pos.iter().enumerate() {
        let i = offset as f64 + k as f64;
        bounds.push(base.powf(i + 1.0));
        counts.push(*c);
    }
    // Explicit histograms have one more bucket than bounds: the last upper edge is implied
    // (the recorded max bounds it when quantiles are estimated).
    if bounds.len() > b0 {
        bounds.pop();
    }
    if counts.len() == c0 {
        counts.push(0);
    }
}

/// An exponential histogram point as an explicit-bucket one (see `exponential_buckets`).
pub fn exponential_to_explicit(p: &ExponentialHistogramDataPoint) -> HistogramDataPoint {
    let side = |b: &Option<exponential_histogram_data_point::Buckets>| {
        b.as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or_default()
    };
    let (neg, pos) = (side(&p.negative), side(&p.positive));
    let (mut bounds, mut counts) = (Vec::new(), Vec::new());
    exponential_buckets(
        p.scale,
        p.zero_count,
        p.zero_threshold,
        (neg.0, &neg.1),
        (pos.0, &pos.1),
        &mut bounds,
        &mut counts,
    );
    HistogramDataPoint {
        attributes: p.attributes.clone(),
        start_time_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        count: p.count,
        sum: p.sum,
        bucket_counts: counts,
        explicit_bounds: bounds,
        exemplars: Vec::new(),
        flags: p.flags,
        min: p.min,
        max: p.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn kv_int(k: &str, v: i64) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(v)),
            }),
            ..Default::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "web")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn gauge(name: &str, t_ms: u64, v: f64) -> Metric {
        Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: t_ms * NS_PER_MS,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    attributes: vec![kv("host", "a")],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }
    }

    fn hist_point(t_ms: u64, status: i64, buckets: Vec<u64>, sum: f64) -> HistogramDataPoint {
        HistogramDataPoint {
            start_time_unix_nano: NS_PER_MS,
            time_unix_nano: t_ms * NS_PER_MS,
            count: buckets.iter().sum(),
            sum: Some(sum),
            explicit_bounds: vec![0.1, 0.5, 1.0],
            bucket_counts: buckets,
            attributes: vec![kv_int("http.response.status_code", status)],
            ..Default::default()
        }
    }

    #[test]
    fn gauge_points_land_with_merged_attributes() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let body = request(vec![gauge("cpu", 1000, 0.5)]).encode_to_vec();
        let r = ingest_metrics(
            &mut store,
            &mut cum,
            &mut agg,
            &body,
            Encoding::Protobuf,
            false,
            1 << 20,
        )
        .unwrap();
        assert_eq!(r.accepted, 1);
        let s = store
            .get("cpu", "value", &[("host", "a"), ("service.name", "web")])
            .unwrap();
        assert_eq!(s.ring.back().unwrap().value, 0.5);
    }

    #[test]
    fn cumulative_histograms_become_interval_rollups() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let first = request(vec![Metric {
            name: "http.server.request.duration".into(),
            data: Some(Data::Histogram(Histogram {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                data_points: vec![
                    hist_point(61_001, 200, vec![10, 0, 0, 0], 0.5),
                    hist_point(61_001, 500, vec![0, 0, 0, 0], 0.0),
                ],
            })),
            ..Default::default()
        }]);
        apply_metrics(&mut store, &mut cum, &mut agg, &first);
        let second = request(vec![Metric {
            name: "http.server.request.duration".into(),
            data: Some(Data::Histogram(Histogram {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                data_points: vec![
                    hist_point(121_001, 200, vec![20, 10, 0, 0], 4.0),
                    hist_point(121_001, 500, vec![0, 0, 5, 5], 8.0),
                ],
            })),
            ..Default::default()
        }]);
        let report = apply_metrics(&mut store, &mut cum, &mut agg, &second);
        assert_eq!(report.accepted, 2);
        // Roll-ups are written per finished minute.
        agg.flush(&mut store, i64::MAX);
        let roll = |stat: &str| {
            store
                .get(
                    "http.server.request.duration",
                    stat,
                    &[("service.name", "web")],
                )
                .unwrap()
                .ring
                .back()
                .unwrap()
                .value
        };
        // Interval: 10 + 10 fast (200), 5 + 5 slow (500) = 30 requests in 60 s.
        assert_eq!(roll("count"), 30.0);
        assert!((roll("rate") - 0.5).abs() < 1e-9);
        assert!((roll("error_ratio") - 10.0 / 30.0).abs() < 1e-9);
        assert!((roll("mean") - (3.5 + 8.0) / 30.0).abs() < 1e-9);
        let p99 = roll("p99");
        // The overflow bucket has no upper bound and the interval no max: its lower bound is the estimate.
        assert_eq!(p99, 1.0);
        let p50 = roll("p50");
        assert!(p50 <= 0.5 && p50 > 0.0, "p50 {p50}");
    }

    #[test]
    fn instances_of_a_service_roll_up_together_and_exponential_histograms_count() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        for (instance, fast, slow) in [("i-1", 8, 0), ("i-2", 0, 2)] {
            let mut req = request(vec![Metric {
                name: "lat".into(),
                data: Some(Data::Histogram(Histogram {
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    data_points: vec![hist_point(61_000, 200, vec![fast, 0, slow, 0], 1.0)],
                })),
                ..Default::default()
            }]);
            req.resource_metrics[0]
                .resource
                .as_mut()
                .unwrap()
                .attributes
                .push(kv("service.instance.id", instance));
            apply_metrics(&mut store, &mut cum, &mut agg, &req);
        }
        let exp = ExponentialHistogramDataPoint {
            time_unix_nano: 61_000 * NS_PER_MS,
            start_time_unix_nano: 1_000 * NS_PER_MS,
            count: 4,
            sum: Some(6.0),
            scale: 0,
            zero_count: 0,
            positive: Some(
                opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets {
                    offset: 0,
                    bucket_counts: vec![2, 2],
                },
            ),
            min: Some(1.0),
            max: Some(4.0),
            ..Default::default()
        };
        let converted = exponential_to_explicit(&exp);
        // Scale 0: buckets (1, 2] and (2, 4]; the last upper edge is implied.
        assert_eq!(converted.explicit_bounds, vec![2.0]);
        assert_eq!(converted.bucket_counts, vec![2, 2]);
        let req = request(vec![Metric {
            name: "lat".into(),
            data: Some(Data::ExponentialHistogram(
                opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    data_points: vec![exp],
                },
            )),
            ..Default::default()
        }]);
        let r = apply_metrics(&mut store, &mut cum, &mut agg, &req);
        assert_eq!((r.accepted, r.rejected), (1, 0));
        agg.flush(&mut store, i64::MAX);
        let found = store.find("lat", "count", &[("service.name".into(), "web".into())]);
        // One service-level series (instances dropped) holding 8 + 2 + 4 requests.
        let rollup: Vec<_> = found.iter().filter(|s| s.attributes.len() == 1).collect();
        assert_eq!(rollup.len(), 1);
        assert_eq!(rollup[0].ring.back().unwrap().value, 14.0);
    }

    #[test]
    fn cumulative_streams_keep_apart_whatever_their_attribute_values() {
        // With keys joined by separator characters these two streams had one key, and each
        // point was taken as the other stream's next value.
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let sum = |t_ms: u64, attrs: Vec<KeyValue>, v: i64| {
            request(vec![Metric {
                name: "requests".into(),
                data: Some(Data::Sum(Sum {
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                    data_points: vec![NumberDataPoint {
                        start_time_unix_nano: NS_PER_MS,
                        time_unix_nano: t_ms * NS_PER_MS,
                        value: Some(number_data_point::Value::AsInt(v)),
                        attributes: attrs,
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            }])
        };
        let forged = || vec![kv("a", "x\u{1f}b\u{1e}y")];
        let plain = || vec![kv("a", "x"), kv("b", "y")];
        for (t, attrs, v) in [(10_000, forged(), 10), (10_000, plain(), 100)] {
            apply_metrics(&mut store, &mut cum, &mut agg, &sum(t, attrs, v));
        }
        for (t, attrs, v) in [(20_000, forged(), 20), (20_000, plain(), 105)] {
            apply_metrics(&mut store, &mut cum, &mut agg, &sum(t, attrs, v));
        }
        let deltas = |attrs: &[(&str, &str)]| -> Vec<f64> {
            let s = store.get("requests", "delta", attrs).unwrap();
            s.ring.iter().map(|x| x.value).collect()
        };
        let svc = ("service.name", "web");
        assert_eq!(deltas(&[("a", "x\u{1f}b\u{1e}y"), svc]), vec![10.0, 10.0]);
        assert_eq!(deltas(&[("a", "x"), ("b", "y"), svc]), vec![100.0, 5.0]);
    }

    #[test]
    fn monotonic_sums_become_rates_and_survive_resets() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let sum = |t_ms: u64, start_ms: u64, v: i64| {
            request(vec![Metric {
                name: "requests".into(),
                data: Some(Data::Sum(Sum {
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                    data_points: vec![NumberDataPoint {
                        start_time_unix_nano: start_ms * NS_PER_MS,
                        time_unix_nano: t_ms * NS_PER_MS,
                        value: Some(number_data_point::Value::AsInt(v)),
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            }])
        };
        apply_metrics(&mut store, &mut cum, &mut agg, &sum(10_000, 0, 100));
        apply_metrics(&mut store, &mut cum, &mut agg, &sum(20_000, 0, 150));
        // Restart: new start time, lower value.
        apply_metrics(&mut store, &mut cum, &mut agg, &sum(30_000, 25_000, 20));
        let s = store
            .get("requests", "rate", &[("service.name", "web")])
            .unwrap();
        let rates: Vec<f64> = s.ring.iter().map(|x| x.value).collect();
        assert_eq!(rates, vec![5.0, 4.0]);
    }

    #[test]
    fn gzip_bomb_is_refused_without_inflating_it() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            inflate(&bomb, 1 << 20).unwrap_err(),
            IngestError::TooLarge { limit: 1 << 20 }
        );
    }

    #[test]
    fn gzip_members_are_one_body() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut body = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            body.extend(enc.finish().unwrap());
        }
        assert_eq!(inflate(&body, 100).unwrap(), b"hello world");
        assert!(matches!(
            inflate(&body, 5),
            Err(IngestError::TooLarge { .. })
        ));
    }

    #[test]
    fn json_uses_camel_case_and_string_integers() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
            "scopeMetrics":[{"metrics":[{"name":"queue","unknownField":1,"gauge":{"dataPoints":[
            {"timeUnixNano":"1700000000000000000","asInt":"42"}]}}]}]}]}"#;
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let r = ingest_metrics(
            &mut store,
            &mut cum,
            &mut agg,
            body,
            Encoding::Json,
            false,
            1 << 20,
        )
        .unwrap();
        assert_eq!(r.accepted, 1);
        let s = store
            .get("queue", "value", &[("service.name", "api")])
            .unwrap();
        assert_eq!(s.ring[0].value, 42.0);
        assert_eq!(s.ring[0].ts_ms, 1_700_000_000_000);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cum = HashMap::new();
        let mut agg = EventAggregator::default();
        let r = ingest_metrics(
            &mut store,
            &mut cum,
            &mut agg,
            b"\xff\xff\xff",
            Encoding::Protobuf,
            false,
            1 << 20,
        );
        assert!(matches!(r, Err(IngestError::BadRequest(_))));
        let r = ingest_metrics(
            &mut store,
            &mut cum,
            &mut agg,
            b"{",
            Encoding::Json,
            false,
            1 << 20,
        );
        assert!(matches!(r, Err(IngestError::BadRequest(_))));
    }

    #[test]
    fn merger_reuses_the_order_only_for_the_same_keys() {
        // The merge as it was before the order was remembered.
        fn reference<'a>(
            resource: &'a [Attr<'a>],
            point: &'a [Attr<'a>],
        ) -> Vec<(&'a str, &'a str)> {
            let mut out: Vec<(&str, &str)> = point.iter().map(|(k, v)| (*k, v.as_ref())).collect();
            for (k, v) in resource {
                if !point.iter().any(|(pk, _)| pk == k) {
                    out.push((k, v.as_ref()));
                }
            }
            out.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out
        }
        let a = |k: &'static str, v: &'static str| -> Attr<'static> { (k, Cow::Borrowed(v)) };
        let resource = vec![a("service.name", "web"), a("host", "h1"), a("b", "res")];
        let points = vec![
            vec![a("b", "1"), a("a", "1")],
            vec![a("b", "2"), a("a", "2")],
            vec![a("a", "3"), a("b", "3")],
            vec![a("a", "4"), a("c", "4"), a("a", "dup")],
            vec![a("a", "5"), a("c", "5"), a("a", "dup")],
            vec![],
            vec![a("host", "mine")],
            vec![a("z", "6")],
        ];
        let mut merger = Merger::new(&resource);
        let mut out = Vec::new();
        for p in &points {
            merger.merge(p, &mut out);
            assert_eq!(out, reference(&resource, p));
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let q = bucket_quantile(
            &[1.0, 2.0],
            &[0, 10, 0],
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
        )
        .unwrap();
        assert!((q - 1.5).abs() < 1e-9);
    }
}
