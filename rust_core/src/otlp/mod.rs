//! OTLP ingest: export requests in; series updates, one-minute buckets and suggestion events
//! out.
//!
//! Each module uses only modules listed before it:
//!
//! * [`body`]: the body's encoding, its bytes within the size limit (gzip inflated), the
//!   report for the response, and how attribute values are rendered;
//! * [`histogram`]: explicit-bucket histogram arithmetic (exponential buckets, quantiles,
//!   roll-ups);
//! * [`view`]: a decoded metrics request ([`MetricsView`]), strings borrowed from the request;
//! * [`wire`]: the zero-copy protobuf decoder of metrics requests into a view;
//! * [`decode`]: prost decoding of every signal (protobuf or OTLP/JSON), and the view of a
//!   prost metrics request;
//! * [`aggregator`]: one-minute buckets (log counts, span RED statistics, histogram roll-ups)
//!   written to the store;
//! * [`series`]: metrics requests applied to the store (gauges, sums, histograms, summaries);
//! * [`events`]: logs and traces: suggestion events, log counts and server-span RED series.

pub mod aggregator;
pub mod body;
pub mod decode;
pub mod events;
pub mod histogram;
pub mod series;
pub mod view;
pub mod wire;

pub use aggregator::EventAggregator;
pub use body::{any_value_string, inflate, request_bytes, Encoding, IngestReport};
pub use decode::{decode_metrics, view_of};
pub use events::{ingest_logs, ingest_traces, LogsOutcome, SuggestionEvent};
pub use histogram::Rollup;
pub use series::{apply_metrics, apply_view, ingest_metrics, CumulativeStreams};
pub use view::MetricsView;
