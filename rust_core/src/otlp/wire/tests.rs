//! Differential tests: the zero-copy decoder against prost (the reference) on the official
//! example, on generated requests covering every field, and on corrupted bytes.

use super::*;
use crate::otlp::aggregator::EventAggregator;
use crate::otlp::body::{any_value_string, Encoding, IngestReport};
use crate::otlp::decode::{decode, view_of};
use crate::otlp::series::{apply_view, CumulativeStreams};
use crate::store::{SeriesStore, StoreConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// xorshift64*: a seeded generator, so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn f64(&mut self) -> f64 {
        match self.below(10) {
            0 => f64::NAN,
            1 => -0.0,
            2 => f64::INFINITY,
            _ => (self.below(2_000_000) as f64 - 1_000_000.0) / 1000.0,
        }
    }
    fn word(&mut self) -> String {
        const WORDS: [&str; 8] = ["a", "route", "service.name", "é", "", "x", "k", "/r1"];
        WORDS[self.below(WORDS.len() as u64) as usize].to_string()
    }
}

fn any(rng: &mut Rng, depth: u32) -> Option<AnyValue> {
    use any_value::Value;
    let value = match rng.below(if depth > 0 { 10 } else { 8 }) {
        0 => None,
        1..=3 => Some(Value::StringValue(rng.word())),
        4 => Some(Value::BoolValue(rng.chance(50))),
        5 => Some(Value::IntValue(rng.next() as i64 >> rng.below(64))),
        6 => Some(Value::DoubleValue(rng.f64())),
        7 => Some(Value::BytesValue(vec![
            rng.below(256) as u8;
            rng.below(3) as usize
        ])),
        8 => Some(Value::ArrayValue(ArrayValue {
            values: (0..rng.below(3))
                .map(|_| any(rng, depth - 1).unwrap_or_default())
                .collect(),
        })),
        _ => Some(Value::KvlistValue(KeyValueList {
            values: (0..rng.below(3)).map(|_| kv(rng, depth - 1)).collect(),
        })),
    };
    rng.chance(90).then_some(AnyValue { value })
}

fn kv(rng: &mut Rng, depth: u32) -> KeyValue {
    KeyValue {
        key: rng.word(),
        value: any(rng, depth),
        key_strindex: if rng.chance(10) { 3 } else { 0 },
    }
}

fn attrs(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(4)).map(|_| kv(rng, 2)).collect()
}

fn exemplars(rng: &mut Rng) -> Vec<Exemplar> {
    (0..rng.below(2))
        .map(|_| Exemplar {
            filtered_attributes: attrs(rng),
            time_unix_nano: rng.next(),
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsInt(7)),
        })
        .collect()
}

fn time(rng: &mut Rng) -> u64 {
    if rng.chance(10) {
        0
    } else {
        1_700_000_000_000_000_000 + rng.below(4) * 60_000_000_000
    }
}

fn number_points(rng: &mut Rng) -> Vec<NumberDataPoint> {
    (0..rng.below(4))
        .map(|_| NumberDataPoint {
            attributes: attrs(rng),
            start_time_unix_nano: time(rng),
            time_unix_nano: time(rng),
            exemplars: exemplars(rng),
            flags: rng.below(2) as u32,
            value: match rng.below(3) {
                0 => None,
                1 => Some(number_data_point::Value::AsDouble(rng.f64())),
                _ => Some(number_data_point::Value::AsInt(rng.below(1000) as i64 - 10)),
            },
        })
        .collect()
}

