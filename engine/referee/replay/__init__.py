"""``referee replay``: series files and suggestions played through the same store, rules and
Decider as ``referee serve``, in time order, so each suggestion is decided with only the data up
to its ``created_at``.

Replay is deterministic: points are fed in file order, suggestions in (``created_at``, file
order), and the only non-deterministic fields of a verdict (``decision_id``, ``decided_at``)
are derived from the suggestion instead (a UUID5 of its source and id, and its ``created_at``).
"""

from __future__ import annotations

import csv
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from referee import _core
from referee.config import Settings
from referee.decision.decider import Decider
from referee.decision.rulepack import LoadedRules, load_rules
from referee.errors import InvalidInputError
from referee.models import Suggestion, Verdict
from referee.state import open_store
from referee.state.seasonal import SeasonalFitter, key_of

if TYPE_CHECKING:
    from referee._core import StoreStatsDict

_NS = uuid.UUID("6f0c8f3e-5b7d-4d35-9f61-0d7f6a0e5e21")
_TS_RE = re.compile(rb'"timeUnixNano"\s*:\s*"?(\d+)')
_SLUG_RE = re.compile(r"[^A-Za-z0-9._=-]+")
SCORE_HEADER = ("timestamp", "value", "expected", "lower", "upper", "score")


class ReplayError(InvalidInputError):
    """A series or suggestions file that cannot be read; the message names file and line."""


def parse_timestamp(text: str) -> datetime:
    """RFC 3339, or ``YYYY-MM-DD HH:MM:SS`` (with optional fraction) read as UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)  # raises ValueError on anything else
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


@dataclass
class CsvSeries:
    """One series from a CSV file: its identity and its points in file order."""

    name: str
    metric: str
    attributes: dict[str, str]
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    cursor: int = 0
    last_seen: int = -(2**62)
    rows: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)


def read_csv(path: Path, metric: str = "value", attributes: dict[str, str] | None = None) -> list[CsvSeries]:
    """Reads a series CSV: ``timestamp`` and ``value`` columns, optionally ``metric`` and
    attribute columns. A file with several (metric, attributes) combinations gives several
    series; the first keeps the file's stem as its name."""
    stem = path.stem
    out: dict[tuple[str, tuple[tuple[str, str], ...]], CsvSeries] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("timestamp", "value") if c not in cols]
        if missing:
            raise ReplayError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(cols)})")
        attr_cols = [c for c in cols if c not in ("timestamp", "value", "metric")]
        for lineno, row in enumerate(reader, start=2):
            try:
                ts = to_ms(parse_timestamp(row["timestamp"] or ""))
            except ValueError:
                raise ReplayError(
                    f"{path}:{lineno}: timestamp {row['timestamp']!r} is neither RFC 3339 nor "
                    "YYYY-MM-DD HH:MM:SS"
                ) from None
            try:
                value = float(row["value"] or "")
            except ValueError:
                raise ReplayError(f"{path}:{lineno}: value {row['value']!r} is not a number") from None
            m = (row.get("metric") or metric) if "metric" in cols else metric
            attrs = {c: row[c] for c in attr_cols if row.get(c)} if attr_cols else dict(attributes or {})
            attrs.setdefault("service.name", stem)
            key = (m, tuple(sorted(attrs.items())))
            s = out.get(key)
            if s is None:
                name = stem if not out else _slug(f"{stem}.{m}." + ".".join(v for _, v in key[1]))
                s = out[key] = CsvSeries(name=name, metric=m, attributes=attrs)
            s.ts_ms.append(ts)
            s.values.append(value)
    return list(out.values())


def _slug(text: str) -> str:
    return _SLUG_RE.sub("_", text).strip("_")[:200] or "series"


@dataclass
class OtlpFile:
    """An OTLP/JSON file, one export request per line (a Collector's file exporter)."""

    path: Path
    lines: list[tuple[int, bytes]]
    cursor: int = 0


