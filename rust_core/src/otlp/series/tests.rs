use super::*;
use crate::otlp::histogram::exponential_to_explicit;
use crate::store::StoreConfig;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

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
    fn reference<'a>(resource: &'a [Attr<'a>], point: &'a [Attr<'a>]) -> Vec<(&'a str, &'a str)> {
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