fn metric(rng: &mut Rng) -> Metric {
    let temporality = rng.below(3) as i32;
    let data = match rng.below(6) {
        0 => None,
        1 => Some(Data::Gauge(Gauge {
            data_points: number_points(rng),
        })),
        2 => Some(Data::Sum(Sum {
            data_points: number_points(rng),
            aggregation_temporality: temporality,
            is_monotonic: rng.chance(70),
        })),
        3 => Some(Data::Histogram(Histogram {
            aggregation_temporality: temporality,
            data_points: (0..rng.below(4))
                .map(|_| {
                    let n = rng.below(4) as usize;
                    let counts: Vec<u64> = (0..n + 1).map(|_| rng.below(10)).collect();
                    HistogramDataPoint {
                        attributes: attrs(rng),
                        start_time_unix_nano: time(rng),
                        time_unix_nano: time(rng),
                        count: counts.iter().sum(),
                        sum: rng.chance(80).then(|| rng.f64()),
                        explicit_bounds: (0..n).map(|i| i as f64 * 0.5).collect(),
                        bucket_counts: if rng.chance(10) { Vec::new() } else { counts },
                        exemplars: exemplars(rng),
                        flags: 0,
                        min: rng.chance(50).then(|| rng.f64()),
                        max: rng.chance(50).then(|| rng.f64()),
                    }
                })
                .collect(),
        })),
        4 => Some(Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: temporality,
            data_points: (0..rng.below(3))
                .map(|_| {
                    let side = |rng: &mut Rng| {
                        rng.chance(70).then(|| Buckets {
                            offset: rng.below(10) as i32 - 5,
                            bucket_counts: (0..rng.below(4)).map(|_| rng.below(300)).collect(),
                        })
                    };
                    ExponentialHistogramDataPoint {
                        attributes: attrs(rng),
                        start_time_unix_nano: time(rng),
                        time_unix_nano: time(rng),
                        count: rng.below(50),
                        sum: rng.chance(80).then(|| rng.f64()),
                        scale: rng.below(8) as i32 - 3,
                        zero_count: rng.below(3),
                        positive: side(rng),
                        negative: side(rng),
                        flags: 1,
                        exemplars: exemplars(rng),
                        min: rng.chance(50).then(|| rng.f64()),
                        max: rng.chance(50).then(|| rng.f64()),
                        zero_threshold: if rng.chance(50) { 0.001 } else { 0.0 },
                    }
                })
                .collect(),
        })),
        _ => Some(Data::Summary(Summary {
            data_points: (0..rng.below(3))
                .map(|_| SummaryDataPoint {
                    attributes: attrs(rng),
                    start_time_unix_nano: time(rng),
                    time_unix_nano: time(rng),
                    count: rng.below(100),
                    sum: rng.f64(),
                    quantile_values: {
                        let n = rng.below(5) as usize;
                        [0.5, 0.9, 0.99, 0.75]
                            .iter()
                            .take(n)
                            .map(|q| ValueAtQuantile {
                                quantile: *q,
                                value: rng.f64(),
                            })
                            .collect()
                    },
                    flags: 0,
                })
                .collect(),
        })),
    };
    Metric {
        name: if rng.chance(90) {
            format!("m{}", rng.below(3))
        } else {
            String::new()
        },
        description: "d".into(),
        unit: "s".into(),
        metadata: if rng.chance(20) {
            attrs(rng)
        } else {
            Vec::new()
        },
        data,
    }
}

fn request(rng: &mut Rng) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: (0..1 + rng.below(2))
            .map(|_| ResourceMetrics {
                resource: rng.chance(90).then(|| Resource {
                    attributes: attrs(rng),
                    dropped_attributes_count: rng.below(2) as u32,
                    entity_refs: if rng.chance(20) {
                        vec![EntityRef {
                            schema_url: "u".into(),
                            r#type: "service".into(),
                            id_keys: vec!["service.name".into()],
                            description_keys: vec![],
                        }]
                    } else {
                        Vec::new()
                    },
                }),
                scope_metrics: (0..1 + rng.below(2))
                    .map(|_| ScopeMetrics {
                        scope: rng.chance(50).then(|| InstrumentationScope {
                            name: "lib".into(),
                            version: "1".into(),
                            attributes: attrs(rng),
                            dropped_attributes_count: 0,
                        }),
                        metrics: (0..1 + rng.below(3)).map(|_| metric(rng)).collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            })
            .collect(),
    }
}

