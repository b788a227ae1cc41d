//! OTLP logs and traces: what Referee takes from them.
//!
//! * **Logs.** A record whose event name is `copilot.suggestion` (the top-level `EventName`,
//!   or the older `event.name` attribute) is a suggestion: it is handed back to the caller as a
//!   [`SuggestionEvent`] (its body as text: a string as it is, for the caller to parse, any
//!   other value as JSON, so a key-value map becomes a JSON object) with its attributes and
//!   resource. Every other record is counted per service and severity into `log.records`
//!   series (`count` and `rate` per minute).
//! * **Traces.** Server spans (`SPAN_KIND_SERVER`) become RED series per service, and per
//!   service and route where `http.route` is set: metric `trace.server.duration` with
//!   statistics `count`, `rate`, `error_ratio`, `mean`, `p50`, `p90`, `p99` per minute.
//!
//! Both are counted in the one-minute buckets of [`super::aggregator`].

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::{json, Map, Value as Json};

use super::aggregator::EventAggregator;
use super::body::{any_value_string, request_bytes, Encoding, IngestReport};
use super::decode::decode;
use crate::error::IngestError;
use crate::store::SeriesStore;

/// The event name that marks a log record as a copilot suggestion.
pub const SUGGESTION_EVENT: &str = "copilot.suggestion";

pub const LOG_METRIC: &str = "log.records";
pub const SPAN_METRIC: &str = "trace.server.duration";

/// An OTLP value as JSON, as a person would write it (maps and lists nest).
pub fn any_value_json(v: &Option<AnyValue>) -> Json {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Json::String(s.clone()),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::ArrayValue(a)) => Json::Array(
            a.values
                .iter()
                .map(|x| any_value_json(&Some(x.clone())))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kv)) => kv_json(&kv.values),
        Some(any_value::Value::BytesValue(b)) => {
            Json::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        Some(any_value::Value::StringValueStrindex(i)) => json!(i),
        None => Json::Null,
    }
}

fn kv_json(kvs: &[KeyValue]) -> Json {
    let mut m = Map::new();
    for kv in kvs {
        m.insert(kv.key.clone(), any_value_json(&kv.value));
    }
    Json::Object(m)
}

fn attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn attr_string(kvs: &[KeyValue], key: &str) -> Option<String> {
    attr(kvs, key).map(|v| any_value_string(&Some(v.clone())))
}

/// A `copilot.suggestion` log record as the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionEvent {
    /// The record's body as text: a string body as it is (a suggestion as JSON, for the caller
    /// to parse), any other value as JSON (a key-value map becomes a JSON object).
    pub body: String,
    /// The record's attributes and its resource's that have string values (the others are
    /// left out: the caller reads `service.name`, a string in OpenTelemetry's conventions, and
    /// a value of another type never named the suggestion's source).
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
    /// The record's time, else its observed time (0 when it has neither).
    pub time_unix_nano: u64,
}

impl SuggestionEvent {
    fn of(rec: &LogRecord, resource: &[KeyValue]) -> Self {
        let body = match any_value_json(&rec.body) {
            Json::String(s) => s,
            other => other.to_string(),
        };
        SuggestionEvent {
            body,
            attributes: kv_text(&rec.attributes),
            resource: kv_text(resource),
            time_unix_nano: rec.time_unix_nano.max(rec.observed_time_unix_nano),
        }
    }
}

/// The attributes whose values are strings; of a repeated key the last one counts (as it
/// does in a JSON object).
fn kv_text(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in kvs {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => {
                out.insert(kv.key.clone(), s.clone());
            }
            _ => {
                out.remove(&kv.key);
            }
        }
    }
    out
}

/// What a logs request gave: counts for `partial_success`, and the suggestion events.
#[derive(Debug, Default)]
pub struct LogsOutcome {
    pub report: IngestReport,
    pub suggestions: Vec<SuggestionEvent>,
}

pub fn decode_logs(
    raw: &[u8],
    encoding: Encoding,
) -> Result<ExportLogsServiceRequest, IngestError> {
    decode(raw, encoding)
}

pub fn decode_traces(
    raw: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, IngestError> {
    decode(raw, encoding)
}

/// A resource's attributes and its `service.name` ("" without one).
fn resource_service(resource: &Option<Resource>) -> (&[KeyValue], String) {
    let attrs: &[KeyValue] = resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]);
    (
        attrs,
        attr_string(attrs, "service.name").unwrap_or_default(),
    )
}

fn record_time_ms(time_ns: u64, observed_ns: u64) -> Option<i64> {
    let ns = if time_ns > 0 { time_ns } else { observed_ns };
    (ns > 0).then_some((ns / 1_000_000) as i64)
}

