//! What Rust hands Python: frozen classes over the crate's own result structs (ingest reports,
//! suggestion events, store counters, series summaries, baseline details, rule outcomes and
//! their evidence). Each has `__repr__`; those Python turns into JSON have `to_dict()`, which
//! returns JSON-native values only, with the meaning the JSON of earlier versions had: a
//! number that is not finite is None.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::IntoPyObjectExt;

use crate::evidence::{BaselineView, SignalView};
use crate::host::HostView;
use crate::otlp::{IngestReport, SuggestionEvent};
use crate::rules::RuleOutcome;
use crate::store::StoreStats;
use crate::summary::{BandInfo, BaselineInfo, SeriesSummary};

/// A value as `to_dict()` gives it: JSON-native, a non-finite number as None.
trait JsonNative {
    fn put<'py>(&self, d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<()>;
}

macro_rules! json_native_as_is {
    ($($t:ty),*) => {$(
        impl JsonNative for $t {
            fn put<'py>(&self, d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<()> {
                d.set_item(key, self)
            }
        }
    )*};
}
json_native_as_is!(bool, u32, u64, i64, usize, String, BTreeMap<String, String>, Vec<String>);

impl JsonNative for &'static str {
    fn put<'py>(&self, d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<()> {
        d.set_item(key, *self)
    }
}

impl JsonNative for f64 {
    fn put<'py>(&self, d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<()> {
        if self.is_finite() {
            d.set_item(key, *self)
        } else {
            d.set_item(key, d.py().None())
        }
    }
}

impl<T: JsonNative> JsonNative for Option<T> {
    fn put<'py>(&self, d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<()> {
        match self {
            Some(x) => x.put(d, key),
            None => d.set_item(key, d.py().None()),
        }
    }
}

