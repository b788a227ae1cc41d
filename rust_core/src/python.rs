//! The PyO3 layer: `referee._core`. Thin by design: one call per request or decision, the GIL
//! released for the work, results as compact tuples or JSON strings.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};
use std::sync::Arc;

use crate::baseline::BaselineConfig;
use crate::error::{IngestError, RuleError};
use crate::otlp::{self, Encoding, EventAggregator};
use crate::rules::{RuleFunction, RuleSet, RuleSpec};
use crate::store::{SeriesStore, StoreConfig};

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

    /// Decodes an OTLP metrics export request and updates the store.
    /// Returns (accepted points, rejected points, message).
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_metrics(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<(u64, u64, String)> {
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
        Ok((report.accepted, report.rejected, report.message))
    }

    /// Decodes an OTLP logs export request. Records whose event name is `copilot.suggestion`
    /// are returned as a JSON array (`[{body, attributes, resource, time_unix_nano}]`); other
    /// records are counted per service and severity into `log.records` series.
    /// Returns (accepted records, rejected records, message, suggestions JSON).
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_logs(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<(u64, u64, String, String)> {
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
        let suggestions = serde_json::Value::Array(out.suggestions).to_string();
        Ok((
            out.report.accepted,
            out.report.rejected,
            out.report.message,
            suggestions,
        ))
    }

    /// Decodes an OTLP traces export request; server spans feed `trace.server.duration`
    /// RED series per service (and route). Returns (accepted spans, rejected spans, message).
    #[pyo3(signature = (body, *, json = false, gzip = false, max_body_bytes = 67_108_864))]
    fn ingest_otlp_traces(
        &self,
        py: Python<'_>,
        body: &[u8],
        json: bool,
        gzip: bool,
        max_body_bytes: usize,
    ) -> PyResult<(u64, u64, String)> {
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
        Ok((report.accepted, report.rejected, report.message))
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

    /// Series summaries as JSON: `[{metric, statistic, attributes, points, last_ts_ms, last_value}]`.
    #[pyo3(signature = (metric = None, limit = 1000))]
    fn series_json(&self, metric: Option<&str>, limit: usize) -> PyResult<String> {
        let guard = self.state.lock().map_err(poisoned)?;
        let rows: Vec<serde_json::Value> = guard
            .store
            .iter()
            .filter(|s| metric.is_none_or(|m| s.metric() == m))
            .take(limit)
            .map(|s| {
                let last = s.ring.back();
                // A sustained deviation, not a blip: the lowest band score (the normal mass
                // within |z|) of the last three points. Not the stored per-point anomaly score,
                // which fires once per episode and is 0 while an incident goes on.
                let band_score = |x: &crate::store::Sample| {
                    if x.sigma.is_finite() && x.sigma > 0.0 && x.expected.is_finite() {
                        crate::baseline::erf(
                            (x.value - x.expected).abs() / x.sigma / std::f64::consts::SQRT_2,
                        )
                    } else {
                        0.0
                    }
                };
                let recent_score = (s.ring.len() >= 3).then(|| {
                    s.ring
                        .iter()
                        .rev()
                        .take(3)
                        .map(band_score)
                        .fold(f64::INFINITY, f64::min)
                });
                serde_json::json!({
                    "metric": s.metric(),
                    "statistic": s.statistic(),
                    "attributes": s.attrs().collect::<std::collections::BTreeMap<_, _>>(),
                    "points": s.baseline.samples,
                    "last_ts_ms": last.map(|x| x.ts_ms),
                    "last_value": last.map(|x| x.value),
                    "last_expected": last.map(|x| x.expected).filter(|x| x.is_finite()),
                    "recent_score": recent_score,
                    "out_of_order": s.out_of_order,
                    "duplicates": s.duplicates,
                })
            })
            .collect();
        Ok(serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()))
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
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let guard = self.state.lock().map_err(poisoned)?;
        let s = &guard.store.stats;
        let d = PyDict::new(py);
        d.set_item("series", s.series)?;
        d.set_item("max_series", s.max_series)?;
        d.set_item("points_accepted", s.points_accepted)?;
        d.set_item("points_rejected", s.points_rejected)?;
        d.set_item("series_rejected", s.series_rejected)?;
        d.set_item("out_of_order", s.out_of_order)?;
        d.set_item("duplicates", s.duplicates)?;
        d.set_item("open_event_buckets", guard.events.open_buckets())?;
        d.set_item("late_events", guard.events.late)?;
        d.set_item("refused_events", guard.events.refused)?;
        Ok(d)
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

    /// One series' baseline as JSON (counters, quantiles, the fitted band), or None.
    fn baseline_info(
        &self,
        metric: &str,
        statistic: &str,
        attributes: HashMap<String, String>,
    ) -> PyResult<Option<String>> {
        let guard = self.state.lock().map_err(poisoned)?;
        let attrs = sorted_attributes(attributes);
        let refs = attr_refs(&attrs);
        Ok(guard.store.get(metric, statistic, &refs).map(|s| {
            let b = &s.baseline;
            let q = |p: f64| b.quantile(p).filter(|x| x.is_finite());
            serde_json::json!({
                "samples": b.samples,
                "first_ts_ms": (b.first_ts != i64::MIN).then_some(b.first_ts),
                "last_ts_ms": (b.last_ts != i64::MIN).then_some(b.last_ts),
                "gaps": b.gaps,
                "resets": b.resets,
                "duplicates": s.duplicates,
                "out_of_order": s.out_of_order,
                "p50": q(0.5),
                "p90": q(0.9),
                "p99": q(0.99),
                "model": s.ring.back().and_then(|x| x.model).map(|m| m.name()),
                "artifact": s.artifact.as_ref().map(|a| serde_json::json!({
                    "version": a.version,
                    "model": a.model.name(),
                    "anchor_ms": a.anchor_ms,
                    "end_ms": a.end_ms(),
                    "step_ms": a.step_ms,
                    "valid_until_ms": a.valid_until_ms,
                    "fitted_at_ms": a.fitted_at_ms,
                    "backtest_mae": a.backtest_mae,
                    "streaming_mae": a.streaming_mae,
                })),
            })
            .to_string()
        }))
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.state.lock().map_err(poisoned)?.store.len())
    }
}

/// A compiled rule set.
#[pyclass(module = "referee._core", name = "RuleSet", frozen)]
struct PyRuleSet {
    rules: RuleSet,
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
        let functions: Vec<(String, RuleFunction)> = functions
            .unwrap_or_default()
            .into_iter()
            .map(|(name, callable)| (name, python_function(callable)))
            .collect();
        match py.detach(|| RuleSet::compile_with(specs, source, functions)) {
            Ok(rules) => Ok(PyRuleSet { rules }),
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
    /// returns the outcomes as JSON, in rule order, of the rules that have something to say:
    /// those that matched and those whose evaluation failed. (Most rules do not match a given
    /// suggestion; their outcome would only repeat the rule id.)
    fn evaluate(
        &self,
        py: Python<'_>,
        store: &PySeriesStore,
        suggestion_json: &str,
        at_ms: i64,
    ) -> PyResult<String> {
        let suggestion: serde_json::Value = serde_json::from_str(suggestion_json)
            .map_err(|e| PyValueError::new_err(format!("suggestion: {e}")))?;
        py.detach(|| {
            let guard = store.state.lock().map_err(poisoned)?;
            let outcomes = self.rules.evaluate(&guard.store, &suggestion, at_ms);
            let said: Vec<_> = outcomes
                .iter()
                .filter(|o| o.matched || o.error.is_some())
                .collect();
            serde_json::to_string(&said).map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }
}

/// Wraps a Python callable as a CEL function: arguments and result cross as plain values.
fn python_function(callable: Py<PyAny>) -> RuleFunction {
    Arc::new(move |args: &[cel::Value]| {
        Python::attach(|py| {
            let py_args: Vec<Bound<'_, PyAny>> = args
                .iter()
                .map(|a| cel_to_py(py, a))
                .collect::<Result<_, _>>()?;
            let result = callable
                .bind(py)
                .call1(PyTuple::new(py, py_args).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            py_to_cel(&result)
        })
    })
}

fn cel_to_py<'py>(py: Python<'py>, v: &cel::Value) -> Result<Bound<'py, PyAny>, String> {
    use cel::Value as V;
    let obj = match v {
        V::Null => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Int(i) => i.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::UInt(u) => u.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::Float(f) => f.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::String(s) => PyString::new(py, s).into_any(),
        V::List(items) => {
            let converted: Vec<Bound<'py, PyAny>> = items
                .iter()
                .map(|x| cel_to_py(py, x))
                .collect::<Result<_, _>>()?;
            PyList::new(py, converted)
                .map_err(|e| e.to_string())?
                .into_any()
        }
        V::Map(m) => {
            let d = PyDict::new(py);
            for (k, val) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    other => format!("{other:?}"),
                };
                d.set_item(key, cel_to_py(py, val)?)
                    .map_err(|e| e.to_string())?;
            }
            d.into_any()
        }
        other => return Err(format!("cannot pass {other:?} to a Python rule function")),
    };
    Ok(obj)
}

fn py_to_cel(v: &Bound<'_, PyAny>) -> Result<cel::Value, String> {
    use cel::Value as V;
    if v.is_none() {
        return Ok(V::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(V::Bool(b.is_true()));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(V::Int(i));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(V::Float(f));
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(V::String(Arc::new(s)));
    }
    if let Ok(list) = v.cast::<PyList>() {
        let items: Vec<V> = list
            .iter()
            .map(|x| py_to_cel(&x))
            .collect::<Result<_, _>>()?;
        return Ok(V::List(Arc::new(items)));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut out = HashMap::new();
        for (k, val) in d.iter() {
            out.insert(
                k.extract::<String>().map_err(|e| e.to_string())?,
                py_to_cel(&val)?,
            );
        }
        return Ok(V::Map(out.into()));
    }
    Err(format!(
        "a rule function returned an unsupported {}",
        v.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PySeriesStore>()?;
    m.add_class::<PyRuleSet>()?;
    m.add("DecodeError", m.py().get_type::<DecodeError>())?;
    m.add("BodyTooLargeError", m.py().get_type::<BodyTooLargeError>())?;
    m.add("RuleCompileError", m.py().get_type::<RuleCompileError>())?;
    Ok(())
}
