"""Rule pack v1 as loaded: the rules, their effects and exceptions, the compiled rule sets,
and the limits and vocabulary the loader checks them against."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from referee import _core
from referee.decision.rulepack.macros import Source
from referee.errors import ManyErrors

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
VERDICTS = ("confirm", "suppress", "inconclusive")
MODES = ("enforce", "shadow", "off")
SEVERITIES = ("info", "warning", "critical")
AGGREGATIONS = ("mean", "max", "min", "last")

PACK_FIELDS = {"referee", "pack", "description", "lists", "macros", "rules"}
RULE_FIELDS = {
    "id",
    "title",
    "description",
    "severity",
    "tags",
    "mode",
    "priority",
    "match",
    "signal",
    "baseline",
    "when",
    "then",
    "otherwise",
    "exceptions",
    "watch",
    "protect",
}
EXCEPTION_FIELDS = {"name", "when"}
SIGNAL_FIELDS = {"metric", "statistic", "window", "points", "agg", "optional", "where"}
BASELINE_FIELDS = {"model", "k", "min_history"}
#: `baseline.model`: `auto` (whichever baseline judged each point), a family, or one model.
BASELINE_MODELS = (
    "auto",
    "fitted",
    "streaming",
    "streaming.hour_of_day",
    "streaming.hour_of_week",
    "streaming.median_mad",
    "statsmodels.stl",
    "statsmodels.mstl",
    "statsmodels.unobserved_components",
    "statsmodels.sarimax_fourier",
    "statsmodels.ols_fourier",
)
EFFECT_FIELDS = {"verdict", "reason"}
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Variables that exist only when a rule reads a signal.
EVIDENCE_VARIABLES = {"signal", "baseline", "series"}
#: Where a condition starts in its file: (line, col, block_scalar).
Position = tuple[int, int, bool]


class RulePackError(ManyErrors):
    """One or more problems in rule packs; ``errors`` holds ``path:line:col: message`` lines."""


@dataclass
class Effect:
    verdict: str
    reason: str | None = None


@dataclass
class RuleException:
    """A Falco-style exception: when ``when`` holds, the rule yields no effect."""

    name: str
    when: str


@dataclass
class Rule:
    id: str
    pack: str
    source: str
    title: str = ""
    description: str = ""
    severity: str = "warning"
    tags: list[str] = field(default_factory=list)
    mode: str = "enforce"
    priority: int = 0
    match: str = "true"
    when: str | None = None
    signal: dict[str, Any] | None = None
    window: str | None = None
    then: Effect | None = None
    otherwise: Effect | None = None
    #: ``suggestion`` (judges suggestions, has ``match``) or ``watch`` (raises findings).
    kind: str = "suggestion"
    #: A watch rule's series selector (CEL over ``series``, ``signal``, ``baseline``).
    watch: str | None = None
    #: A protective rule's confirm or inconclusive is never overridden by a suppression.
    protect: bool = False
    exceptions: list[RuleException] = field(default_factory=list)
    #: Where each condition starts in its file: field -> (line, col, block_scalar); the fields
    #: are ``id``, ``match``, ``when``, ``watch`` and ``exceptions.<i>.when``.
    positions: dict[str, Position] = field(default_factory=dict)
    #: Each condition with the pack's lists and macros expanded (what Rust compiled).
    expanded: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class WatchGroup:
    """Watch rules reading the same metric and statistic, compiled together so one evaluation
    per live series judges all of them."""

    metric: str
    statistic: str
    rules: list[Rule]
    compiled: _core.RuleSet


@dataclass
class LoadedRules:
    #: Every rule, suggestion rules and watch rules, in file order.
    rules: list[Rule]
    #: The suggestion rules (outcomes come back one per suggestion rule, in order).
    compiled: _core.RuleSet
    files: list[Path]
    #: Every exception of every suggestion rule, as a rule `<rule id>#<exception name>`.
    exceptions: _core.RuleSet | None = None
    watch_groups: list[WatchGroup] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return self.compiled.revision

    @functools.cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}