/// `Name(field=repr, ...)`, each value as Python's `repr` shows it.
fn repr_of(name: &str, fields: &[(&str, Bound<'_, PyAny>)]) -> PyResult<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        parts.push(format!("{k}={}", v.repr()?.to_cow()?));
    }
    Ok(format!("{name}({})", parts.join(", ")))
}

/// A frozen class over one of the crate's structs (`inner`, a `$st` or an `Arc` of one), every
/// listed field a read-only attribute, and `to_dict` with the dict's keys in the order listed.
/// The fields must be all of `$st`'s: a field added there and not here fails to compile.
macro_rules! wrapper_class {
    (
        $(#[$doc:meta])*
        $py:ident($name:literal) wraps $inner:ty = $st:ident;
        fields { $($field:ident: $ty:ty),* $(,)? }
    ) => {
        const _: () = {
            #[allow(dead_code)]
            fn every_field_crosses(v: &$st) {
                let $st { $($field: _),* } = v;
            }
        };

        $(#[$doc])*
        #[pyclass(module = "referee._core", name = $name, frozen)]
        pub struct $py {
            pub(crate) inner: $inner,
        }

        #[pymethods]
        impl $py {
            $(
                #[getter]
                fn $field(&self) -> &$ty {
                    &self.inner.$field
                }
            )*

            /// The fields as a dict of JSON-native values (a non-finite number as None).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $( JsonNative::put(&self.inner.$field, &d, pyo3::intern!(py, stringify!($field)))?; )*
                Ok(d)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                repr_of($name, &[$( (stringify!($field), (&self.inner.$field).into_bound_py_any(py)?) ),*])
            }
        }
    };
}

wrapper_class! {
    /// A `copilot.suggestion` log record: its body as text (a string body as it is, any other
    /// value as JSON), its attributes and its resource's (values as text), its time.
    PySuggestionEvent("SuggestionEvent") wraps SuggestionEvent = SuggestionEvent;
    fields { body: String, attributes: BTreeMap<String, String>, resource: BTreeMap<String, String>, time_unix_nano: u64 }
}

wrapper_class! {
    /// Store-wide counters.
    PyStoreStats("StoreStats") wraps StoreCounters = StoreCounters;
    fields {
        series: usize, max_series: usize, points_accepted: u64, points_rejected: u64,
        series_rejected: u64, out_of_order: u64, duplicates: u64, open_event_buckets: usize,
        late_events: u64, refused_events: u64,
    }
}

/// The store's counters and the event aggregator's, together.
pub struct StoreCounters {
    pub series: usize,
    pub max_series: usize,
    pub points_accepted: u64,
    pub points_rejected: u64,
    pub series_rejected: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub open_event_buckets: usize,
    pub late_events: u64,
    pub refused_events: u64,
}

impl StoreCounters {
    pub fn of(s: &StoreStats, open_event_buckets: usize, late: u64, refused: u64) -> Self {
        StoreCounters {
            series: s.series,
            max_series: s.max_series,
            points_accepted: s.points_accepted,
            points_rejected: s.points_rejected,
            series_rejected: s.series_rejected,
            out_of_order: s.out_of_order,
            duplicates: s.duplicates,
            open_event_buckets,
            late_events: late,
            refused_events: refused,
        }
    }
}

wrapper_class! {
    /// One live series: identity, points learned, its newest point.
    PySeriesSummary("SeriesSummary") wraps SeriesSummary = SeriesSummary;
    // The dict's keys in alphabetical order, as `GET /api/v1/series` has always written them.
    fields {
        attributes: BTreeMap<String, String>, duplicates: u32, last_expected: Option<f64>,
        last_ts_ms: Option<i64>, last_value: Option<f64>, metric: String, out_of_order: u32,
        points: u64, recent_score: Option<f64>, statistic: String,
    }
}

wrapper_class! {
    /// A fitted band artifact as a series holds it (its grid left out).
    PyBandInfo("BandInfo") wraps BandInfo = BandInfo;
    fields {
        anchor_ms: i64, backtest_mae: f64, end_ms: i64, fitted_at_ms: i64, model: &'static str,
        step_ms: i64, streaming_mae: f64, valid_until_ms: i64, version: u64,
    }
}

/// One series' baseline: counters, quantiles of what it learned, the model that judged its
/// newest point, the fitted band it holds.
#[pyclass(module = "referee._core", name = "BaselineInfo", frozen)]
pub struct PyBaselineInfo {
    inner: BaselineInfo,
    #[pyo3(get)]
    artifact: Option<Py<PyBandInfo>>,
}

impl PyBaselineInfo {
    pub fn new(py: Python<'_>, mut inner: BaselineInfo) -> PyResult<Self> {
        let artifact = match inner.artifact.take() {
            Some(a) => Some(Py::new(py, PyBandInfo { inner: a })?),
            None => None,
        };
        Ok(PyBaselineInfo { inner, artifact })
    }
}

macro_rules! baseline_info_methods {
    ($($field:ident: $ty:ty),* $(,)?) => {
        #[pymethods]
        impl PyBaselineInfo {
            $(
                #[getter]
                fn $field(&self) -> &$ty {
                    &self.inner.$field
                }
            )*

            /// The fields as a dict of JSON-native values, the artifact's too (keys in
            /// alphabetical order, as the JSON of earlier versions had them).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                match &self.artifact {
                    Some(a) => d.set_item(pyo3::intern!(py, "artifact"), a.get().to_dict(py)?)?,
                    None => d.set_item(pyo3::intern!(py, "artifact"), py.None())?,
                }
                $( JsonNative::put(&self.inner.$field, &d, pyo3::intern!(py, stringify!($field)))?; )*
                Ok(d)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                repr_of("BaselineInfo", &[
                    ("artifact", (&self.artifact).into_bound_py_any(py)?),
                    $( (stringify!($field), (&self.inner.$field).into_bound_py_any(py)?), )*
                ])
            }
        }
    };
}
// After `artifact`, in alphabetical order.
baseline_info_methods! {
    duplicates: u32, first_ts_ms: Option<i64>, gaps: u32, last_ts_ms: Option<i64>,
    model: Option<&'static str>, out_of_order: u32, p50: Option<f64>, p90: Option<f64>,
    p99: Option<f64>, resets: u32, samples: u64,
}

