"""Rules into compiled rule sets: the suggestion rules, their exceptions and the watch rules
(grouped by what they read), compiled in Rust; compile errors mapped back to ``path:line:col``.
``load_rules`` is the whole pipeline, all or nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from referee import _core
from referee.decision.rulepack import macros
from referee.decision.rulepack.macros import Source
from referee.decision.rulepack.model import (
    EVIDENCE_VARIABLES,
    MAX_FILE_BYTES,
    LoadedRules,
    Rule,
    RulePackError,
    WatchGroup,
)
from referee.decision.rulepack.reader import _PackReader
from referee.decision.rulepack.yamlfile import _place_at


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
            where = _place(rule, key, *macros.line_col(written, offset))
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
            reads_evidence = bool(macros.free_identifiers(esrc.text) & EVIDENCE_VARIABLES)
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
            if len(text.encode()) > macros.MAX_EXPANDED_BYTES:
                r = gmeta[spec["id"]].rule
                line, col, _ = r.positions.get("watch", (1, 1, False))
                errors.append(
                    f"{r.source}:{line}:{col}: rule `{r.id}`: watch, when and exceptions together are "
                    f"{len(text.encode())} bytes, more than {macros.MAX_EXPANDED_BYTES}"
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
