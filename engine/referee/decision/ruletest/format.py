"""Rule test v1 files: the format (promtool's expanding notation, input series, cases) and
reading them with every problem at its ``path:line:col``.

Rule tests (``referee rules test``): promtool-style unit tests for rule packs.

A test file names the packs it tests, gives input series in promtool's expanding notation and
asserts the verdict of suggestions decided at given times. The suggestions go through the same
store (``state.open_store``), loader (``rulepack.load_rules``, with plugin functions) and
``Decider`` as ``referee serve``, so a passing test says what the service would do.

Points are fed in time order: before each suggestion is decided, every series receives its
points up to the suggestion's time, and nothing later. A suggestion therefore sees exactly the
history a running service would have seen at that moment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from referee.decision.rulepack import MAX_FILE_BYTES, _StrictLoader
from referee.durations import parse_duration
from referee.errors import ManyErrors
from referee.models import Suggestion, VerdictValue

#: Largest number of samples one ``values`` string may expand to (about 2 years at 1m).
MAX_SAMPLES = 1_000_000
#: Start of the timeline when a file has no ``start``: promtool's epoch, a Thursday 00:00 UTC.
DEFAULT_START = datetime(1970, 1, 1, tzinfo=UTC)

# --- the expanding notation ---------------------------------------------------------------

_UNSIGNED = r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[iI]nf|NaN)"
_NUMBER = rf"[+-]?{_UNSIGNED}"
_SINGLE = re.compile(rf"^{_NUMBER}$")
_SERIES = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<op>[+-])(?P<b>{_UNSIGNED}))?x(?P<n>\d+)$")
_MISSING = re.compile(r"^_(?:x(?P<n>\d+))?$")


class NotationError(ValueError):
    """A ``values`` string that is not promtool's expanding notation."""


def _num(text: str) -> float:
    return float(text)  # Python reads Inf, +Inf, -Inf and NaN as promtool does


def expand_values(text: str | float) -> list[float | None]:
    """Expands promtool's notation; ``None`` is a missing sample.

    * ``a`` one sample; ``_`` one missing sample; ``stale`` a staleness marker (Referee has no
      staleness, so it is a missing sample too);
    * ``a+bxn`` ``a, a+b, ..., a+n*b`` (n+1 samples); ``a-bxn`` the same going down;
    * ``axn`` ``a`` n+1 times (``a+0xn``); ``_xn`` n missing samples.
    """
    if isinstance(text, bool):
        raise NotationError("values must be a string of samples, e.g. `1+2x10 5 _ 3x5`")
    if isinstance(text, int | float):
        return [float(text)]
    out: list[float | None] = []
    for token in text.split():
        if token == "stale":
            out.append(None)
            continue
        m = _MISSING.match(token)
        if m:
            out.extend([None] * (int(m.group("n")) if m.group("n") is not None else 1))
        elif _SINGLE.match(token):
            out.append(_num(token))
        else:
            m = _SERIES.match(token)
            if not m:
                raise NotationError(
                    f"`{token}` is not a sample: write a number, `_`, `stale`, `axn`, `a+bxn` or `a-bxn`"
                )
            a, n = _num(m.group("a")), int(m.group("n"))
            b = _num(m.group("b")) if m.group("b") else 0.0
            if m.group("op") == "-":
                b = -b
            if len(out) + n + 1 > MAX_SAMPLES:
                raise NotationError(f"`{token}` expands past {MAX_SAMPLES} samples")
            out.extend(a + i * b for i in range(n + 1))
        if len(out) > MAX_SAMPLES:
            raise NotationError(f"values expand past {MAX_SAMPLES} samples")
    return out


# --- the file format ------------------------------------------------------------------------


class InputSeries(BaseModel):
    """One series fed to the store, one sample per ``interval`` from ``start``."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, description="Metric name, e.g. http.server.request.duration.")
    statistic: str = Field(default="value", min_length=1, description="e.g. value, rate, p99, error_ratio.")
    attributes: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Resource and point attributes, e.g. service.name."
    )
    values: str | float = Field(
        description="promtool's expanding notation: `1+2x3` is 1 3 5 7, `1x4320` is 4321 ones, "
        "`_` a missing sample, `_x5` five of them."
    )


class CaseSuggestion(Suggestion):
    """Suggestion v1 with an optional ``id``; its ``created_at`` is the case's ``at``."""

    id: str = Field(default="", max_length=256, description="Defaults to <file>#<case index>.")


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: VerdictValue
    rule_ids: list[str] | None = Field(
        default=None, description="The deciding rules, in any order (checked when given)."
    )
    mode: Literal["enforce", "shadow"] | None = None


class Case(BaseModel):
    """One suggestion, the time it is decided at, and the verdict it must get."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    at: str | datetime = Field(
        description="When it is decided: an offset from `start` (`30m`, `74h`, `3d`) or an RFC 3339 time."
    )
    suggestion: CaseSuggestion
    expect: Expect


class StoreSettings(BaseModel):
    """The store's settings for this file (defaults as ``referee serve``)."""

    model_config = ConfigDict(extra="forbid")

    min_history: int | None = Field(default=None, ge=1)
    season_min_days: int | None = Field(default=None, ge=1)
    band_k: float | None = Field(default=None, gt=0)
    ring_capacity: int | None = Field(default=None, ge=1)


