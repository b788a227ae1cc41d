"""Rule pack v1: reading YAML packs safely and turning them into a compiled rule set.

Loading is all or nothing: every error in every file is collected and reported as
``path:line:col: message``; a rule set is only built when there are none. YAML is read with a
safe loader that also refuses duplicate keys, aliases (no alias bombs) and several documents
in one file, which PyYAML's ``safe_load`` silently accepts.

A pack's ``lists`` and ``macros`` are pack-scoped and inlined before the conditions go to Rust
(``celexpand``); exceptions and watch rules compile into rule sets of their own, so the main
rule set's outcomes are exactly one per suggestion rule.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from referee import _core
from referee.decision.rulepack import macros as celexpand
from referee.decision.rulepack.macros import Reference, Source
from referee.durations import parse_duration
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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, duplicate keys and over-deep nesting."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                None, None, "anchors and aliases are not allowed in rule packs", event.start_mark
            )
        depth = getattr(self, "_depth", 0)
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def _compose(text: str) -> Node | None:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    return node


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


def _position(node: ScalarNode) -> Position:
    """Where a condition's text starts: block scalars start on the next line."""
    quoted = node.style in ("'", '"')
    return (
        node.start_mark.line + 1,
        node.start_mark.column + 1 + (1 if quoted else 0),
        node.style in ("|", ">"),
    )


def _place_at(path: str | Path, pos: Position, line: int, col: int) -> str:
    """Maps a line/column inside a condition to ``path:line:col`` in its file."""
    start_line, start_col, block = pos
    if block:
        # Block scalars start on the next line; columns are relative to the indentation.
        return f"{path}:{start_line + line}:{col}"
    return f"{path}:{start_line + line - 1}:{(start_col + col - 1) if line == 1 else col}"


class _AnyKey(set[str]):
    """``mapping``'s allowed keys for lists and macros: any name (checked separately)."""

    def __contains__(self, key: object) -> bool:
        return True


