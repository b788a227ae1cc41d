//! Decoding with prost: export requests of every signal from protobuf or OTLP/JSON (JSON
//! through the `opentelemetry-proto` serde support: lowerCamelCase, 64-bit integers as strings
//! or numbers), and the [`MetricsView`] of a prost metrics request, the same view the
//! zero-copy decoder ([`super::wire`]) gives for its protobuf.

use std::borrow::Cow;
use std::ops::Range;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric::Data, number_data_point, NumberDataPoint,
};
use prost::Message;

use super::body::{any_value_string, Encoding};
use super::histogram::exponential_buckets;
use super::view::{
    Attr, DataView, HistogramPoint, MetricView, MetricsView, NumberPoint, ResourceView,
    SummaryPoint,
};
use crate::error::IngestError;

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

/// The view of a request decoded by prost (OTLP/JSON, and the reference in tests), borrowing
/// its strings: what `wire::decode_metrics` returns for the same request's protobuf.
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

fn number_value(v: &Option<number_data_point::Value>) -> Option<f64> {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => Some(*d),
        Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
        None => None,
    }
}