/// The severity label records are counted under: the text when set, else the number's range.
fn severity(text: &str, number: i32) -> &str {
    if !text.is_empty() {
        return text;
    }
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// Decodes a logs request: suggestion events are returned, other records counted.
pub fn ingest_logs(
    store: &mut SeriesStore,
    agg: &mut EventAggregator,
    body_bytes: &[u8],
    encoding: Encoding,
    gzip: bool,
    limit: usize,
) -> Result<LogsOutcome, IngestError> {
    let mut buf = Vec::new();
    let request = decode_logs(request_bytes(body_bytes, gzip, limit, &mut buf)?, encoding)?;
    let mut out = LogsOutcome::default();
    for rl in &request.resource_logs {
        let (resource_attrs, service) = resource_service(&rl.resource);
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                let event = if !rec.event_name.is_empty() {
                    Some(rec.event_name.clone())
                } else {
                    attr_string(&rec.attributes, "event.name")
                };
                if event.as_deref() == Some(SUGGESTION_EVENT) {
                    if rec.body.is_none() {
                        out.report.rejected += 1;
                        if out.report.message.is_empty() {
                            out.report.message = "a copilot.suggestion event had no body".into();
                        }
                        continue;
                    }
                    out.suggestions
                        .push(SuggestionEvent::of(rec, resource_attrs));
                    // Accepted here means decoded; the caller may still reject the suggestion.
                    out.report.accepted += 1;
                    continue;
                }
                let Some(ts) = record_time_ms(rec.time_unix_nano, rec.observed_time_unix_nano)
                else {
                    out.report.rejected += 1;
                    if out.report.message.is_empty() {
                        out.report.message =
                            "a log record had neither a time nor an observed time".into();
                    }
                    continue;
                };
                let attrs = vec![
                    ("service.name".to_string(), service.clone()),
                    (
                        "severity".to_string(),
                        severity(&rec.severity_text, rec.severity_number).to_string(),
                    ),
                ];
                if agg.add_log_record(store, LOG_METRIC, attrs, ts) {
                    out.report.accepted += 1;
                } else {
                    out.report.rejected += 1;
                    if out.report.message.is_empty() {
                        out.report.message =
                            "series limit reached; log records were not counted".into();
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Decodes a traces request and adds its server spans to the RED buckets.
pub fn ingest_traces(
    store: &mut SeriesStore,
    agg: &mut EventAggregator,
    body_bytes: &[u8],
    encoding: Encoding,
    gzip: bool,
    limit: usize,
) -> Result<IngestReport, IngestError> {
    let mut buf = Vec::new();
    let request = decode_traces(request_bytes(body_bytes, gzip, limit, &mut buf)?, encoding)?;
    let mut report = IngestReport::default();
    for rs in &request.resource_spans {
        let (_, service) = resource_service(&rs.resource);
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                if span.kind != SpanKind::Server as i32 {
                    // Only server spans measure what a service's callers see; others are fine.
                    report.accepted += 1;
                    continue;
                }
                if span.end_time_unix_nano < span.start_time_unix_nano
                    || span.end_time_unix_nano == 0
                {
                    report.rejected += 1;
                    if report.message.is_empty() {
                        report.message = "a span ended before it started".into();
                    }
                    continue;
                }
                let duration_s = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9;
                let ts = (span.end_time_unix_nano / 1_000_000) as i64;
                let error = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == StatusCode::Error as i32)
                    || attr_string(&span.attributes, "http.response.status_code")
                        .and_then(|c| c.parse::<u32>().ok())
                        .is_some_and(|c| c >= 500);
                let route = attr_string(&span.attributes, "http.route");
                let mut keys = vec![vec![("service.name".to_string(), service.clone())]];
                if let Some(route) = route.filter(|r| !r.is_empty()) {
                    keys.push(vec![
                        ("http.route".to_string(), route),
                        ("service.name".to_string(), service.clone()),
                    ]);
                }
                let mut counted = false;
                for attrs in keys {
                    if agg.add_span(store, SPAN_METRIC, attrs, ts, error, duration_s) {
                        counted = true;
                    }
                }
                if counted {
                    report.accepted += 1;
                } else {
                    report.rejected += 1;
                    if report.message.is_empty() {
                        report.message = "series limit reached; spans were not counted".into();
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/contracts/otlp");

    /// An official OTLP example, as the repository carries it (tests/contracts/README.md).
    fn example(name: &str) -> Vec<u8> {
        std::fs::read(format!("{EXAMPLES}/{name}"))
            .unwrap_or_else(|e| panic!("{EXAMPLES}/{name}: {e} (the repository carries it)"))
    }

    #[test]
    fn official_log_and_event_examples_decode() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut agg = EventAggregator::default();
        for name in ["example-logs.json", "example-events.json"] {
            let body = example(name);
            let out =
                ingest_logs(&mut store, &mut agg, &body, Encoding::Json, false, 1 << 20).unwrap();
            assert!(out.report.accepted > 0, "{name}");
            assert_eq!(out.report.rejected, 0, "{name}: {}", out.report.message);
        }
    }

    #[test]
    fn official_trace_example_decodes_with_hex_ids() {
        let body = example("example-trace.json");
        let req = decode_traces(&body, Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        // Hex, not base64: 16 bytes of trace id, 8 of span id.
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
    }

    #[test]
    fn suggestion_events_are_returned_and_other_logs_counted() {
        let body = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "copilot"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": "60000000000", "eventName": "copilot.suggestion",
             "body": {"kvlistValue": {"values": [{"key": "id", "value": {"stringValue": "s1"}}]}}},
            {"timeUnixNano": "60000000000",
             "attributes": [{"key": "event.name", "value": {"stringValue": "copilot.suggestion"}}],
             "body": {"stringValue": "{\"id\": \"s2\"}"}},
            {"timeUnixNano": "61000000000", "severityNumber": 17, "body": {"stringValue": "boom"}},
            {"timeUnixNano": "62000000000", "severityText": "ERROR", "body": {"stringValue": "boom"}},
            {"timeUnixNano": "125000000000", "severityText": "ERROR"}
        ]}]}]});
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut agg = EventAggregator::default();
        let out = ingest_logs(
            &mut store,
            &mut agg,
            body.to_string().as_bytes(),
            Encoding::Json,
            false,
            1 << 20,
        )
        .unwrap();
        assert_eq!(out.suggestions.len(), 2);
        assert_eq!(out.suggestions[0].body, r#"{"id":"s1"}"#);
        assert_eq!(out.suggestions[1].body, "{\"id\": \"s2\"}");
        assert_eq!(out.suggestions[0].resource["service.name"], "copilot");
        assert_eq!(
            out.suggestions[1].attributes["event.name"],
            "copilot.suggestion"
        );
        assert_eq!(out.suggestions[1].time_unix_nano, 60_000_000_000);
        assert_eq!(out.report.accepted, 5);
        // The first minute's bucket was written when the next minute started.
        let found = store.find(LOG_METRIC, "count", &[("severity".into(), "ERROR".into())]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].ring.back().unwrap().value, 2.0);
        assert_eq!(agg.flush(&mut store, 300_000), 1);
    }

    #[test]
    fn server_spans_become_red_series() {
        let mut spans = Vec::new();
        for i in 0..10u64 {
            let start = 60_000_000_000 + i * 1_000_000_000;
            spans.push(serde_json::json!({
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "name": "GET /cart", "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + (i + 1) * 10_000_000).to_string(),
                "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}}],
                "status": {"code": if i == 0 { 2 } else { 0 }}
            }));
        }
        spans.push(
            serde_json::json!({"traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b175", "name": "db", "kind": 3,
            "startTimeUnixNano": "60000000000", "endTimeUnixNano": "60100000000"}),
        );
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
            "scopeSpans": [{"spans": spans}]}]});
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut agg = EventAggregator::default();
        let r = ingest_traces(
            &mut store,
            &mut agg,
            body.to_string().as_bytes(),
            Encoding::Json,
            false,
            1 << 20,
        )
        .unwrap();
        assert_eq!((r.accepted, r.rejected), (11, 0));
        assert_eq!(agg.flush(&mut store, 200_000), 2);
        let subject = [("service.name".to_string(), "cart".to_string())];
        let er = store.find(SPAN_METRIC, "error_ratio", &subject);
        assert_eq!(er[0].ring.back().unwrap().value, 0.1);
        let p50 = store.find(SPAN_METRIC, "p50", &subject)[0]
            .ring
            .back()
            .unwrap()
            .value;
        assert!((p50 - 0.055).abs() < 1e-9, "{p50}");
        let count = store.find(SPAN_METRIC, "count", &subject);
        // The service-wide series is found first (fewest attributes), then the route's.
        assert_eq!(count.len(), 2);
        assert_eq!(count[0].attributes.len(), 1);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut agg = EventAggregator::default();
        assert!(ingest_logs(
            &mut store,
            &mut agg,
            b"\xff\x00garbage",
            Encoding::Protobuf,
            false,
            1 << 20
        )
        .is_err());
        assert!(ingest_traces(&mut store, &mut agg, b"{", Encoding::Json, false, 1 << 20).is_err());
    }

    #[test]
    fn open_buckets_are_capped_by_the_series_limit() {
        let mut store = SeriesStore::new(StoreConfig {
            max_series: 3,
            ..Default::default()
        });
        let mut agg = EventAggregator::default();
        let spans: Vec<serde_json::Value> = (0..5)
            .map(|i| {
                serde_json::json!({"traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174", "name": "x", "kind": 2,
                    "startTimeUnixNano": "60000000000", "endTimeUnixNano": "60100000000",
                    "attributes": [{"key": "http.route", "value": {"stringValue": format!("/r{i}")}}]})
            })
            .collect();
        let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "s"}}]}, "scopeSpans": [{"spans": spans}]}]});
        let r = ingest_traces(
            &mut store,
            &mut agg,
            body.to_string().as_bytes(),
            Encoding::Json,
            false,
            1 << 20,
        )
        .unwrap();
        // One service bucket and two route buckets fit; the other spans still count for the
        // service, so none is rejected, and the refused route buckets are counted.
        assert_eq!(agg.open_buckets(), 3);
        assert_eq!((r.accepted, r.rejected), (5, 0));
        assert_eq!(agg.refused, 3);
    }
}
