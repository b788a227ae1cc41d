//! A decoded metrics export request, borrowing its strings from the request: what the
//! zero-copy decoder ([`super::wire`]) and the view of a prost request
//! ([`super::decode::view_of`]) produce and what [`super::series`] applies to the store.
//! Points, attributes, bucket bounds and counts live in a few flat vectors indexed by ranges.

use std::borrow::Cow;
use std::ops::Range;

/// An attribute as series are keyed by: the key and, for a string value, the value are
/// borrowed from the request; other values are rendered (see `body::any_value_string`).
pub type Attr<'a> = (&'a str, Cow<'a, str>);

/// A decoded metrics export request. Ranges index the flat vectors.
#[derive(Debug, Default)]
pub struct MetricsView<'a> {
    pub resources: Vec<ResourceView<'a>>,
    pub metrics: Vec<MetricView<'a>>,
    /// Attributes of data points.
    pub attrs: Vec<Attr<'a>>,
    pub numbers: Vec<NumberPoint>,
    /// Explicit histograms, and exponential ones converted to explicit buckets.
    pub histograms: Vec<HistogramPoint>,
    pub summaries: Vec<SummaryPoint>,
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    /// (quantile, value) pairs of summaries.
    pub quantiles: Vec<(f64, f64)>,
}

#[derive(Debug, Default)]
pub struct ResourceView<'a> {
    pub attrs: Vec<Attr<'a>>,
    pub metrics: Range<usize>,
}

#[derive(Debug)]
pub struct MetricView<'a> {
    pub name: &'a str,
    pub data: Option<DataView>,
}

/// A metric's data; `points` indexes the vector of its point kind.
#[derive(Debug, Clone, PartialEq)]
pub enum DataView {
    Gauge {
        points: Range<usize>,
    },
    Sum {
        temporality: i32,
        monotonic: bool,
        points: Range<usize>,
    },
    Histogram {
        temporality: i32,
        points: Range<usize>,
    },
    ExponentialHistogram {
        temporality: i32,
        points: Range<usize>,
    },
    Summary {
        points: Range<usize>,
    },
}

impl DataView {
    pub fn points(&self) -> Range<usize> {
        match self {
            DataView::Gauge { points }
            | DataView::Sum { points, .. }
            | DataView::Histogram { points, .. }
            | DataView::ExponentialHistogram { points, .. }
            | DataView::Summary { points } => points.clone(),
        }
    }

    pub(super) fn points_mut(&mut self) -> &mut Range<usize> {
        match self {
            DataView::Gauge { points }
            | DataView::Sum { points, .. }
            | DataView::Histogram { points, .. }
            | DataView::ExponentialHistogram { points, .. }
            | DataView::Summary { points } => points,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberPoint {
    pub attrs: Range<usize>,
    pub start_ns: u64,
    pub time_ns: u64,
    /// `as_int` is converted to f64 as ingest uses it.
    pub value: Option<f64>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    pub attrs: Range<usize>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bounds: Range<usize>,
    pub counts: Range<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryPoint {
    pub attrs: Range<usize>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub quantiles: Range<usize>,
    pub flags: u32,
}