def read_otlp(path: Path) -> OtlpFile:
    lines: list[tuple[int, bytes]] = []
    with path.open("rb") as f:
        for raw in f:
            body = raw.strip()
            if not body:
                continue
            stamps = [int(x) for x in _TS_RE.findall(body)]
            lines.append((max(stamps) // 1_000_000 if stamps else 0, body))
    return OtlpFile(path, lines)


def read_suggestions(path: Path) -> list[Suggestion]:
    out: list[Suggestion] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append(Suggestion.model_validate_json(line))
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(x) for x in first["loc"]) or "(document)"
                raise ReplayError(f"{path}:{lineno}: {loc}: {first['msg']}") from None
    return out


def deterministic(verdict: Verdict, suggestion: Suggestion) -> Verdict:
    """The verdict with ids and times derived from the suggestion, so two replays agree."""
    return verdict.model_copy(
        update={
            "decision_id": str(uuid.uuid5(_NS, f"{suggestion.source}\x1f{suggestion.id}")),
            "decided_at": suggestion.created_at,
        }
    )


@dataclass
class ReplayResult:
    verdicts: list[Verdict]
    series: dict[str, list[tuple[int, float, float, float, float, float]]]
    stats: StoreStatsDict
    #: The fitter's counts (``SeasonalFitter.status``: adopted by model, refused and skipped by
    #: reason), or None with fits off.
    fits: dict[str, Any] | None = None
    #: ``--labels`` scores (``referee.replay.labels.score``), or None.
    scores: dict[str, Any] | None = None


class Replayer:
    """Feeds series and suggestions through one store and one Decider in time order.

    Seasonal fits run as in ``referee serve`` (``referee.state.seasonal``), on the data's
    clock: the series decisions read are fitted a minute (of data) after the decision and
    refitted every ``baselines.refit_every``, each fit seeing only the data up to then. Two
    differences keep replays fast and repeatable: the fitter steps only within a band's
    ``horizon`` before each decision (an older fit cannot judge the points a decision reads;
    points far from any decision keep their streaming judgement), and each step fits everything
    due, with no CPU budget, so the result does not depend on the machine's speed.
    ``fits=False`` (or ``baselines.fit_budget_s_per_min: 0``) keeps the streaming baselines
    only, as serve then does. The fitter keeps the downsampled history of every CSV series from
    its first point (not only the store's ring), so a series read late in a replay is fittable
    at once; the fitter's counts (adopted, refused and skipped fits by reason) end up in
    ``ReplayResult.fits``.
    """

    def __init__(self, settings: Settings, rules: LoadedRules | None = None, fits: bool = True) -> None:
        self.settings = settings
        self.store: _core.SeriesStore = open_store(settings)
        self.rules = rules or load_rules(settings.rules, settings.min_history)
        self.decider = Decider(self.store, self.rules)
        self.chunk = max(1, settings.ring_capacity)
        self._now_ms = 0
        self.fitter: SeasonalFitter | None = None
        if fits and settings.baselines.fit_budget_s_per_min > 0:
            self.fitter = SeasonalFitter.from_settings(
                self.store, settings, clock=lambda: self._now_ms / 1000
            )
            self.fitter.budget = math.inf
        self._refit_ms = int(settings.baselines.refit_every * 1000)
        self._horizon_ms = int(settings.baselines.horizon * 1000)
        self._next_step_ms: int | None = None

    def _advance_csv(self, s: CsvSeries, until_ms: int | None) -> int:
        """Ingests the series' points up to ``until_ms`` (all if None); returns how many."""
        n = len(s.ts_ms)
        start = s.cursor
        end = start
        while end < n and (until_ms is None or s.ts_ms[end] <= until_ms):
            end += 1
        pos = start
        while pos < end:
            stop = min(end, pos + self.chunk)
            self.store.ingest_points(s.metric, "value", s.attributes, s.ts_ms[pos:stop], s.values[pos:stop])
            self._collect(s)
            if self.fitter is not None:
                self.fitter.poll(key_of(s.metric, "value", s.attributes))  # before the ring wraps
            pos = stop
        s.cursor = end
        return end - start

    def _collect(self, s: CsvSeries) -> None:
        for row in self.store.samples(s.metric, "value", s.attributes):
            if row[0] > s.last_seen:
                s.rows.append(row)
                s.last_seen = row[0]

    def _advance_otlp(self, f: OtlpFile, until_ms: int | None, otlp_rows: dict[str, CsvSeries]) -> int:
        start = f.cursor
        while f.cursor < len(f.lines) and (until_ms is None or f.lines[f.cursor][0] <= until_ms):
            body = f.lines[f.cursor][1]
            try:
                self.store.ingest_otlp_metrics(body, json=True)
            except ValueError as e:
                raise ReplayError(f"{f.path}:{f.cursor + 1}: {e}") from None
            f.cursor += 1
            self._collect_otlp(f, otlp_rows)
            if self.fitter is not None:
                self.fitter.poll()
        return f.cursor - start

    def _collect_otlp(self, f: OtlpFile, otlp_rows: dict[str, CsvSeries]) -> None:
        for info in self.store.series(limit=1_000_000):
            metric, statistic, attrs = info.metric, info.statistic, info.attributes
            key = json.dumps([metric, statistic, attrs], sort_keys=True)
            s = otlp_rows.get(key)
            if s is None:
                name = _slug(f"{f.path.stem}.{metric}.{statistic}." + ".".join(attrs.values()))
                s = otlp_rows[key] = CsvSeries(name=name, metric=metric, attributes=attrs)
                s.ts_ms = []  # unused for OTLP series
            last_ts_ms = info.last_ts_ms
            if last_ts_ms is None or last_ts_ms <= s.last_seen:
                continue
            for row in self.store.samples(metric, statistic, attrs):
                if row[0] > s.last_seen:
                    s.rows.append(row)
                    s.last_seen = row[0]

    def run(
        self,
        csv_series: list[CsvSeries],
        otlp_files: list[OtlpFile],
        suggestions: list[Suggestion],
        progress: Callable[[int], None] | None = None,
    ) -> ReplayResult:
        tick = progress or (lambda _n: None)
        otlp_rows: dict[str, CsvSeries] = {}

        def advance(until: int | None) -> None:
            for s in csv_series:
                tick(self._advance_csv(s, until))
            for f in otlp_files:
                tick(self._advance_otlp(f, until, otlp_rows))

        def advance_with_fits(until: int) -> None:
            """Data up to ``until`` (a decision's time), stopping on the way for the fitter's
            steps that can matter to it: those less than a band's horizon before it."""
            if self.fitter is not None:
                first = -(-(until - self._horizon_ms) // self._refit_ms) * self._refit_ms  # ceil
                steps = set(range(first, until + 1, self._refit_ms))
                if self._next_step_ms is not None and until - self._horizon_ms <= self._next_step_ms <= until:
                    steps.add(self._next_step_ms)  # a minute after the previous decision
                for step_at in sorted(t for t in steps if t > self._now_ms):
                    advance(step_at)
                    self._now_ms = step_at
                    self.fitter.step()
            advance(until)

        order = sorted(range(len(suggestions)), key=lambda i: (suggestions[i].created_at, i))
        verdicts: list[Verdict] = []
        for i in order:
            sug = suggestions[i]
            at = to_ms(sug.created_at)
            advance_with_fits(at)
            self._now_ms = at
            verdict = deterministic(self.decider.decide(sug), sug)
            verdicts.append(verdict)
            if self.fitter is not None:
                self.fitter.note_verdict(verdict)  # a confirmed incident is never fitted
                self._next_step_ms = at + 60_000  # serve's fitter passes once a minute
            tick(1)
        advance(None)
        series = {s.name: s.rows for s in csv_series}
        for s in otlp_rows.values():
            series[s.name] = s.rows
        fits = self.fitter.status() if self.fitter is not None else None
        return ReplayResult(verdicts, series, self.store.stats().to_dict(), fits)


def _fmt(x: float) -> str:
    return "" if x != x else repr(float(x))  # NaN (no band yet) is an empty cell


def write_outputs(result: ReplayResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores").mkdir(exist_ok=True)
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    summary = {"series": len(result.series), "verdicts": dict(sorted(counts.items())), "fits": result.fits}
    (out / "replay.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if result.scores is not None:
        (out / "scores.json").write_text(json.dumps(result.scores, indent=2) + "\n", encoding="utf-8")
    with (out / "verdicts.jsonl").open("w", encoding="utf-8") as f:
        for v in result.verdicts:
            f.write(v.model_dump_json() + "\n")
    for name, rows in result.series.items():
        with (out / "scores" / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(SCORE_HEADER)
            for ts, value, expected, lower, upper, score in rows:
                stamp = datetime.fromtimestamp(ts / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
                w.writerow((stamp, repr(value), _fmt(expected), _fmt(lower), _fmt(upper), _fmt(score)))


def is_otlp(path: Path) -> bool:
    """OTLP/JSON lines files are recognised by extension (.json, .jsonl, .ndjson)."""
    return path.suffix.lower() in (".json", ".jsonl", ".ndjson")


def replay(
    paths: Iterable[Path],
    out: Path,
    settings: Settings,
    suggestions_path: Path | None = None,
    metric: str = "value",
    attributes: dict[str, str] | None = None,
    progress: bool = False,
    fits: bool = True,
    labels_path: Path | None = None,
) -> ReplayResult:
    """Reads the inputs, replays them and writes ``out/verdicts.jsonl``, ``out/scores/``,
    ``out/replay.json`` (verdict and fit counts) and, with ``labels_path``, ``out/scores.json``
    (``referee.replay.labels``)."""
    from referee.replay import labels as lb

    paths = list(paths)
    csv_series: list[CsvSeries] = []
    otlp_files: list[OtlpFile] = []
    for p in paths:
        if not p.is_file():
            raise ReplayError(f"{p}: no such file")
        if is_otlp(p):
            otlp_files.append(read_otlp(p))
        else:
            csv_series.extend(read_csv(p, metric, attributes))
    names = [s.name for s in csv_series]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ReplayError(f"two series files share the stem {dupes[0]!r}; rename one")
    suggestions = read_suggestions(suggestions_path) if suggestions_path else []
    labels = lb.read_labels(labels_path, paths) if labels_path else None
    replayer = Replayer(settings, fits=fits)
    total = sum(len(s.ts_ms) for s in csv_series) + sum(len(f.lines) for f in otlp_files) + len(suggestions)
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task("replaying", total=total)
            result = replayer.run(csv_series, otlp_files, suggestions, lambda n: bar.advance(task, n))
    else:
        result = replayer.run(csv_series, otlp_files, suggestions)
    if labels is not None:
        result.scores = lb.score(result.verdicts, labels, [p.stem for p in paths])
    write_outputs(result, out)
    return result
