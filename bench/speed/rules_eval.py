"""Compiled-rule evaluation cost per rule per series, against a pure-Python CEL reference.

* Rust, without Python: ``rust_core/examples/rule_eval.rs`` (``cargo run --release``), which
  times ``RuleSet::evaluate`` per rule (slope over 1 and 256 rules), the signal read alone and
  one compiled ``when`` alone;
* Rust from Python: ``_core.RuleSet.evaluate`` with 1 and 256 rules; the slope is the cost per
  rule including the outcome's JSON; the per-call overhead is a call with no rules;
* reference: the same ``match`` and ``when`` conditions evaluated by ``celpy`` (cel-python)
  against the very evidence values Rust read, already converted: it does strictly less (no
  series lookup, no window, no baseline read), so the ratio is conservative.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import celpy

from referee import _core

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = 1_700_000_000_000
METRIC = "http.server.request.duration"
MATCH = 'suggestion.claim.kind == "latency_high" && suggestion.subject["service.name"] == "web"'
#: Kept identical to WHENS in rust_core/examples/rule_eval.rs.
WHENS = [
    "signal.observed > baseline.upper && baseline.score > 0.9",
    "signal.observed < baseline.lower",
    "baseline.z > 3.0 || signal.max > 2.0 * baseline.expected",
    "signal.samples >= 5 && baseline.ready && baseline.ratio > 1.5",
]
SUGGESTION = {
    "id": "bench",
    "source": "bench",
    "subject": {"service.name": "web"},
    "claim": {"kind": "latency_high"},
    "created_at": "2023-11-14T22:13:20Z",
}


def rule_specs(n: int) -> str:
    signal = {"metric": METRIC, "statistic": "p99", "window_s": 600.0, "agg": "mean", "min_history": 30}
    return json.dumps(
        [{"id": f"r{i}", "match": MATCH, "when": WHENS[i % len(WHENS)], "signal": signal} for i in range(n)]
    )


def best_per_call(fn: Any, reps: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def rust_example() -> dict[str, Any]:
    """Runs the Rust example; builds it first if needed (once, then cached by cargo)."""
    if shutil.which("cargo") is None:
        return {"error": "cargo not found"}
    out = subprocess.run(
        [
            "cargo",
            "run",
            "--release",
            "--quiet",
            "--manifest-path",
            "rust_core/Cargo.toml",
            "--example",
            "rule_eval",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if out.returncode != 0:
        return {"error": out.stderr[-1000:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_rules() -> dict[str, Any]:
    # First, so that a cargo build of the example is over before anything is timed.
    rust = rust_example()
    store = _core.SeriesStore()
    rng = random.Random(1)
    ts = [NOW_MS - (600 - i) * 60_000 for i in range(600)]
    store.ingest_points(
        METRIC, "p99", {"service.name": "web"}, ts, [0.3 + rng.uniform(-0.02, 0.02) for _ in ts]
    )
    sug = json.dumps(SUGGESTION)
    small, large = 1, 256
    rs_small, rs_large = _core.RuleSet(rule_specs(small), "bench"), _core.RuleSet(rule_specs(large), "bench")
    outcomes = rs_large.evaluate(store, sug, NOW_MS)
    assert all(o.matched and o.when is not None and not o.error for o in outcomes), outcomes[0]
    signal, baseline = outcomes[0].signal, outcomes[0].baseline
    assert signal is not None and baseline is not None
    t_small = best_per_call(lambda: rs_small.evaluate(store, sug, NOW_MS), 2000)
    t_large = best_per_call(lambda: rs_large.evaluate(store, sug, NOW_MS), 20)
    per_rule = (t_large - t_small) / (large - small)
    # The per-call overhead, measured directly: a call with no rules at all.
    rs_empty = _core.RuleSet("[]", "bench")
    t_empty = best_per_call(lambda: rs_empty.evaluate(store, sug, NOW_MS), 5000)

    # The reference, on the evidence Rust read.
    env = celpy.Environment()
    match_prog = env.program(env.compile(MATCH))
    when_progs = [env.program(env.compile(w)) for w in WHENS]
    activation = {
        "suggestion": celpy.json_to_cel(SUGGESTION),
        "signal": celpy.json_to_cel(dict(signal.to_dict())),
        "baseline": celpy.json_to_cel(dict(baseline.to_dict())),
    }
    for i, p in enumerate(when_progs):  # same answers as Rust
        assert bool(p.evaluate(activation)) == outcomes[i].when, WHENS[i]
    t_match = best_per_call(lambda: match_prog.evaluate(activation), 300)
    t_when = best_per_call(lambda: [p.evaluate(activation) for p in when_progs], 100) / len(when_progs)
    py_rule_ns = (t_match + t_when) * 1e9
    result: dict[str, Any] = {
        "workload": (
            f"{large} rules, each `match` on claim kind and service plus one of {len(WHENS)} typical "
            "`when` conditions, all reading one series (600 one-minute points, 10-minute window)"
        ),
        "rust_evaluate_ns_per_rule": rust.get("evaluate_ns_per_rule"),
        "rust_evaluate_per_call_overhead_ns": rust.get("evaluate_per_call_overhead_ns"),
        "rust_signal_read_ns": rust.get("signal_read_ns"),
        "rust_condition_only_ns": rust.get("condition_ns"),
        "from_python_ns_per_rule": round(per_rule * 1e9),
        "from_python_per_call_overhead_ns": round(t_empty * 1e9),
        "celpy_reference_ns_per_rule": round(py_rule_ns),
        "celpy_condition_only_ns": round(t_when * 1e9),
        "target_ns_per_rule": 200,
        "note": (
            "rust_* from rust_core/examples/rule_eval.rs (no Python); from_python_* include the "
            "outcomes' JSON; celpy evaluates match + when on values already read and converted "
            "(no lookup, no window), so its figure is a floor for a Python implementation"
        ),
    }
    if isinstance(rust.get("evaluate_ns_per_rule"), int | float):
        result["ratio_rule"] = round(py_rule_ns / rust["evaluate_ns_per_rule"], 1)
        result["ratio_condition_only"] = round(t_when * 1e9 / rust["condition_ns"], 1)
    else:
        result["rust_example_error"] = rust.get("error")
    return result


if __name__ == "__main__":
    print(json.dumps(bench_rules(), indent=2))
