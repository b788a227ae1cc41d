"""The pure-Python references the speed benchmarks measure Referee against.

The same-work reference, ``PyStore``, a faithful pure-Python port of Referee's OTLP metrics
ingest and the ``ingest`` benchmark's main reference.

``PyStore.ingest(body)`` does what ``referee._core.SeriesStore.ingest_otlp_metrics(body, gzip=True)``
does, on the standard library and ``opentelemetry-proto`` alone, in one thread:

* inflate (``gzip.decompress``, several members allowed, the same size limit) and decode
  (``ExportMetricsServiceRequest.FromString``) (``decode``);
* ``rust_core/src/otlp.rs`` ``apply_view``: attributes rendered as ``any_value_string`` does,
  resource and point attributes merged (the point wins) and sorted by key; gauges -> ``value``;
  sums -> ``value`` (non-monotonic) or ``delta`` + ``rate`` (monotonic, delta or cumulative with
  per-stream state and resets); histograms (explicit, and exponential converted to explicit)
  -> ``count``/``rate``/``mean`` per stream plus per-service roll-ups merged per timestamp;
  summaries -> ``p50``/``p90``/``p99``; the same accept/reject counting (``decode``, ``ingest``,
  ``rollups``);
* ``rust_core/src/otlp_events.rs`` ``EventAggregator``: one-minute roll-up buckets per
  (metric, service attributes), written (count, rate, error_ratio, mean, p50, p90, p99) when a
  later bucket of the same key starts; ``ingest_otlp_metrics`` never flushes, and neither does
  ``ingest`` (``flush_events`` is there for tests) (``rollups``);
* ``rust_core/src/store.rs`` ``SeriesStore::push_key``: non-finite, duplicate and out-of-order
  rejection, the series cap, a ring of ``ring_capacity`` samples
  ``(ts_ms, value, expected, sigma, score, raw)``, the store counters (``store``);
* ``rust_core/src/baseline.rs`` and ``score.rs``: the streaming baseline (median/MAD window,
  fast and slow EWMA, hour-of-day slots, weekday offsets, level offset, gap counting and reset,
  range novelty, level-shift term, one score per episode) (``baseline_blocks``, ``baseline``).

Where Rust keeps single precision (the median window, slot means and variances, weekday
offsets, the range, the episode maximum, the raw anomaly and score kept in a sample) the
values are rounded to single precision here too (``array('f')``, ``rustnum``), so the results
are the same, not merely close. Not ported: the quantile sketch (only started for series that rules
read, which never happens in ingest) and fitted band artifacts (handed over by the fitter,
never during ingest); their branches are kept and do nothing.

``tests/test_bench_reference.py`` checks this port against the Rust path on the same payloads.

The other references: ``light`` (``python_ingest``, an EWMA and a ring per series: much less
work, kept for comparison with earlier results and served over HTTP) and ``ref_server`` (the
HTTP benchmark's reference servers on Referee's Starlette/uvicorn stack).
"""

from bench.reference.ingest import PyStore
from bench.reference.light import PySeries, python_ingest

__all__ = ["PySeries", "PyStore", "python_ingest"]
