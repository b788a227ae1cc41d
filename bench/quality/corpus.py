"""Where the quality benchmarks find the NAB corpus, and how they read it.

The data directory is ``--data DIR`` or else the environment variable ``REFEREE_BENCH_DATA``;
it holds ``nab/`` (the Numenta Anomaly Benchmark, laid out as in its repository). There is no
default here: ``make bench-quality`` passes one (``BENCH_DATA``). When the data is absent,
``locate_or_exit`` prints what is needed and where to get it, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from referee.replay import parse_timestamp, to_ms

ENV = "REFEREE_BENCH_DATA"
WINDOWS = "labels/combined_windows.json"
LABELS = "labels/combined_labels.json"
NAB_URL = "https://github.com/numenta/NAB"
#: The categories (34 files) bench/quality.json was measured on.
CATEGORIES = (
    "artificialNoAnomaly",
    "artificialWithAnomaly",
    "realAdExchange",
    "realKnownCause",
    "realTweets",
)


class DataMissing(Exception):
    """The NAB corpus is not where it was looked for; the message says what is needed."""


def add_data_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--data",
        default=None,
        help=f"directory holding nab/ and asd/ (default: ${ENV}; make bench-quality passes BENCH_DATA)",
    )


def data_dir(arg: str | Path | None, env: Mapping[str, str] = os.environ) -> Path | None:
    """``--data`` if given and not empty, else ``$REFEREE_BENCH_DATA`` if set and not empty."""
    value = str(arg) if arg is not None and str(arg) else env.get(ENV, "")
    return Path(value) if value else None


def needs(data: Path | str = "DIR") -> str:
    """What the benchmarks read, and where to get it."""
    nab = f"{data}/nab"
    return "\n".join(
        [
            f"The quality benchmarks read the NAB corpus under {nab}/:",
            f"  {nab}/{WINDOWS}  anomaly windows per file (scoring; the files it lists are the corpus)",
            f"  {nab}/{LABELS}   labelled anomaly points (the copilot's true claims)",
            f"  {nab}/data/<category>/<name>.csv    each series listed in {WINDOWS}",
            f"Get them from the Numenta Anomaly Benchmark, {NAB_URL}: copy its data/ and labels/",
            f"folders into {nab}/. NAB's cost profiles (config/profiles.json) are built in",
            "(bench/quality/nab.py): nothing under config/ is read.",
            "bench/quality.json was measured on 5 of NAB's 7 categories (34 files):",
            f"  {', '.join(CATEGORIES)};",
            "series listed in the windows but absent from data/ are skipped (with a note).",
            f"Give the directory that holds nab/ as --data DIR or {ENV}=DIR",
            "(make bench-quality BENCH_DATA=DIR).",
        ]
    )


def locate(arg: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The NAB directory (``<data>/nab``), checked; raises ``DataMissing`` with what is needed."""
    data = data_dir(arg, env)
    if data is None:
        raise DataMissing(f"no data directory given (--data DIR or {ENV}).\n{needs()}")
    nab = data / "nab"
    problem = None
    if not data.is_dir():
        problem = f"{data}: no such directory."
    elif not nab.is_dir():
        problem = f"{nab}: no such directory."
    else:
        absent = [name for name in (WINDOWS, LABELS) if not (nab / name).is_file()]
        if absent:
            problem = "not found: " + ", ".join(str(nab / name) for name in absent) + "."
        else:
            listed = json.loads((nab / WINDOWS).read_text())
            if not any((nab / "data" / key).is_file() for key in listed):
                problem = (
                    f"none of the {len(listed)} series listed in {nab / WINDOWS} is under {nab / 'data'}."
                )
    if problem:
        raise DataMissing(f"{problem}\n{needs(data)}")
    return nab


def locate_or_exit(arg: str | Path | None) -> Path:
    """``locate``, or the message on stderr and exit status 2."""
    try:
        return locate(arg)
    except DataMissing as e:
        print(f"NAB data not found: {e}", file=sys.stderr)
        raise SystemExit(2) from None


ASD_URL = "https://github.com/zhhlee/InterFusion"


def locate_asd(arg: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The ASD directory (``<data>/asd``) of the multi-metric benchmark, checked; raises
    ``DataMissing`` with what is needed."""
    data = data_dir(arg, env)
    asd = (data or Path("DIR")) / "asd"
    series = sorted(asd.glob("series/omi-*.csv.gz")) if data else []
    missing = [
        p.name for p in series if not (asd / "interpretation" / p.name.replace(".csv.gz", ".txt")).is_file()
    ]
    if not series or missing:
        raise DataMissing(
            "\n".join(
                [
                    f"the multi-metric benchmark reads {asd}/ and found "
                    + ("no series" if not series else f"no interpretation for {', '.join(missing)}")
                    + ":",
                    f"  {asd}/series/omi-N.csv.gz      timestamp,split,label,m01..m19 (5-minute rows)",
                    f"  {asd}/interpretation/omi-N.txt  one incident segment a line: start-end:metric,...",
                    f"It is InterFusion's Application Server Dataset ({ASD_URL}, data/processed and",
                    "data/interpretation_label), written out as above.",
                ]
            )
        )
    return asd


def load_corpus(nab_dir: Path) -> tuple[list[str], dict[str, list[list[str]]], dict[str, list[str]]]:
    """(the files of the corpus, their windows, their labelled points): every file listed in the
    windows that is present under ``data/``, sorted."""
    windows = json.loads((nab_dir / WINDOWS).read_text())
    labels = json.loads((nab_dir / LABELS).read_text())
    keys = sorted(k for k in windows if (nab_dir / "data" / k).is_file())
    if len(keys) < len(windows):
        print(
            f"note: {len(windows) - len(keys)} of the {len(windows)} files listed in {WINDOWS} "
            "are absent: skipped",
            file=sys.stderr,
        )
    return keys, windows, labels


def read_rows(path: Path) -> tuple[list[int], list[float]]:
    ts: list[int] = []
    vs: list[float] = []
    for line in path.read_text().splitlines()[1:]:
        t, v = line.split(",")
        ts.append(to_ms(parse_timestamp(t)))
        vs.append(float(v))
    return ts, vs


def row_of(ts: list[int], stamp: str) -> int:
    """The row of a label's timestamp (minus NAB's ``.000000`` suffix)."""
    t = to_ms(parse_timestamp(stamp.split(".")[0]))
    return ts.index(t)
