"""One rule-pack file read into rules: fields checked, lists and macros expanded into each
condition (``macros``), every problem reported at its place in the file."""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from referee.decision.rulepack.model import (
    _ID,
    AGGREGATIONS,
    BASELINE_FIELDS,
    BASELINE_MODELS,
    EFFECT_FIELDS,
    EXCEPTION_FIELDS,
    MODES,
    PACK_FIELDS,
    RULE_FIELDS,
    SEVERITIES,
    SIGNAL_FIELDS,
    VERDICTS,
    Effect,
    Rule,
    RuleException,
)
from referee.decision.rulepack.scope import PackScope
from referee.decision.rulepack.yamlfile import (
    _compose,
)
from referee.durations import parse_duration


class _PackReader(PackScope):
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