/// What an ingest call did: points (or records, or spans) accepted and rejected, the first
/// rejection's reason, and, for logs, the `copilot.suggestion` events.
#[pyclass(module = "referee._core", name = "IngestReport", frozen, get_all)]
pub struct PyIngestReport {
    accepted: u64,
    rejected: u64,
    message: String,
    suggestions: Vec<Py<PySuggestionEvent>>,
}

impl PyIngestReport {
    pub fn new(
        py: Python<'_>,
        report: IngestReport,
        events: Vec<SuggestionEvent>,
    ) -> PyResult<Self> {
        let suggestions = events
            .into_iter()
            .map(|inner| Py::new(py, PySuggestionEvent { inner }))
            .collect::<PyResult<_>>()?;
        Ok(PyIngestReport {
            accepted: report.accepted,
            rejected: report.rejected,
            message: report.message,
            suggestions,
        })
    }
}

#[pymethods]
impl PyIngestReport {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "IngestReport",
            &[
                ("accepted", self.accepted.into_bound_py_any(py)?),
                ("rejected", self.rejected.into_bound_py_any(py)?),
                ("message", (&self.message).into_bound_py_any(py)?),
                ("suggestions", (&self.suggestions).into_bound_py_any(py)?),
            ],
        )
    }
}

wrapper_class! {
    /// The signal a rule read: the series it resolved to and the window's numbers
    /// (`signal` in CEL). Numbers are NaN where undefined; `to_dict` gives None for those.
    PySignalEvidence("SignalEvidence") wraps Arc<SignalView> = SignalView;
    fields {
        metric: String, statistic: String, series: BTreeMap<String, String>, window_s: f64,
        samples: u64, observed: f64, mean: f64, max: f64, min: f64, last: f64, start_ms: i64,
        end_ms: i64,
    }
}

wrapper_class! {
    /// The baseline a rule compared the signal with (`baseline` in CEL). Numbers are NaN
    /// where undefined; `to_dict` gives None for those.
    PyBaselineEvidence("BaselineEvidence") wraps Arc<BaselineView> = BaselineView;
    fields {
        model: String, freshness_s: f64, history: u64, ready: bool, expected: f64, sigma: f64,
        lower: f64, upper: f64, z: f64, score: f64, raw_score: f64, max_point_score: f64,
        max_raw_score: f64, max_z: f64, min_z: f64, mean_abs_z: f64, mean_z: f64, median_z: f64,
        prior_points: u64, prior_abs_z_p50: f64, prior_abs_z_p90: f64, prior_abs_z_p99: f64,
        prior_abs_z_p995: f64, prior_windows: u64, p_up: f64, p_down: f64, p_value: f64,
        level_p_up: f64, level_p_down: f64, ratio: f64, p50: f64, p90: f64, p99: f64,
    }
}

wrapper_class! {
    /// The claimed metric among its subject's metrics (`host` in CEL): how many could be
    /// read, how many are anomalous (Benjamini-Hochberg q at most `alpha`), the claimed
    /// metric's rank, p- and q-value, and the anomalous metrics by name.
    PyHostEvidence("HostEvidence") wraps Arc<HostView> = HostView;
    fields {
        metrics: u64, anomalous: u64, alpha: f64, rank: u64, p: f64, q: f64, min_q: f64,
        anomalous_metrics: Vec<String>,
    }
}

/// What one rule made of a suggestion: whether it matched, its `when`, why evidence was
/// missing or what failed, and the evidence it read.
#[pyclass(module = "referee._core", name = "RuleOutcome", frozen, get_all)]
pub struct PyRuleOutcome {
    id: Py<PyString>,
    matched: bool,
    when: Option<bool>,
    missing: Option<String>,
    error: Option<String>,
    signal: Option<Py<PySignalEvidence>>,
    baseline: Option<Py<PyBaselineEvidence>>,
    host: Option<Py<PyHostEvidence>>,
}