def _scalar_value(node: Node) -> str | int | float | None:
    """A list item as YAML resolved it: strings and numbers only."""
    if not isinstance(node, ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:str":
        return str(node.value)
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        loaded = yaml.safe_load(node.value)
        return loaded if isinstance(loaded, (int, float)) and not isinstance(loaded, bool) else None
    return None


def _ident_offsets(src: str, name: str) -> list[int]:
    """Where ``name`` occurs as a free identifier in ``src``."""
    out, prev = [], ""
    for t in celexpand.tokens(src):
        if t.kind == "ident" and t.text == name and prev != ".":
            out.append(t.start)
        if not t.text.isspace():
            prev = t.text
    return out


@dataclass
class _Macro:
    text: str
    pos: Position
    expanded: Source | None = None
    state: str = "new"  # new | expanding | done | failed


class _PackReader:
    def __init__(self, path: Path, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        self.lists: dict[str, list[str | int | float]] = {}
        self.macros: dict[str, _Macro] = {}

    def error_at(self, pos: Position, text: str, offset: int, message: str) -> None:
        line, col = celexpand.line_col(text, offset)
        self.errors.append(f"{_place_at(self.path, pos, line, col)}: {message}")

    def error(self, node: Node | None, message: str) -> None:
        if node is None:
            self.errors.append(f"{self.path}:1:1: {message}")
        else:
            self.errors.append(
                f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {message}"
            )

    def mapping(self, node: Node, what: str, allowed: set[str]) -> dict[str, tuple[ScalarNode, Node]]:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return {}
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{what}: keys must be strings")
                continue
            if key.value in out:
                self.error(key, f"duplicate key `{key.value}` in {what}")
                continue
            if key.value not in allowed:
                self.error(
                    key, f"unknown field `{key.value}` in {what} (allowed: {', '.join(sorted(allowed))})"
                )
                continue
            out[key.value] = (key, value)
        return out

    def scalar(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a scalar")
            return None
        return str(node.value)

    def read(self, text: str) -> tuple[str, list[Rule]]:
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            message = " ".join(part for part in (e.context, e.problem) if part)
            self.errors.append(f"{self.path}:{line}:{col}: {message}")
            return "", []
        except yaml.YAMLError as e:
            self.errors.append(f"{self.path}:1:1: {e}")
            return "", []
        if root is None:
            self.error(None, "empty rule pack")
            return "", []
        top = self.mapping(root, "the pack", PACK_FIELDS)
        if "referee" not in top:
            self.error(root, "missing `referee: 1` (the rule pack format version)")
        elif self.scalar(top["referee"][1], "referee") != "1":
            self.error(top["referee"][1], "unsupported rule pack version; this Referee reads `referee: 1`")
        pack = ""
        if "pack" not in top:
            self.error(root, "missing `pack` (the pack's name)")
        else:
            pack = self.scalar(top["pack"][1], "pack") or ""
        if "lists" in top:
            self.read_lists(top["lists"][1])
        if "macros" in top:
            self.read_macros(top["macros"][1])
        for name in self.macros:
            self.expand_macro(name, [])
        rules: list[Rule] = []
        if "rules" not in top:
            self.error(root, "missing `rules`")
            return pack, rules
        rules_node = top["rules"][1]
        if not isinstance(rules_node, SequenceNode):
            self.error(rules_node, "`rules` must be a list")
            return pack, rules
        for rnode in rules_node.value:
            rule = self.rule(rnode, pack)
            if rule is not None:
                rules.append(rule)
        return pack, rules

    def read_lists(self, node: Node) -> None:
        for name, (key, value) in self.mapping(node, "lists", _AnyKey()).items():
            if not _NAME.match(name):
                self.error(key, f"list name `{name}` must be an identifier (letters, digits, '_')")
                continue
            if not isinstance(value, SequenceNode):
                self.error(value, f"list `{name}` must be a sequence of strings or numbers")
                continue
            items: list[str | int | float] = []
            kinds: set[str] = set()
            for item in value.value:
                v = _scalar_value(item)
                if v is None:
                    self.error(item, f"list `{name}`: items must be strings or numbers")
                    continue
                items.append(v)
                kinds.add("string" if isinstance(v, str) else "number")
            if len(kinds) > 1:
                self.error(value, f"list `{name}` mixes strings and numbers")
                continue
            self.lists[name] = items

    def read_macros(self, node: Node) -> None:
        for name, (key, value) in self.mapping(node, "macros", _AnyKey()).items():
            if not _NAME.match(name):
                self.error(key, f"macro name `{name}` must be an identifier (letters, digits, '_')")
                continue
            if not isinstance(value, ScalarNode) or value.tag != "tag:yaml.org,2002:str":
                self.error(value, f"macro `{name}` must be a CEL expression (a string)")
                continue
            self.macros[name] = _Macro(str(value.value), _position(value))

    def _defined(self, namespace: str) -> str:
        names = sorted(self.lists if namespace == "lists" else self.macros)
        return f"this pack defines: {', '.join(names)}" if names else "this pack defines none"

    def _expansions(
        self, text: str, report: Callable[[int, str], None], stack: list[str]
    ) -> tuple[list[Reference], dict[tuple[str, str], str | Source]] | None:
        """The references in ``text`` and what each expands to; None if any is broken."""
        refs, bad = celexpand.references(text)
        ok = True
        for offset, message in bad:
            report(offset, message)
            ok = False
        expansions: dict[tuple[str, str], str | Source] = {}
        for r in refs:
            if r.namespace == "lists":
                if r.name not in self.lists:
                    report(
                        r.start, f"unknown list `{r.name}` ({self._defined('lists')}; lists are pack-scoped)"
                    )
                    ok = False
                else:
                    expansions[("lists", r.name)] = celexpand.list_literal(self.lists[r.name])
            elif r.name not in self.macros:
                report(
                    r.start, f"unknown macro `{r.name}` ({self._defined('macros')}; macros are pack-scoped)"
                )
                ok = False
            else:
                sub = self.expand_macro(r.name, stack, (report, r.start))
                if sub is None:
                    ok = False
                else:
                    expansions[("macros", r.name)] = sub
        return (refs, expansions) if ok else None

    def expand_macro(
        self, name: str, stack: list[str], ref: tuple[Callable[[int, str], None], int] | None = None
    ) -> Source | None:
        """A macro's text with its own references expanded; cycles and over-deep chains fail."""
        m = self.macros[name]
        if m.state == "done":
            return m.expanded
        if m.state == "failed":
            return None
        if m.state == "expanding":
            assert ref is not None
            ref[0](ref[1], f"macros refer to each other in a cycle: {' -> '.join([*stack, name])}")
            return None
        if len(stack) >= celexpand.MAX_MACRO_DEPTH:
            assert ref is not None
            ref[0](
                ref[1], f"macros nest deeper than {celexpand.MAX_MACRO_DEPTH} levels: {' -> '.join(stack)}"
            )
            return None
        m.state = "expanding"

        def report(offset: int, message: str) -> None:
            self.error_at(m.pos, m.text, offset, f"macro `{name}`: {message}")

        found = self._expansions(m.text, report, [*stack, name])
        if found is None:
            m.state = "failed"
            return None
        src = Source()
        src.add(f"macros.{name}", m.text, *found)
        if len(src.text.encode()) > celexpand.MAX_EXPANDED_BYTES:
            report(0, f"expands to {len(src.text.encode())} bytes, more than {celexpand.MAX_EXPANDED_BYTES}")
            m.state = "failed"
            return None
        m.state, m.expanded = "done", src
        return src

    def condition(self, rule: Rule, key: str, node: Node, what: str) -> str | None:
        """Reads a CEL condition, records where it starts and expands its references."""
        text = self.scalar(node, what)
        if text is None:
            return None
        assert isinstance(node, ScalarNode)
        pos = _position(node)
        rule.positions[key] = pos

        def report(offset: int, message: str) -> None:
            self.error_at(pos, text, offset, f"rule `{rule.id}` {what}: {message}")

        found = self._expansions(text, report, [])
        if found is not None:
            src = Source()
            src.add(key, text, *found)
            rule.sources[key] = src
            rule.expanded[key] = src.text
            for name, m in self.macros.items():  # where the macros it uses are written
                if any(s.field == f"macros.{name}" for s in src.spans):
                    rule.positions[f"macros.{name}"] = m.pos
            if rule.kind == "watch":
                for offset in _ident_offsets(src.text, "suggestion"):
                    fld, off, written = src.locate(*celexpand.line_col(src.text, offset))
                    where = _place_at(
                        self.path, rule.positions.get(fld or key, pos), *celexpand.line_col(written, off)
                    )
                    self.errors.append(
                        f"{where}: rule `{rule.id}` {what}: watch rules have no `suggestion`; "
                        "use `series`, `signal` and `baseline`"
                    )
                    break
        return text

    def exceptions(self, rule: Rule, node: Node) -> None:
        if not isinstance(node, SequenceNode):
            self.error(node, "exceptions must be a list of {name, when}")
            return
        names: set[str] = set()
        for i, enode in enumerate(node.value):
            f = self.mapping(enode, "an exception", EXCEPTION_FIELDS)
            if "name" not in f or "when" not in f:
                self.error(enode, "an exception needs a `name` and a `when` (a CEL condition)")
                continue
            name = self.scalar(f["name"][1], "name") or ""
            if not _ID.match(name):
                self.error(
                    f["name"][1],
                    f"exception name `{name}` must be lowercase letters, digits, '.', '_' or '-'",
                )
                continue
            if name in names:
                self.error(f["name"][1], f"rule `{rule.id}`: two exceptions are named `{name}`")
                continue
            names.add(name)
            when = self.condition(rule, f"exceptions.{i}.when", f["when"][1], f"exception `{name}` when")
            if when is not None:
                rule.exceptions.append(RuleException(name, when))

    def effect(self, node: Node, what: str) -> Effect | None:
        if isinstance(node, ScalarNode):
            verdict, reason = node.value, None
        else:
            fields_ = self.mapping(node, what, EFFECT_FIELDS)
            if "verdict" not in fields_:
                self.error(node, f"{what}: missing `verdict`")
                return None
            verdict = self.scalar(fields_["verdict"][1], "verdict") or ""
            reason = self.scalar(fields_["reason"][1], "reason") if "reason" in fields_ else None
        if verdict not in VERDICTS:
            self.error(node, f"{what}: verdict must be one of {', '.join(VERDICTS)}, not `{verdict}`")
            return None
        return Effect(verdict=verdict, reason=reason)

    def rule(self, node: Node, pack: str) -> Rule | None:
        f = self.mapping(node, "a rule", RULE_FIELDS)
        n_errors = len(self.errors)
        if "id" not in f:
            self.error(node, "rule without `id`")
            return None
        rid = self.scalar(f["id"][1], "id") or ""
        if not _ID.match(rid):
            self.error(f["id"][1], f"rule id `{rid}` must be lowercase letters, digits, '.', '_' or '-'")
        rule = Rule(id=rid, pack=pack, source=str(self.path))
        id_node = f["id"][1]
        rule.positions["id"] = (id_node.start_mark.line + 1, id_node.start_mark.column + 1, False)
        if "watch" in f:
            rule.kind = "watch"
            if "match" in f:
                self.error(
                    f["watch"][0],
                    f"rule `{rid}`: a rule has either `match` (judges suggestions) "
                    "or `watch` (raises findings), not both",
                )
            for name in ("then", "otherwise", "protect"):
                if name in f:
                    self.error(f[name][0], f"rule `{rid}`: a watch rule raises findings; it has no `{name}`")
        if "protect" in f:
            pnode = f["protect"][1]
            if not (isinstance(pnode, ScalarNode) and pnode.tag == "tag:yaml.org,2002:bool"):
                self.error(pnode, "protect must be true or false")
            else:
                rule.protect = pnode.value.lower() in ("true", "yes", "on")
        for name in ("title", "description"):
            if name in f:
                setattr(rule, name, self.scalar(f[name][1], name) or "")
        if "severity" in f:
            sev = self.scalar(f["severity"][1], "severity")
            if sev not in SEVERITIES:
                self.error(f["severity"][1], f"severity must be one of {', '.join(SEVERITIES)}")
            else:
                rule.severity = sev
        if "mode" in f:
            mode = self.scalar(f["mode"][1], "mode")
            if mode not in MODES:
                self.error(f["mode"][1], f"mode must be one of {', '.join(MODES)}")
            else:
                rule.mode = mode
        if "priority" in f:
            pr = self.scalar(f["priority"][1], "priority") or ""
            try:
                rule.priority = int(pr)
            except ValueError:
                self.error(f["priority"][1], "priority must be an integer")
        if "tags" in f:
            tnode = f["tags"][1]
            if isinstance(tnode, SequenceNode) and all(isinstance(t, ScalarNode) for t in tnode.value):
                rule.tags = [str(t.value) for t in tnode.value]
            else:
                self.error(tnode, "tags must be a list of strings")
        if "match" not in f and "watch" not in f:
            self.error(node, f"rule `{rid}`: missing `match` (a CEL condition over `suggestion`)")
        for name in ("match", "watch", "when"):
            if name in f:
                text = self.condition(rule, name, f[name][1], name)
                if text is not None:
                    setattr(rule, name, text)
        if "exceptions" in f:
            self.exceptions(rule, f["exceptions"][1])
        if "signal" in f:
            rule.signal = self.signal(f["signal"][1], f.get("baseline"))
            sig_node = f["signal"][1]
            if rule.signal is not None and isinstance(sig_node, MappingNode):
                for knode, vnode in sig_node.value:
                    if isinstance(knode, ScalarNode) and knode.value == "where":
                        # Which of the subject's series to read: CEL over `series`.
                        self.condition(rule, "signal.where", vnode, "signal where")
            if rule.kind == "watch" and rule.signal and str(rule.signal.get("metric", "")).startswith("$"):
                self.error(
                    f["signal"][1],
                    f"rule `{rid}`: a watch rule names its metric; there is no claim to take it from",
                )
        elif "baseline" in f:
            self.error(f["baseline"][0], "`baseline` needs a `signal`")
        if rule.kind == "watch":
            if "signal" not in f:
                self.error(
                    node, f"rule `{rid}`: a watch rule needs a `signal` (the metric whose series it watches)"
                )
            if "when" not in f:
                self.error(
                    node, f"rule `{rid}`: a watch rule needs a `when` (the condition that raises a finding)"
                )
            return rule if len(self.errors) == n_errors else None
        if "then" in f:
            rule.then = self.effect(f["then"][1], "then")
        else:
            self.error(node, f"rule `{rid}`: missing `then` (the effect when the rule holds)")
        if "otherwise" in f:
            rule.otherwise = self.effect(f["otherwise"][1], "otherwise")
        if rule.when is None and rule.signal is not None:
            self.error(node, f"rule `{rid}`: a rule with a `signal` needs a `when` condition")
        return rule if len(self.errors) == n_errors else None

    def signal(self, node: Node, baseline: tuple[ScalarNode, Node] | None) -> dict[str, Any] | None:
        f = self.mapping(node, "signal", SIGNAL_FIELDS)
        out: dict[str, Any] = {}
        if "metric" not in f:
            self.error(node, "signal: missing `metric`")
            return None
        out["metric"] = self.scalar(f["metric"][1], "metric")
        out["statistic"] = self.scalar(f["statistic"][1], "statistic") if "statistic" in f else "value"
        if "points" in f:
            # A window in points: the last N points whatever their spacing (with `window`
            # too, only those inside it).
            text = self.scalar(f["points"][1], "points") or ""
            if not text.isdigit() or int(text) < 1:
                self.error(f["points"][1], f"signal: points must be a positive integer, not `{text}`")
                return None
            out["points"] = int(text)
        if "points" in out and "window" not in f:
            out["window_s"] = 0.0  # no time bound
            out["window"] = f"{out['points']} points"
        else:
            window = self.scalar(f["window"][1], "window") if "window" in f else "5m"
            try:
                out["window_s"] = parse_duration(window or "")
                out["window"] = window if "points" not in out else f"{out['points']} points within {window}"
            except ValueError as e:
                self.error(f["window"][1] if "window" in f else node, f"signal: {e}")
                return None
        if "optional" in f:
            onode = f["optional"][1]
            if not (isinstance(onode, ScalarNode) and onode.tag == "tag:yaml.org,2002:bool"):
                self.error(onode, "signal: optional must be true or false")
                return None
            if onode.value.lower() in ("true", "yes", "on"):
                # No effect at all when no series matches (instead of `inconclusive`).
                out["optional"] = True
        if "agg" in f:
            agg = self.scalar(f["agg"][1], "agg")
            if agg not in AGGREGATIONS:
                self.error(f["agg"][1], f"signal: agg must be one of {', '.join(AGGREGATIONS)}")
                return None
            out["agg"] = agg
        if baseline is not None:
            b = self.mapping(baseline[1], "baseline", BASELINE_FIELDS)
            if "min_history" in b:
                try:
                    out["min_history"] = int(self.scalar(b["min_history"][1], "min_history") or "")
                except ValueError:
                    self.error(b["min_history"][1], "baseline: min_history must be an integer")
            if "model" in b:
                model = self.scalar(b["model"][1], "model")
                if model not in BASELINE_MODELS:
                    self.error(b["model"][1], f"baseline: model must be one of {', '.join(BASELINE_MODELS)}")
                elif model != "auto":
                    out["model"] = model
            if "k" in b:
                text = self.scalar(b["k"][1], "k") or ""
                try:
                    k = float(text)
                except ValueError:
                    k = math.nan
                if not (math.isfinite(k) and 0 < k <= 100):
                    self.error(b["k"][1], f"baseline: k must be a number of sigmas above 0, not `{text}`")
                else:
                    out["band_k"] = k
        return out


def pack_files(paths: Iterable[Path]) -> list[Path]:
    """Expands directories into their ``*.yaml``/``*.yml`` packs (tests excluded), sorted."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(
                sorted(
                    x
                    for x in p.rglob("*.y*ml")
                    if x.suffix in (".yaml", ".yml") and not x.name.endswith((".test.yaml", ".test.yml"))
                )
            )
        else:
            files.append(p)
    return files


def _place(rule: Rule, field_name: str, line: int, col: int) -> str:
    """Maps a position inside a condition to its position in the file."""
    return _place_at(rule.source, rule.positions.get(field_name, (1, 1, False)), line, col)


@dataclass
class _Spec:
    """One condition set handed to Rust, and how to map its errors back to the file."""

    rule: Rule
    #: Rust field (``match``/``when``) -> the expanded source and what to call it in messages.
    fields: dict[str, tuple[Source, dict[str, str]]]


def _signal_spec(rule: Rule, min_history: int) -> dict[str, Any] | None:
    if rule.signal is None:
        return None
    out = {
        "min_history": min_history,
        **{k: v for k, v in rule.signal.items() if k not in ("window", "optional")},
    }
    if "signal.where" in rule.sources:  # expanded (lists, macros)
        out["where"] = rule.sources["signal.where"].text
    return out


def _compile(
    specs: list[dict[str, Any]],
    meta: dict[str, _Spec],
    digest: str,
    functions: dict[str, Callable[..., Any]] | None,
    errors: list[str],
) -> _core.RuleSet | None:
    try:
        return _core.RuleSet(json.dumps(specs), digest, functions or None)
    except _core.RuleCompileError as e:
        for rid, fld, line, col, msg in e.errors:
            spec = meta.get(rid)
            if spec is None:  # e.g. a plugin function clashing with a built-in one
                errors.append(f"<rule functions>:1:1: {msg}")
                continue
            rule = spec.rule
            if fld not in spec.fields:
                line_, col_, _ = rule.positions.get("id", (1, 1, False))
                errors.append(f"{rule.source}:{line_}:{col_}: rule `{rule.id}` {fld}: {msg}")
                continue
            src, labels = spec.fields[fld]
            key, offset, written = src.locate(line, col)
            if key is None:
                key = next(iter(labels))
            where = _place(rule, key, *celexpand.line_col(written, offset))
            label = labels.get(key) or f"macro `{key.split('.', 1)[-1]}`"
            message = f"{where}: rule `{rule.id}` {label}: {msg}"
            if message not in errors:  # a match shared by a rule and its exceptions fails once
                errors.append(message)
        return None


def _exception_label(rule: Rule, key: str) -> str:
    return f"exception `{rule.exceptions[int(key.split('.')[1])].name}` when"


def _build(
    rules: list[Rule], digest: str, min_history: int, functions: dict[str, Callable[..., Any]] | None
) -> tuple[_core.RuleSet | None, _core.RuleSet | None, list[WatchGroup], list[str]]:
    """Compiles the suggestion rules, their exceptions and the watch rules (one set per
    metric and statistic); returns every error of every set."""
    errors: list[str] = []
    specs: list[dict[str, Any]] = []
    meta: dict[str, _Spec] = {}
    exc_specs: list[dict[str, Any]] = []
    exc_meta: dict[str, _Spec] = {}
    groups: dict[tuple[str, str], tuple[list[Rule], list[dict[str, Any]], dict[str, _Spec]]] = {}
    for r in rules:
        signal = _signal_spec(r, min_history)
        if r.kind == "watch":
            # One condition: the selector, the condition, and no exception holding.
            src = Source()
            src.glue("(")
            src.extend(r.sources["watch"])
            src.glue(") && (")
            src.extend(r.sources["when"])
            src.glue(")")
            labels = {"watch": "watch", "when": "when"}
            for i in range(len(r.exceptions)):
                key = f"exceptions.{i}.when"
                src.glue(" && !(")
                src.extend(r.sources[key])
                src.glue(")")
                labels[key] = _exception_label(r, key)
            assert r.signal is not None
            group = groups.setdefault((r.signal["metric"], r.signal["statistic"]), ([], [], {}))
            group[0].append(r)
            group[1].append({"id": r.id, "match": "true", "when": src.text, "signal": signal})
            watch_fields = {"when": (src, labels)}
            if "signal.where" in r.sources:
                watch_fields["where"] = (r.sources["signal.where"], {"signal.where": "signal where"})
            group[2][r.id] = _Spec(r, watch_fields)
            continue
        match_src = r.sources.get("match") or _plain("match", r.match)
        fields = {"match": (match_src, {"match": "match"})}
        spec: dict[str, Any] = {"id": r.id, "match": match_src.text, "when": None}
        if r.when is not None:
            when_src = r.sources.get("when") or _plain("when", r.when)
            spec["when"] = when_src.text
            fields["when"] = (when_src, {"when": "when"})
        if signal is not None:
            spec["signal"] = signal
            if "signal.where" in r.sources:
                fields["where"] = (r.sources["signal.where"], {"signal.where": "signal where"})
        specs.append(spec)
        meta[r.id] = _Spec(r, fields)
        for i, exc in enumerate(r.exceptions):
            key = f"exceptions.{i}.when"
            esrc = r.sources.get(key) or _plain(key, exc.when)
            eid = f"{r.id}#{exc.name}"
            # An exception about the suggestion alone is judged even when the evidence is missing.
            reads_evidence = bool(celexpand.free_identifiers(esrc.text) & EVIDENCE_VARIABLES)
            exc_specs.append(
                {
                    "id": eid,
                    "match": match_src.text,
                    "when": esrc.text,
                    "signal": signal if reads_evidence else None,
                }
            )
            exc_meta[eid] = _Spec(
                r, {"match": (match_src, {"match": "match"}), "when": (esrc, {key: _exception_label(r, key)})}
            )
            if "where" in fields:
                exc_meta[eid].fields["where"] = fields["where"]
    compiled = _compile(specs, meta, digest, functions, errors)
    exceptions = _compile(exc_specs, exc_meta, digest, functions, errors) if exc_specs else None
    watch_groups: list[WatchGroup] = []
    for (metric, statistic), (grules, gspecs, gmeta) in groups.items():
        for spec in gspecs:
            text = spec["when"]
            if len(text.encode()) > celexpand.MAX_EXPANDED_BYTES:
                r = gmeta[spec["id"]].rule
                line, col, _ = r.positions.get("watch", (1, 1, False))
                errors.append(
                    f"{r.source}:{line}:{col}: rule `{r.id}`: watch, when and exceptions together are "
                    f"{len(text.encode())} bytes, more than {celexpand.MAX_EXPANDED_BYTES}"
                )
        gcompiled = _compile(gspecs, gmeta, digest, functions, errors)
        if gcompiled is not None:
            watch_groups.append(WatchGroup(metric, statistic, grules, gcompiled))
    return compiled, exceptions, watch_groups, errors


def _plain(key: str, text: str) -> Source:
    src = Source()
    src.add(key, text, [], {})
    return src


def load_rules(
    paths: Iterable[Path], min_history: int = 30, functions: dict[str, Callable[..., Any]] | None = None
) -> LoadedRules:
    """Reads, validates and compiles the packs; raises ``RulePackError`` listing every problem.

    ``functions`` are made callable from conditions (plugins register them through
    ``referee_register_rule_functions``)."""
    errors: list[str] = []
    rules: list[Rule] = []
    files = pack_files(paths)
    digest = hashlib.sha256()
    if not files:
        raise RulePackError([f"{', '.join(str(p) for p in paths)}: no rule packs found"])
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as e:
            errors.append(f"{path}:1:1: cannot read: {e.strerror}")
            continue
        if len(raw) > MAX_FILE_BYTES:
            errors.append(f"{path}:1:1: file is {len(raw)} bytes, over the {MAX_FILE_BYTES}-byte limit")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append(f"{path}:1:1: not UTF-8 ({e.reason})")
            continue
        digest.update(str(path.name).encode() + b"\0" + raw + b"\0")
        _, file_rules = _PackReader(path, errors).read(text)
        rules.extend(file_rules)
    seen: dict[str, Rule] = {}
    for r in rules:
        if r.id in seen:
            line, col, _ = r.positions.get("id", (1, 1, False))
            first = seen[r.id]
            errors.append(
                f"{r.source}:{line}:{col}: duplicate rule id `{r.id}` (first defined at "
                f"{first.source}:{first.positions.get('id', (1, 1, False))[0]})"
            )
        else:
            seen[r.id] = r
    if errors:
        raise RulePackError(errors)
    compiled, exceptions, watch_groups, errors = _build(rules, digest.hexdigest(), min_history, functions)
    if errors or compiled is None:
        raise RulePackError(errors)
    return LoadedRules(
        rules=rules, compiled=compiled, files=files, exceptions=exceptions, watch_groups=watch_groups
    )