class RuleTestFile(BaseModel):
    """Rule test v1 (``*.test.yaml``)."""

    model_config = ConfigDict(extra="forbid", title="Rule test v1")

    rule_files: list[str] = Field(
        min_length=1, description="Rule packs (files or directories), relative to this file."
    )
    interval: str = Field(default="1m", description="Time between samples, e.g. 1m.")
    start: datetime | None = Field(default=None, description="Time of each series' first sample (RFC 3339).")
    settings: StoreSettings | None = None
    input_series: list[InputSeries] = Field(default_factory=list)
    suggestions: list[Case] = Field(min_length=1)


# --- reading a file with positions ----------------------------------------------------------

PathKey = tuple[str | int, ...]


class RuleTestError(ManyErrors):
    """Problems in a test file; ``errors`` holds ``path:line:col: message`` lines."""


def _positions(
    node: Node, path: PathKey, out: dict[PathKey, tuple[int, int]], errors: list[str], where: Path
) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            k = str(key.value) if isinstance(key, ScalarNode) else "?"
            if k in seen:
                errors.append(
                    f"{where}:{key.start_mark.line + 1}:{key.start_mark.column + 1}: duplicate key `{k}`"
                )
            seen.add(k)
            _positions(value, (*path, k), out, errors, where)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, (*path, i), out, errors, where)


@dataclass
class LoadedTest:
    path: Path
    doc: RuleTestFile
    positions: dict[PathKey, tuple[int, int]]

    def where(self, *key: str | int) -> str:
        """``path:line:col`` of the deepest known node along ``key``."""
        k: PathKey = tuple(key)
        while k not in self.positions and k:
            k = k[:-1]
        line, col = self.positions.get(k, (1, 1))
        return f"{self.path}:{line}:{col}"


def read_test_file(path: Path) -> LoadedTest:
    """Reads and validates one test file with the rule packs' strict YAML loader."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RuleTestError([f"{path}:1:1: cannot read: {e.strerror}"]) from None
    if len(raw) > 16 * MAX_FILE_BYTES:
        raise RuleTestError(
            [f"{path}:1:1: file is {len(raw)} bytes, over the {16 * MAX_FILE_BYTES}-byte limit"]
        )
    loader = _StrictLoader(raw.decode("utf-8", errors="replace"))
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleTestError(
            [f"{path}:{line}:{col}: {' '.join(p for p in (e.context, e.problem) if p)}"]
        ) from None
    except yaml.YAMLError as e:
        raise RuleTestError([f"{path}:1:1: {e}"]) from None
    finally:
        loader.dispose()
    if node is None:
        raise RuleTestError([f"{path}:1:1: empty rule test file"])
    positions: dict[PathKey, tuple[int, int]] = {}
    errors: list[str] = []
    _positions(node, (), positions, errors, path)
    if errors:
        raise RuleTestError(errors)
    try:
        doc = RuleTestFile.model_validate(data)
    except ValidationError as e:
        tf = LoadedTest(path, RuleTestFile.model_construct(), positions)
        lines = []
        for err in e.errors(include_url=False):
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p in ("str", "float", "datetime"))
            )
            dotted = ".".join(str(p) for p in loc)
            lines.append(f"{tf.where(*loc)}: {dotted}: {err['msg']}")
        raise RuleTestError(lines) from None
    tf = LoadedTest(path, doc, positions)
    errors = []
    for i, s in enumerate(doc.input_series):
        try:
            expand_values(s.values)
        except NotationError as e:
            errors.append(f"{tf.where('input_series', i, 'values')}: input_series.{i}.values: {e}")
    try:
        if parse_duration(doc.interval) <= 0:
            raise ValueError("must be positive")
    except ValueError as e:
        errors.append(f"{tf.where('interval')}: interval: {e}")
    for i, c in enumerate(doc.suggestions):
        if ("suggestions", i, "suggestion", "created_at") in positions:
            errors.append(
                f"{tf.where('suggestions', i, 'suggestion', 'created_at')}: suggestions.{i}.suggestion."
                "created_at: set the time with the case's `at`"
            )
        if isinstance(c.at, str):
            try:
                parse_duration(c.at)
            except ValueError:
                errors.append(
                    f"{tf.where('suggestions', i, 'at')}: suggestions.{i}.at: `{c.at}` is neither a "
                    "duration from `start` (30m, 74h, 3d) nor an RFC 3339 time"
                )
    if errors:
        raise RuleTestError(errors)
    return tf


def find_test_files(paths: list[Path]) -> list[Path]:
    """Files as given; directories searched recursively for ``*.test.yaml``/``*.test.yml``."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(x for x in p.rglob("*.test.y*ml") if x.name.endswith((".test.yaml", ".test.yml")))
            )
        else:
            out.append(p)
    return out
