//! The PyO3 layer: `referee._core`. Thin by design: one call per request or decision, the GIL
//! released for the work, results as typed, frozen objects over the crate's own structs
//! ([`boundary`]); the only JSON that crosses goes from Python to Rust (rules, a suggestion, a
//! band artifact).

mod boundary;
mod functions;

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::baseline::BaselineConfig;
use crate::error::{IngestError, RuleError};
use crate::otlp::{self, Encoding, EventAggregator};
use crate::rules::{RuleFunction, RuleSet, RuleSpec};
use crate::store::{SeriesStore, StoreConfig};
use crate::summary::{BaselineInfo, SeriesSummary};
use boundary::{
    OutcomeBuilder, PyBaselineInfo, PyIngestReport, PyRuleOutcome, PySeriesSummary, PyStoreStats,
    StoreCounters,
};
use functions::python_function;

create_exception!(
    _core,
    DecodeError,
    PyValueError,
    "An OTLP body that cannot be decoded (HTTP 400)."
);
create_exception!(
    _core,
    BodyTooLargeError,
    PyValueError,
    "An OTLP body over the size limit after decompression (HTTP 413)."
);
create_exception!(
    _core,
    RuleCompileError,
    PyValueError,
    "Rule conditions that failed to compile; `.errors` lists them."
);

fn ingest_err(e: IngestError) -> PyErr {
    match e {
        IngestError::BadRequest(_) => DecodeError::new_err(e.to_string()),
        IngestError::TooLarge { .. } => BodyTooLargeError::new_err(e.to_string()),
    }
}

fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("internal state lock poisoned")
}

/// (metric, statistic, attributes) of a series read by rules.
type TouchedSeries = (String, String, HashMap<String, String>);

/// (ts_ms, value, expected, lower, upper, score)
type SampleRow = (i64, f64, f64, f64, f64, f64);

struct State {
    store: SeriesStore,
    cumulative: crate::otlp::CumulativeStreams,
    events: EventAggregator,
}

/// Every live series with its recent points and streaming baseline.
#[pyclass(module = "referee._core", name = "SeriesStore", frozen)]
struct PySeriesStore {
    state: Mutex<State>,
}

impl PySeriesStore {
    /// Runs `f` on the store's state with the GIL released (the state's own lock serialises
    /// writers).
    fn with_state<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut State) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.state.lock().map_err(poisoned)?;
            f(&mut guard)
        })
    }
}

/// Attributes from Python, sorted by key as series identities need them.
fn sorted_attributes(attributes: HashMap<String, String>) -> Vec<(String, String)> {
    let mut attrs: Vec<(String, String)> = attributes.into_iter().collect();
    attrs.sort();
    attrs
}