/// Everything a request leaves in a fresh store: the report and every series' points.
fn applied(view: &MetricsView<'_>) -> (IngestReport, Vec<String>) {
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut cumulative = CumulativeStreams::new();
    let mut agg = EventAggregator::default();
    let report = apply_view(&mut store, &mut cumulative, &mut agg, view);
    agg.flush(&mut store, i64::MAX);
    let mut series: Vec<String> = store
        .iter()
        .map(|s| {
            let points: Vec<(i64, u64)> = s
                .ring
                .iter()
                .map(|p| (p.ts_ms, p.value.to_bits()))
                .collect();
            format!(
                "{} {} {:?} {:?}",
                s.metric(),
                s.statistic(),
                s.attributes,
                points
            )
        })
        .collect();
    series.sort();
    (report, series)
}

/// Both decoders on `bytes`: the same view and the same applied result, or both errors.
/// Returns whether the bytes decoded.
fn same_as_prost(bytes: &[u8]) -> bool {
    let reference = ExportMetricsServiceRequest::decode(bytes);
    let ours = decode_metrics(bytes);
    match (&reference, &ours) {
        (Ok(req), Ok(view)) => {
            let expected = view_of(req);
            assert_eq!(
                format!("{expected:?}"),
                format!("{view:?}"),
                "bytes {bytes:02x?}"
            );
            assert_eq!(applied(&expected), applied(view));
            true
        }
        (Err(_), Err(_)) => false,
        _ => panic!(
            "prost {:?} vs zero-copy {:?} on {bytes:02x?}",
            reference.as_ref().err(),
            ours.as_ref().err()
        ),
    }
}

#[test]
fn official_example_decodes_as_prost_does() {
    let json = include_bytes!("../../../testdata/example-metrics.json");
    let req: ExportMetricsServiceRequest = decode(json, Encoding::Json).unwrap();
    let bytes = req.encode_to_vec();
    assert!(same_as_prost(&bytes));
    let view = decode_metrics(&bytes).unwrap();
    assert!(!view.numbers.is_empty() && !view.histograms.is_empty());
    // Every prefix and every single-byte corruption, too.
    for n in 0..bytes.len() {
        same_as_prost(&bytes[..n]);
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        same_as_prost(&b);
    }
}

#[test]
fn generated_requests_decode_as_prost_does() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..600 {
        let bytes = request(&mut rng).encode_to_vec();
        assert!(same_as_prost(&bytes));
    }
}

#[test]
fn corrupted_requests_fail_or_decode_as_prost_does() {
    let mut rng = Rng(0x5eed_0002);
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut bytes = request(&mut rng).encode_to_vec();
        match rng.below(5) {
            0 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
            1 => {
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(bytes.len().max(1) as u64) as usize;
                    if let Some(b) = bytes.get_mut(i) {
                        *b = rng.below(256) as u8;
                    }
                }
            }
            2 => {
                let i = rng.below(bytes.len() as u64 + 1) as usize;
                let junk: Vec<u8> = (0..rng.below(6)).map(|_| rng.below(256) as u8).collect();
                bytes.splice(i..i, junk);
            }
            3 => {
                // Flip one bit: lengths, tags and wire types go wrong in small ways.
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len() as u64) as usize;
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            _ => {
                bytes = (0..rng.below(40)).map(|_| rng.below(256) as u8).collect();
            }
        }
        if same_as_prost(&bytes) {
            decoded += 1;
        } else {
            refused += 1;
        }
    }
    // Both outcomes are exercised.
    assert!(
        decoded > 100 && refused > 100,
        "{decoded} decoded, {refused} refused"
    );
}

/// A field: key then payload.
fn field(tag: u32, wire_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wire_type)), &mut out);
    if wire_type == LEN {
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
    }
    out.extend_from_slice(payload);
    out
}

