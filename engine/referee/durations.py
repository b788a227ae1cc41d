"""Durations: the one grammar every duration in Referee is written in.

A duration is a number with a unit, or several in a row, Prometheus style: ``500ms``, ``30s``,
``10m``, ``1.5h``, ``1h30m``, ``7d``, ``2w``. Rule packs (``window: 10m``), rule tests
(``interval: 1m``), referee.yaml (``settle_after: 15m``) and the CLI (``--since 2h``) all read
it through :func:`parse_duration`. Settings that have always been seconds also take a bare
number (``reevaluate_s: 30``): :func:`seconds`.
"""

from __future__ import annotations

import re

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)"
#: The grammar as a regular expression (also the JSON Schema ``pattern`` of rule-pack durations).
PATTERN = rf"^(?:{_PART})+$"
_WHOLE = re.compile(PATTERN)
_PARTS = re.compile(_PART)


def parse_duration(text: str) -> float:
    """``"10m"`` → 600.0 seconds; ``"1h30m"`` → 5400.0. ``ValueError`` names the text."""
    body = str(text).strip()
    if not body or not _WHOLE.match(body):
        raise ValueError(f"invalid duration {text!r}; use a number and a unit: 30s, 10m, 1h")
    return sum(float(n) * UNITS[u] for n, u in _PARTS.findall(body))


def seconds(value: object, name: str) -> float:
    """A setting in seconds: a number (``90``), a number in text (``"90"``) or a duration
    (``"15m"``). ``ValueError`` names the setting."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"{name}: invalid duration {value!r}; use seconds or 30s, 15m, 1h") from None
