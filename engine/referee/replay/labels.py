"""Scores a replay's verdicts against labels (``referee replay --labels FILE``).

Two label formats:

* **NAB-style windows**, JSON: ``{"file.csv": [["start", "end"], ...], ...}`` (as NAB's
  ``combined_windows.json``). A key applies to the replayed series file whose path ends with it
  or whose stem equals the key's stem; a verdict belongs to the file whose stem equals its
  subject's ``service.name`` (what replay gives CSV series), or, when one file is replayed, to
  that file.
* **Per-row labels**, CSV with ``timestamp,label`` columns (label 0 or 1): one timeline for all
  verdicts. A time is labelled by the latest row at or before it; a window is a run of rows
  labelled 1 (from its first row to the next row labelled 0, or its last row).

A claim is **true** when its time (the suggestion's ``created_at``) falls in a labelled window
(start and end included), **false** otherwise. Then, with T true and F false claims:

* ``retention``: confirmed or inconclusive true claims / T (true claims not suppressed);
* ``confirmation``: confirmed true claims / T;
* ``suppression``: suppressed false claims / F;
* ``precision``: confirmed true claims / all confirmed claims;
* ``recall``: labelled windows with at least one confirmed claim / labelled windows that have a
  claim in them, counted over windows.

A share with an empty denominator is null.
"""

from __future__ import annotations

import csv
import json
from bisect import bisect_right
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from referee.errors import InvalidInputError
from referee.models import Verdict

Window = tuple[int, int]


class LabelsError(InvalidInputError):
    """A labels file that cannot be read; the message names the file and what is wrong."""


def _ms(text: str, where: str) -> int:
    """RFC 3339 or ``YYYY-MM-DD HH:MM:SS[.fff]`` (UTC), as replay reads series timestamps."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
        return round((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
    except ValueError:
        raise LabelsError(
            f"{where}: timestamp {text!r} is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS"
        ) from None


def read_labels(path: Path, series_files: list[Path]) -> dict[str | None, list[Window]]:
    """Windows by series stem (None: for every verdict)."""
    if not path.is_file():
        raise LabelsError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise LabelsError(f"{path}:{e.lineno}: {e.msg}") from None
        if not isinstance(doc, dict):
            raise LabelsError(f'{path}: expected an object {{"file.csv": [["start", "end"], ...]}}')
        out: dict[str | None, list[Window]] = {}
        for key, windows in doc.items():
            stem = _match(str(key), series_files)
            if stem is None:
                continue
            if not isinstance(windows, list):
                raise LabelsError(f"{path}: {key}: expected a list of [start, end] pairs")
            for w in windows:
                if not (isinstance(w, list) and len(w) == 2):
                    raise LabelsError(f"{path}: {key}: expected [start, end], got {w!r}")
                out.setdefault(stem, []).append(
                    (_ms(str(w[0]), f"{path}: {key}"), _ms(str(w[1]), f"{path}: {key}"))
                )
        return out
    return {None: _row_windows(path)}


def _match(key: str, series_files: list[Path]) -> str | None:
    for p in series_files:
        if p.as_posix().endswith(key) or p.stem == Path(key).stem:
            return p.stem
    return None


def _row_windows(path: Path) -> list[Window]:
    rows: list[tuple[int, int]] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        if "timestamp" not in cols or "label" not in cols:
            raise LabelsError(f"{path}:1: expected columns timestamp,label (header: {','.join(cols)})")
        for lineno, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip()
            if label not in ("0", "1"):
                raise LabelsError(f"{path}:{lineno}: label {label!r} is not 0 or 1")
            rows.append((_ms(row["timestamp"] or "", f"{path}:{lineno}"), int(label)))
    rows.sort()
    windows: list[Window] = []
    start: int | None = None
    last = 0
    for ts, label in rows:
        if label and start is None:
            start = ts
        elif not label and start is not None:
            windows.append((start, ts - 1))
            start = None
        last = ts
    if start is not None:
        windows.append((start, last))
    return windows


def _window_of(windows: list[Window], at_ms: int) -> int | None:
    starts = [w[0] for w in windows]
    i = bisect_right(starts, at_ms) - 1
    while i >= 0:
        if windows[i][0] <= at_ms <= windows[i][1]:
            return i
        i -= 1
    return None


def score(
    verdicts: list[Verdict], labels: dict[str | None, list[Window]], series_stems: list[str]
) -> dict[str, Any]:
    """Precision, recall, retention, suppression and confirmation (see the module docstring)."""
    for windows in labels.values():
        windows.sort()
    counts = {
        "true": {"confirm": 0, "inconclusive": 0, "suppress": 0},
        "false": {"confirm": 0, "inconclusive": 0, "suppress": 0},
    }
    claimed: set[tuple[str | None, int]] = set()
    confirmed: set[tuple[str | None, int]] = set()
    for v in verdicts:
        if None in labels:
            stem: str | None = None
        else:
            name = v.subject.get("service.name")
            stem = name if name in series_stems else (series_stems[0] if len(series_stems) == 1 else None)
        windows = labels.get(stem, [])
        at = round(v.decided_at.timestamp() * 1000)
        w = _window_of(windows, at)
        kind = "true" if w is not None else "false"
        counts[kind][v.verdict] = counts[kind].get(v.verdict, 0) + 1
        if w is not None:
            claimed.add((stem, w))
            if v.verdict == "confirm":
                confirmed.add((stem, w))

    def share(num: int, den: int) -> float | None:
        return round(num / den, 4) if den else None

    t, f = counts["true"], counts["false"]
    n_true, n_false = sum(t.values()), sum(f.values())
    return {
        "true_claims": n_true,
        "false_claims": n_false,
        "labelled_windows": sum(len(w) for w in labels.values()),
        "precision": share(t["confirm"], t["confirm"] + f["confirm"]),
        "recall": share(len(confirmed), len(claimed)),
        "retention": share(t["confirm"] + t["inconclusive"], n_true),
        "suppression": share(f["suppress"], n_false),
        "confirmation": share(t["confirm"], n_true),
        "verdicts": counts,
    }
