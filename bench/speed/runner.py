"""Referee's benchmarks, each beside a reference measured in the same run.

    python -m bench.speed --out bench/results.json [--only ingest,http_ingest,...]

* ``ingest``: decode + series update of prebuilt gzip OTLP payloads in process (gauge, delta
  sum, histogram; 5 attributes per point; 8,192 points per request; ``bench.workloads.otlp``): the
  Rust path (``SeriesStore.ingest_otlp_metrics``) against ``bench.reference.PyStore``, a
  pure-Python port of the same work on ``opentelemetry-proto`` (checked against the Rust path
  by ``tests/test_bench_reference.py``), and, for comparison with earlier results, the light
  reference ``bench.reference.python_ingest`` (an EWMA and a ring only). The first request
  creates every series and is timed apart; the steady-state figure is over the requests that
  only update series. The same again with the sum and the histogram sent with cumulative
  temporality (running totals, as most SDKs send them), Rust against the same-work reference
  (``bench.speed.ingest``);
* ``http_ingest``: the same payloads end to end over HTTP, ``referee serve`` and the load
  generator each in their own process, against the Python reference and a no-ingest server
  (``bench.speed.http_ingest``);
* ``memory``: state memory per live series at 100,000 series (``bench.speed.memory``);
* ``rules``: compiled-rule evaluation cost per rule per series, against cel-python
  (``bench.speed.rules_eval``, ``rust_core/examples/rule_eval.rs``);
* ``decision``: suggestion-to-verdict latency over HTTP with 50 rules loaded, against the
  in-process decision alone (``bench.speed.decision``).

Absolute numbers on a shared 2-core machine are noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.speed.ingest import bench_ingest
from referee import _core


def _http_ingest() -> dict[str, Any]:
    from bench.speed.http_ingest import bench_http_ingest

    return bench_http_ingest()


def _memory() -> dict[str, Any]:
    from bench.speed.memory import bench_memory

    return bench_memory()


def _rules() -> dict[str, Any]:
    from bench.speed.rules_eval import bench_rules

    return bench_rules()


def _decision() -> dict[str, Any]:
    from bench.speed.decision import bench_decision

    return bench_decision()


BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "ingest": bench_ingest,
    "http_ingest": _http_ingest,
    "memory": _memory,
    "rules": _rules,
    "decision": _decision,
}

#: (section, label, key, reference key, target, unit) rows of the printed table.
TABLE = [
    (
        "ingest",
        "in-process ingest, steady state",
        "rust_points_per_s",
        "python_reference_points_per_s",
        ">= 1,000,000 and >= 10x",
        "points/s",
    ),
    (
        "ingest",
        "in-process ingest, cumulative sums/histograms",
        "rust_cumulative_points_per_s",
        "python_reference_cumulative_points_per_s",
        "",
        "points/s",
    ),
    (
        "ingest",
        "in-process ingest, request creating series",
        "rust_first_request_points_per_s",
        None,
        "",
        "points/s",
    ),
    (
        "http_ingest",
        "OTLP/HTTP ingest, separate client",
        "referee_points_per_s",
        "python_reference_points_per_s",
        ">= 300,000",
        "points/s",
    ),
    (
        "http_ingest",
        "  same client, server ingesting nothing",
        "no_ingest_ceiling_points_per_s",
        None,
        "",
        "points/s",
    ),
    (
        "memory",
        "memory/series, 64 points, excl. raw points",
        "steady_bytes_per_series_excluding_raw_points",
        None,
        "<= 1024",
        "bytes",
    ),
    (
        "memory",
        "memory/series, two days, excl. raw points",
        "long_lived_bytes_per_series_excluding_raw_points",
        None,
        "<= 1024",
        "bytes",
    ),
    ("memory", "memory/series, one point", "one_point_bytes_per_series", None, "", "bytes"),
    (
        "memory",
        "memory/series, 64 raw points kept",
        "steady_bytes_per_series_with_64_raw_points",
        None,
        "",
        "bytes",
    ),
    (
        "rules",
        "rule evaluation per rule per series (Rust)",
        "rust_evaluate_ns_per_rule",
        "celpy_reference_ns_per_rule",
        "<= 200",
        "ns",
    ),
    ("rules", "  CEL condition alone (Rust)", "rust_condition_only_ns", "celpy_condition_only_ns", "", "ns"),
    ("rules", "  signal read alone (Rust)", "rust_signal_read_ns", None, "", "ns"),
    ("rules", "  from Python, per rule incl. JSON", "from_python_ns_per_rule", None, "", "ns"),
    ("rules", "  from Python, per-call overhead", "from_python_per_call_overhead_ns", None, "", "ns"),
    (
        "decision",
        "suggestion->verdict over HTTP, p50 (50 rules)",
        "http_p50_ms",
        "in_process_p50_ms",
        "<= 1",
        "ms",
    ),
    ("decision", "suggestion->verdict over HTTP, p90", "http_p90_ms", "in_process_p90_ms", "", "ms"),
    ("decision", "suggestion->verdict over HTTP, p99", "http_p99_ms", "in_process_p99_ms", "<= 5", "ms"),
]


def table(results: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float) and not v.is_integer():
            return f"{v:,.3f}"
        return f"{int(v):,}" if isinstance(v, int | float) else "-"

    rows = [("benchmark", "Referee", "reference", "target", "unit")]
    for section, label, key, ref, target, unit in TABLE:
        r = results.get(section) or {}
        if not r:
            continue
        rows.append((label, fmt(r.get(key)), fmt(r.get(ref)) if ref else "", target, unit))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(
            c.ljust(w) if i in (0, 3, 4) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results.json"))
    ap.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES)
    )
    args = ap.parse_args()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(only) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "note": "a shared 2-core machine: other work runs beside the benchmarks; ratios matter more",
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "core_version": _core.__version__,
    }
    for name in only:
        print(f"running {name}...", flush=True)
        t = time.perf_counter()
        results[name] = BENCHES[name]()
        results[name]["bench_seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps(results[name], indent=2), flush=True)
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