#[pymethods]
impl PyRuleOutcome {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "RuleOutcome",
            &[
                ("id", self.id.bind(py).clone().into_any()),
                ("matched", self.matched.into_bound_py_any(py)?),
                ("when", self.when.into_bound_py_any(py)?),
                ("missing", (&self.missing).into_bound_py_any(py)?),
                ("error", (&self.error).into_bound_py_any(py)?),
                ("signal", (&self.signal).into_bound_py_any(py)?),
                ("baseline", (&self.baseline).into_bound_py_any(py)?),
                ("host", (&self.host).into_bound_py_any(py)?),
            ],
        )
    }
}

/// Builds the outcomes' Python objects. Rules reading the same signal share its evidence
/// (one `Arc`), and share its Python objects too.
pub struct OutcomeBuilder<'a> {
    /// Each rule's id, by position in the rule set, as a ready Python string.
    ids: &'a [(String, Py<PyString>)],
    signals: Vec<(*const SignalView, Py<PySignalEvidence>)>,
    baselines: Vec<(*const BaselineView, Py<PyBaselineEvidence>)>,
    hosts: Vec<(*const HostView, Py<PyHostEvidence>)>,
}

impl<'a> OutcomeBuilder<'a> {
    pub fn new(ids: &'a [(String, Py<PyString>)]) -> Self {
        OutcomeBuilder {
            ids,
            signals: Vec::new(),
            baselines: Vec::new(),
            hosts: Vec::new(),
        }
    }

    /// `position`: the rule's place in the rule set (its id is then ready made).
    pub fn build(
        &mut self,
        py: Python<'_>,
        position: usize,
        o: RuleOutcome,
    ) -> PyResult<PyRuleOutcome> {
        let id = match self.ids.get(position) {
            Some((text, s)) if *text == o.id => s.clone_ref(py),
            _ => PyString::new(py, &o.id).unbind(),
        };
        let signal = match o.signal {
            Some(view) => Some(shared(py, &mut self.signals, view, |inner| {
                PySignalEvidence { inner }
            })?),
            None => None,
        };
        let baseline = match o.baseline {
            Some(view) => Some(shared(py, &mut self.baselines, view, |inner| {
                PyBaselineEvidence { inner }
            })?),
            None => None,
        };
        let host = match o.host {
            Some(view) => Some(shared(py, &mut self.hosts, view, |inner| PyHostEvidence {
                inner,
            })?),
            None => None,
        };
        Ok(PyRuleOutcome {
            id,
            matched: o.matched,
            when: o.when,
            missing: o.missing,
            error: o.error,
            signal,
            baseline,
            host,
        })
    }
}

/// The Python object over `view`, made once per distinct `Arc`.
fn shared<V, P: pyo3::PyClass + Into<pyo3::PyClassInitializer<P>>>(
    py: Python<'_>,
    made: &mut Vec<(*const V, Py<P>)>,
    view: Arc<V>,
    wrap: impl FnOnce(Arc<V>) -> P,
) -> PyResult<Py<P>> {
    let key = Arc::as_ptr(&view);
    if let Some((_, obj)) = made.iter().find(|(k, _)| *k == key) {
        return Ok(obj.clone_ref(py));
    }
    let obj = Py::new(py, wrap(view))?;
    made.push((key, obj.clone_ref(py)));
    Ok(obj)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIngestReport>()?;
    m.add_class::<PySuggestionEvent>()?;
    m.add_class::<PyStoreStats>()?;
    m.add_class::<PySeriesSummary>()?;
    m.add_class::<PyBaselineInfo>()?;
    m.add_class::<PyBandInfo>()?;
    m.add_class::<PyRuleOutcome>()?;
    m.add_class::<PySignalEvidence>()?;
    m.add_class::<PyBaselineEvidence>()?;
    m.add_class::<PyHostEvidence>()?;
    Ok(())
}
