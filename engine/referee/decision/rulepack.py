"""Rule pack v1: reading YAML packs safely and turning them into a compiled rule set.

Loading is all or nothing: every error in every file is collected and reported as
``path:line:col: message``; a rule set is only built when there are none. YAML is read with a
safe loader that also refuses duplicate keys, aliases (no alias bombs) and several documents
in one file, which PyYAML's ``safe_load`` silently accepts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from referee import _core

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
}
SIGNAL_FIELDS = {"metric", "statistic", "window", "agg"}
BASELINE_FIELDS = {"min_history"}
EFFECT_FIELDS = {"verdict", "reason"}
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class RulePackError(ValueError):
    """One or more problems in rule packs; ``errors`` holds ``path:line:col: message`` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def parse_duration(text: str) -> float:
    """``"10m"`` -> 600.0 seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"invalid duration {text!r}; use a number and a unit: 30s, 10m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


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
    #: Where each condition starts in its file: field -> (line, col, block_scalar).
    positions: dict[str, tuple[int, int, bool]] = field(default_factory=dict)


@dataclass
class LoadedRules:
    rules: list[Rule]
    compiled: _core.RuleSet
    files: list[Path]

    @property
    def revision(self) -> str:
        return self.compiled.revision

    @functools.cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


class _PackReader:
    def __init__(self, path: Path, errors: list[str]) -> None:
        self.path = path
        self.errors = errors

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
        if "lists" in top or "macros" in top:
            node = top.get("lists", top.get("macros"))
            assert node is not None
            self.error(node[0], "`lists` and `macros` are not supported by this version yet")
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
        if "match" not in f:
            self.error(node, f"rule `{rid}`: missing `match` (a CEL condition over `suggestion`)")
        for name in ("match", "when"):
            if name in f:
                v = f[name][1]
                text = self.scalar(v, name)
                if text is not None:
                    setattr(rule, name, text)
                    assert isinstance(v, ScalarNode)
                    block = v.style in ("|", ">")
                    quoted = v.style in ("'", '"')
                    rule.positions[name] = (
                        v.start_mark.line + 1,
                        v.start_mark.column + 1 + (1 if quoted else 0),
                        block,
                    )
        if "signal" in f:
            rule.signal = self.signal(f["signal"][1], f.get("baseline"))
        elif "baseline" in f:
            self.error(f["baseline"][0], "`baseline` needs a `signal`")
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
        window = self.scalar(f["window"][1], "window") if "window" in f else "5m"
        try:
            out["window_s"] = parse_duration(window or "")
            out["window"] = window
        except ValueError as e:
            self.error(f["window"][1] if "window" in f else node, f"signal: {e}")
            return None
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
    start_line, start_col, block = rule.positions.get(field_name, (1, 1, False))
    if block:
        # Block scalars start on the next line; columns are relative to the indentation.
        return f"{rule.source}:{start_line + line}:{col}"
    return f"{rule.source}:{start_line + line - 1}:{(start_col + col - 1) if line == 1 else col}"


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
            errors.append(
                f"{r.source}:{r.positions.get('match', (1, 1, False))[0]}:1: duplicate rule id "
                f"`{r.id}` (first defined in {seen[r.id].source})"
            )
        else:
            seen[r.id] = r
    if errors:
        raise RulePackError(errors)
    specs = []
    for r in rules:
        spec: dict[str, Any] = {"id": r.id, "match": r.match, "when": r.when}
        if r.signal is not None:
            spec["signal"] = {
                "min_history": min_history,
                **{k: v for k, v in r.signal.items() if k != "window"},
            }
        specs.append(spec)
    try:
        compiled = _core.RuleSet(json.dumps(specs), digest.hexdigest(), functions or None)
    except _core.RuleCompileError as e:
        by_id = {r.id: r for r in rules}
        lines = [
            f"{_place(by_id[rid], fld, line, col)}: rule `{rid}` {fld}: {msg}"
            for rid, fld, line, col, msg in e.errors
        ]
        raise RulePackError(lines) from None
    return LoadedRules(rules=rules, compiled=compiled, files=files)
