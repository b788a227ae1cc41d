"""The published JSON Schema of rule pack v1, generated from the loader's own field lists.

``schemas/rulepack.v1.json`` is this module's output (``python -m referee.decision.rulepack.schema >
schemas/rulepack.v1.json``); a test fails when the file drifts, and every field the loader
accepts must have a schema entry here (a missing one is a KeyError at generation), so editors
and the loader agree on fields. The schema checks shape only: CEL, references to lists and
macros, and id uniqueness across packs are the loader's (``referee rules check``).

Editors using yaml-language-server pick it up from the first line of a pack::

    # yaml-language-server: $schema=../schemas/rulepack.v1.json
"""

from __future__ import annotations

import json
from typing import Any

from referee.decision.rulepack import model as rp
from referee.durations import PATTERN as DURATION_PATTERN

SCHEMA_ID = "https://referee.dev/schemas/v1/rulepack.v1.json"

_CEL = {"type": "string", "minLength": 1, "maxLength": 4096, "description": "A CEL condition."}
_NAME = {"type": "string", "pattern": rp._NAME.pattern}
_EFFECT_OBJECT: dict[str, Any] = {
    "verdict": {"enum": list(rp.VERDICTS)},
    "reason": {"type": "string", "description": "Ends the verdict's explanation."},
}


def _effect() -> dict[str, Any]:
    return {"oneOf": [{"enum": list(rp.VERDICTS)}, _object(rp.EFFECT_FIELDS, _EFFECT_OBJECT, ["verdict"])]}


_PACK: dict[str, Any] = {
    "referee": {"const": 1, "description": "The rule pack format version."},
    "pack": {"type": "string", "minLength": 1, "description": "The pack's name."},
    "description": {"type": "string"},
    "lists": {
        "type": "object",
        "description": "Named lists of strings or of numbers, used as `lists.<name>` (pack-scoped).",
        "propertyNames": _NAME,
        "additionalProperties": {
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "number"}},
            ]
        },
    },
    "macros": {
        "type": "object",
        "description": "Named CEL fragments, used as `macros.<name>` (pack-scoped).",
        "propertyNames": _NAME,
        "additionalProperties": _CEL,
    },
    "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
}

_RULE: dict[str, Any] = {
    "id": {"type": "string", "pattern": rp._ID.pattern, "description": "Unique across every loaded pack."},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "severity": {"enum": list(rp.SEVERITIES), "default": "warning"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "mode": {"enum": list(rp.MODES), "default": "enforce"},
    "priority": {"type": "integer", "default": 0},
    "match": {**_CEL, "description": "CEL over `suggestion`: does this rule judge this suggestion?"},
    "watch": {
        **_CEL,
        "description": "A watch rule's series selector: CEL over `series`, `signal`, `baseline`.",
    },
    "signal": {"$ref": "#/$defs/signal"},
    "baseline": {"$ref": "#/$defs/baseline"},
    "when": _CEL,
    "then": {"$ref": "#/$defs/effect"},
    "otherwise": {"$ref": "#/$defs/effect"},
    "exceptions": {"type": "array", "items": {"$ref": "#/$defs/exception"}},
    "protect": {
        "type": "boolean",
        "default": False,
        "description": "This rule's confirm or inconclusive can never be overridden by a suppression.",
    },
}

_SIGNAL: dict[str, Any] = {
    "metric": {
        "type": "string",
        "minLength": 1,
        "description": "Metric name, or `$claim.metric` (the claimed metric; `$claim.signal` is its "
        "deprecated spelling).",
    },
    "statistic": {"type": "string", "minLength": 1, "default": "value"},
    "window": {"type": "string", "pattern": DURATION_PATTERN, "default": "5m"},
    "points": {
        "type": "integer",
        "minimum": 1,
        "description": (
            "The last N points up to created_at, whatever their spacing; with `window`, only those inside it."
        ),
    },
    "agg": {"enum": list(rp.AGGREGATIONS), "default": "mean"},
    "optional": {
        "type": "boolean",
        "default": False,
        "description": (
            "No effect at all (instead of inconclusive) when no series matches the signal and subject."
        ),
    },
    "where": {
        **_CEL,
        "description": (
            "CEL over `series` (the candidate series' attributes) and `suggestion`: only series for "
            "which it is true are read, e.g. series['cpu'] == 'total'."
        ),
    },
}
_BASELINE: dict[str, Any] = {
    "model": {
        "enum": list(rp.BASELINE_MODELS),
        "default": "auto",
        "description": (
            "Which baselines may judge the window's points: auto (whichever did), fitted "
            "(statsmodels.*), streaming (streaming.*) or one model by name."
        ),
    },
    "k": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 100,
        "description": "The band's half-width in sigmas for this rule (baseline.lower/upper).",
    },
    "min_history": {"type": "integer", "minimum": 0},
}
_EXCEPTION: dict[str, Any] = {"name": {"type": "string", "pattern": rp._ID.pattern}, "when": _CEL}


def _object(fields: set[str], props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        # Every field the loader accepts, in a stable order; a field without an entry fails here.
        "properties": {name: props[name] for name in sorted(fields)},
    }


def rulepack_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rule pack v1 file."""
    extra = set(_PACK) - rp.PACK_FIELDS | set(_RULE) - rp.RULE_FIELDS
    if extra:
        raise KeyError(f"schema entries for fields the loader does not accept: {sorted(extra)}")
    rule = _object(rp.RULE_FIELDS, _RULE, ["id"])
    rule["oneOf"] = [
        {"required": ["match", "then"], "not": {"required": ["watch"]}},
        {
            "required": ["watch", "signal", "when"],
            "not": {"anyOf": [{"required": [f]} for f in ("match", "then", "otherwise", "protect")]},
        },
    ]
    rule["dependentRequired"] = {"baseline": ["signal"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Referee rule pack v1",
        "description": "A YAML file of rules that judge copilot suggestions (see docs/rules.md).",
        **_object(rp.PACK_FIELDS, _PACK, ["referee", "pack", "rules"]),
        "$defs": {
            "rule": rule,
            "signal": _object(rp.SIGNAL_FIELDS, _SIGNAL, ["metric"]),
            "baseline": _object(rp.BASELINE_FIELDS, _BASELINE, []),
            "exception": _object(rp.EXCEPTION_FIELDS, _EXCEPTION, ["name", "when"]),
            "effect": _effect(),
        },
    }


def render() -> str:
    """The schema as committed: two-space indented JSON with a final newline."""
    return json.dumps(rulepack_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