fn attr_refs(attrs: &[(String, String)]) -> Vec<(&str, &str)> {
    attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn encoding(json: bool) -> Encoding {
    if json {
        Encoding::Json
    } else {
        Encoding::Protobuf
    }
}

#[pymethods]
impl PySeriesStore {
    #[new]
    #[pyo3(signature = (max_series = 100_000, ring_capacity = 512, min_samples = 30, season_min_days = 3, band_k = 3.0))]
    fn new(
        max_series: usize,
        ring_capacity: usize,
        min_samples: u64,
        season_min_days: u32,
        band_k: f64,
    ) -> PyResult<Self> {
        if ring_capacity == 0 || max_series == 0 {
            return Err(PyValueError::new_err(
                "max_series and ring_capacity must be positive",
            ));
        }
        let config = StoreConfig {
            max_series,
            ring_capacity,
            baseline: BaselineConfig {
                min_samples,
                season_min_days,
                band_k,
                ..Default::default()
            },
        };
        Ok(PySeriesStore {
            state: Mutex::new(State {
                store: SeriesStore::new(config),
                cumulative: HashMap::new(),
                events: EventAggregator::default(),
            }),
        })
    }

    /// Decodes an OTLP metrics export request and updates the store; the report counts points.
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_metrics(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<PyIngestReport> {
        let report = self.with_state(py, |state| {
            otlp::ingest_metrics(
                &mut state.store,
                &mut state.cumulative,
                &mut state.events,
                body,
                encoding(json),
                gzip,
                max_body_bytes,
            )
            .map_err(ingest_err)
        })?;
        PyIngestReport::new(py, report, Vec::new())
    }

    /// Decodes an OTLP logs export request. Records whose event name is `copilot.suggestion`
    /// come back in the report's `suggestions`; other records are counted per service and
    /// severity into `log.records` series. The report counts records.
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_logs(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<PyIngestReport> {
        let out = self.with_state(py, |state| {
            otlp::ingest_logs(
                &mut state.store,
                &mut state.events,
                body,
                encoding(json),
                gzip,
                max_body_bytes,
            )
            .map_err(ingest_err)
        })?;
        PyIngestReport::new(py, out.report, out.suggestions)
    }

    /// Decodes an OTLP traces export request; server spans feed `trace.server.duration`
    /// RED series per service (and route). The report counts spans.
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_traces(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<PyIngestReport> {
        let report = self.with_state(py, |state| {
            otlp::ingest_traces(
                &mut state.store,
                &mut state.events,
                body,
                encoding(json),
                gzip,
                max_body_bytes,
            )
            .map_err(ingest_err)
        })?;
        PyIngestReport::new(py, report, Vec::new())
    }

    /// Writes the one-minute log and span buckets that ended at or before `now_ms`.
    /// Returns how many buckets were written.
    fn flush_events(&self, py: Python<'_>, now_ms: i64) -> PyResult<usize> {
        self.with_state(py, |state| Ok(state.events.flush(&mut state.store, now_ms)))
    }

    /// Adds points to one series (replay, tests). Returns how many were accepted.
    fn ingest_points(
        &self,
        py: Python<'_>,
        metric: &str,
        statistic: &str,
        attributes: HashMap<String, String>,
        timestamps_ms: Vec<i64>,
        values: Vec<f64>,
    ) -> PyResult<u64> {
        if timestamps_ms.len() != values.len() {
            return Err(PyValueError::new_err(
                "timestamps_ms and values differ in length",
            ));
        }
        let attrs = sorted_attributes(attributes);
        py.detach(|| {
            let mut guard = self.state.lock().map_err(poisoned)?;
            let key = crate::store::AttrKey::new(&attr_refs(&attrs));
            let mut n = 0;
            for (t, v) in timestamps_ms.iter().zip(&values) {
                if guard
                    .store
                    .push_key(metric, statistic, &key, *t, *v)
                    .is_ok()
                {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// Summaries of the live series (of `metric`, when given), at most `limit`.
    #[pyo3(signature = (metric = None, limit = 1000))]
    fn series(
        &self,
        py: Python<'_>,
        metric: Option<&str>,
        limit: usize,
    ) -> PyResult<Vec<PySeriesSummary>> {
        let rows: Vec<SeriesSummary> = py.detach(|| {
            let guard = self.state.lock().map_err(poisoned)?;
            Ok::<_, PyErr>(
                guard
                    .store
                    .iter()
                    .filter(|s| metric.is_none_or(|m| s.metric() == m))
                    .take(limit)
                    .map(SeriesSummary::of)
                    .collect(),
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|inner| PySeriesSummary { inner })
            .collect())
    }

    /// The recent samples of one series: `[(ts_ms, value, expected, lower, upper, score)]`.
    fn samples(
        &self,
        metric: &str,
        statistic: &str,
        attributes: HashMap<String, String>,
    ) -> PyResult<Vec<SampleRow>> {
        let guard = self.state.lock().map_err(poisoned)?;
        let attrs = sorted_attributes(attributes);
        let refs = attr_refs(&attrs);
        let k = guard.store.config.baseline.band_k;
        Ok(guard
            .store
            .get(metric, statistic, &refs)
            .map(|s| {
                s.ring
                    .iter()
                    .map(|x| {
                        (
                            x.ts_ms,
                            x.value,
                            x.expected,
                            x.expected - k * x.sigma,
                            x.expected + k * x.sigma,
                            x.score as f64,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// True while another thread holds the store (an ingest, a flush, a fit). A caller on an
    /// event loop then hands its work to a thread rather than wait there.
    fn busy(&self) -> bool {
        self.state.try_lock().is_err()
    }

    /// Store-wide counters.
    fn stats(&self) -> PyResult<PyStoreStats> {
        let guard = self.state.lock().map_err(poisoned)?;
        let e = &guard.events;
        Ok(PyStoreStats {
            inner: StoreCounters::of(&guard.store.stats, e.open_buckets(), e.late, e.refused),
        })
    }

    /// Hands a fitted band artifact (JSON, see docs/baselines.md) to one series. Raises
    /// ValueError naming the field when it is malformed, worse than the streaming band in its
    /// backtest, not newer than the current version, or the series does not exist.
    fn set_band(
        &self,
        py: Python<'_>,
        metric: &str,
        statistic: &str,
        attributes: HashMap<String, String>,
        artifact_json: &str,
    ) -> PyResult<()> {
        let spec: crate::band::ArtifactSpec = serde_json::from_str(artifact_json)
            .map_err(|e| PyValueError::new_err(format!("artifact: {e}")))?;
        let artifact = crate::band::BandArtifact::from_spec(spec).map_err(PyValueError::new_err)?;
        let attrs = sorted_attributes(attributes);
        py.detach(|| {
            let mut guard = self.state.lock().map_err(poisoned)?;
            let refs = attr_refs(&attrs);
            guard
                .store
                .set_band(metric, statistic, &refs, artifact)
                .map_err(PyValueError::new_err)
        })
    }

    /// Series read by rules since the last call: `[(metric, statistic, attributes)]`.
    fn take_touched(&self) -> PyResult<Vec<TouchedSeries>> {
        let guard = self.state.lock().map_err(poisoned)?;
        Ok(guard
            .store
            .take_touched()
            .into_iter()
            .map(|(m, s, a)| (m, s, a.into_iter().collect()))
            .collect())
    }

    /// One series' baseline (counters, quantiles, the fitted band), or None without that series.
    fn baseline_info(
        &self,
        py: Python<'_>,
        metric: &str,
        statistic: &str,
        attributes: HashMap<String, String>,
    ) -> PyResult<Option<PyBaselineInfo>> {
        let info = {
            let guard = self.state.lock().map_err(poisoned)?;
            let attrs = sorted_attributes(attributes);
            let refs = attr_refs(&attrs);
            guard
                .store
                .get(metric, statistic, &refs)
                .map(BaselineInfo::of)
        };
        info.map(|i| PyBaselineInfo::new(py, i)).transpose()
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.state.lock().map_err(poisoned)?.store.len())
    }
}

/// A compiled rule set.
#[pyclass(module = "referee._core", name = "RuleSet", frozen)]
struct PyRuleSet {
    rules: RuleSet,
    /// Each rule's id, in rule order, and as a Python string made once (outcomes carry them).
    ids: Vec<(String, Py<PyString>)>,
}

#[pymethods]
impl PyRuleSet {
    /// Compiles rules given as a JSON list of `{id, match, when?, signal?}`.
    /// `source` is hashed into the revision. Raises `RuleCompileError` with every error.
    #[new]
    #[pyo3(signature = (rules_json, source = "", functions = None))]
    fn new(
        py: Python<'_>,
        rules_json: &str,
        source: &str,
        functions: Option<HashMap<String, Py<PyAny>>>,
    ) -> PyResult<Self> {
        let specs: Vec<RuleSpec> = serde_json::from_str(rules_json)
            .map_err(|e| PyValueError::new_err(format!("rules: {e}")))?;
        let ids = specs
            .iter()
            .map(|s| (s.id.clone(), PyString::new(py, &s.id).unbind()))
            .collect();
        let functions: Vec<(String, RuleFunction)> = functions
            .unwrap_or_default()
            .into_iter()
            .map(|(name, callable)| (name, python_function(callable)))
            .collect();
        match py.detach(|| RuleSet::compile_with(specs, source, functions)) {
            Ok(rules) => Ok(PyRuleSet { rules, ids }),
            Err(errors) if errors.iter().any(|e| e.field == "function") => {
                // A plugin's function clashing with a built-in: a configuration error, not a
                // rule's.
                Err(PyValueError::new_err(
                    errors
                        .iter()
                        .map(|e| e.message.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                ))
            }
            Err(errors) => {
                let text = errors
                    .iter()
                    .map(RuleError::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                let exc = RuleCompileError::new_err(text);
                let list: Vec<(String, String, usize, usize, String)> = errors
                    .into_iter()
                    .map(|e| (e.rule, e.field, e.line, e.column, e.message))
                    .collect();
                exc.value(py).setattr("errors", list)?;
                Err(exc)
            }
        }
    }

    #[getter]
    fn revision(&self) -> String {
        self.rules.revision.clone()
    }

    fn __len__(&self) -> usize {
        self.rules.len()
    }

    /// Evaluates every rule against a suggestion (JSON) with the data up to `at_ms`;
    /// returns the outcomes, in rule order, of the rules that have something to say: those
    /// that matched and those whose evaluation failed. (Most rules do not match a given
    /// suggestion; their outcome would only repeat the rule id.)
    fn evaluate(
        &self,
        py: Python<'_>,
        store: &PySeriesStore,
        suggestion_json: &str,
        at_ms: i64,
    ) -> PyResult<Vec<PyRuleOutcome>> {
        let said = py.detach(|| {
            let suggestion: serde_json::Value = serde_json::from_str(suggestion_json)
                .map_err(|e| PyValueError::new_err(format!("suggestion: {e}")))?;
            let guard = store.state.lock().map_err(poisoned)?;
            let outcomes = self.rules.evaluate(&guard.store, &suggestion, at_ms);
            Ok::<_, PyErr>(
                outcomes
                    .into_iter()
                    .enumerate()
                    .filter(|(_, o)| o.matched || o.error.is_some())
                    .collect::<Vec<_>>(),
            )
        })?;
        let mut build = OutcomeBuilder::new(&self.ids);
        said.into_iter()
            .map(|(i, o)| build.build(py, i, o))
            .collect()
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PySeriesStore>()?;
    m.add_class::<PyRuleSet>()?;
    boundary::register(m)?;
    m.add("DecodeError", m.py().get_type::<DecodeError>())?;
    m.add("BodyTooLargeError", m.py().get_type::<BodyTooLargeError>())?;
    m.add("RuleCompileError", m.py().get_type::<RuleCompileError>())?;
    Ok(())
}
