"""``python -m bench.quality [--data DIR] [--out bench/quality.json]``: the quality benchmarks
(NAB: ``bench.quality.benchmark``; multi-metric hosts, ASD: ``bench.quality.asd``), the
calibration table of the per-series p-values (``bench.quality.calibration``) and the fit cost
(``bench.quality.fitcost``) in one report.
Without the NAB data (``--data`` or ``$REFEREE_BENCH_DATA``) it says what it needs and exits 2."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.quality import asd, benchmark, calibration, corpus
from referee.config import default_rules_dir

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    doc = benchmark.__doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=doc.splitlines()[0])
    corpus.add_data_argument(ap)
    ap.add_argument("--rules", type=Path, action="append", default=None)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "quality.json")
    ap.add_argument("--no-fit-cost", action="store_true", help="skip the statsmodels fit-cost measurement")
    args = ap.parse_args()
    nab_dir = corpus.locate_or_exit(args.data)
    try:
        asd_dir = corpus.locate_asd(args.data)
    except corpus.DataMissing as e:
        print(f"ASD data not found: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    rules = args.rules or [default_rules_dir()]
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rules": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in rules],
    }
    with tempfile.TemporaryDirectory() as tmp:
        report.update(benchmark.run(nab_dir, rules, Path(tmp)))
    report["multi_metric"] = asd.run(asd_dir, rules)
    with tempfile.TemporaryDirectory() as tmp:
        report["calibration"] = calibration.measure(nab_dir, asd_dir, Path(tmp))
    if not args.no_fit_cost:
        from bench.quality.fitcost import measure

        report["fit_cost"] = measure(nab_dir)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("nab", "copilot")}, indent=1)[:4000])
    mm = report["multi_metric"]
    print("multi-metric (ASD):", json.dumps({h: mm[h] for h in ("half_a", "half_b")}, indent=1)[:3000])
    print("calibration (share of normal windows with p < alpha):")
    for dataset in ("nab", "asd"):
        for name, t in report["calibration"][dataset].items():
            cells = "  ".join(
                f"{kind} " + "/".join(f"{t[kind][f'{a:g}']:.3f}" for a in calibration.ALPHAS)
                for kind in calibration.Tally.KINDS
            )
            print(f"  {dataset} {name:22s} n={t['windows']:6d}  {cells}")


if __name__ == "__main__":
    main()