#[test]
fn wire_corner_cases_match_prost() {
    let gauge_point = |v: f64| {
        let point = [
            field(3, FIXED64, &7u64.to_le_bytes()),
            field(4, FIXED64, &v.to_le_bytes()),
        ]
        .concat();
        field(1, LEN, &point)
    };
    let metric = |data: Vec<u8>| {
        let m = [field(1, LEN, b"m"), data].concat();
        let scope = field(2, LEN, &m);
        field(1, LEN, &field(2, LEN, &scope))
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Gauge, then Sum, then Gauge again: the last variant wins, fresh.
        (
            "oneof replaced",
            metric(
                [
                    field(5, LEN, &gauge_point(1.0)),
                    field(7, LEN, &[gauge_point(2.0), field(3, VARINT, &[1])].concat()),
                    field(5, LEN, &gauge_point(3.0)),
                ]
                .concat(),
            ),
        ),
        // The same variant twice merges: both points.
        (
            "oneof merged",
            metric(
                [
                    field(5, LEN, &gauge_point(1.0)),
                    field(5, LEN, &gauge_point(2.0)),
                ]
                .concat(),
            ),
        ),
        // Unknown fields of every wire type, a group among them.
        (
            "unknown fields",
            metric(
                [
                    field(99, VARINT, &[0x80, 0x01]),
                    field(98, FIXED64, &[0; 8]),
                    field(97, FIXED32, &[0; 4]),
                    field(96, LEN, b"xyz"),
                    field(
                        95,
                        START_GROUP,
                        &[field(1, VARINT, &[5]), field(95, END_GROUP, &[])].concat(),
                    ),
                    field(5, LEN, &gauge_point(1.0)),
                ]
                .concat(),
            ),
        ),
        (
            "group end mismatch",
            metric(field(95, START_GROUP, &field(94, END_GROUP, &[]))),
        ),
        ("stray end group", metric(field(95, END_GROUP, &[]))),
        (
            "known field, wrong wire type",
            metric(field(1, VARINT, &[1])),
        ),
        ("tag zero", vec![0x02, 0x00]),
        ("wire type 6", vec![0x0e]),
        (
            "ten-byte varint",
            [field(99, VARINT, &[0xff; 9]), vec![0x01]].concat(),
        ),
        (
            "overlong varint",
            [field(99, VARINT, &[0xff; 9]), vec![0x02]].concat(),
        ),
        (
            "invalid UTF-8 in an unused string",
            metric(field(2, LEN, &[0xff])),
        ),
        (
            "unpacked and packed bucket counts",
            metric(field(
                9,
                LEN,
                &field(
                    1,
                    LEN,
                    &[
                        field(6, FIXED64, &3u64.to_le_bytes()),
                        field(6, LEN, &[4u64.to_le_bytes(), 5u64.to_le_bytes()].concat()),
                        field(
                            7,
                            LEN,
                            &[1.0f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat(),
                        ),
                    ]
                    .concat(),
                ),
            )),
        ),
        (
            "packed length not a multiple of 8",
            metric(field(9, LEN, &field(1, LEN, &field(6, LEN, &[0; 7])))),
        ),
    ];
    for (name, bytes) in &cases {
        let ok = same_as_prost(bytes);
        let expect_ok = matches!(
            *name,
            "oneof replaced"
                | "oneof merged"
                | "unknown fields"
                | "ten-byte varint"
                | "unpacked and packed bucket counts"
        );
        assert_eq!(ok, expect_ok, "{name}");
    }
    let view = decode_metrics(&cases[0].1).unwrap();
    assert_eq!(view.numbers.len(), 1);
    assert_eq!(view.numbers[0].value, Some(3.0));
    assert_eq!(decode_metrics(&cases[1].1).unwrap().numbers.len(), 2);
    assert_eq!(decode_metrics(&cases[11].1).unwrap().counts, vec![3, 4, 5]);
}

#[test]
fn deep_nesting_is_refused_like_prost() {
    // An attribute value nested in arrays past the recursion limit, and just under it.
    for levels in [40, 60] {
        let mut v = field(1, LEN, b"x");
        for _ in 0..levels {
            v = field(5, LEN, &field(1, LEN, &v));
        }
        let kv = [field(1, LEN, b"k"), field(2, LEN, &v)].concat();
        let resource = field(1, LEN, &field(1, LEN, &kv));
        let bytes = field(1, LEN, &resource);
        let ok = same_as_prost(&bytes);
        assert_eq!(ok, levels == 40, "{levels} levels");
    }
}

#[test]
fn attribute_values_render_like_any_value_string() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..500 {
        let kv = kv(&mut rng, 3);
        let bytes = kv.encode_to_vec();
        let (_, v) = key_value(Reader { buf: &bytes }, 50).unwrap();
        assert_eq!(rendered(&v), any_value_string(&kv.value));
    }
}
