"""The published JSON Schemas of Suggestion v1 and Verdict v1, generated from the pydantic models.

The committed copies in ``schemas/`` are what other systems validate against; they are written
by ``referee schema <name> --out schemas/`` and a test fails when they drift from the models, so
the models stay the single source of truth.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from referee.decision.ruletest import RuleTestFile
from referee.models import Suggestion, Verdict

#: Identifiers only (not necessarily resolvable); the ``/v1/`` segment is the schema's major version.
BASE_ID = "https://referee.dev/schemas/v1/"

#: Suggestions are validated on the way in, verdicts are serialised on the way out.
SCHEMAS: dict[str, tuple[type[BaseModel], Literal["validation", "serialization"], str]] = {
    "suggestion": (Suggestion, "validation", "Suggestion v1: one claim from a copilot or alert source."),
    "verdict": (Verdict, "serialization", "Verdict v1: Referee's opinion on one suggestion."),
    "ruletest": (RuleTestFile, "validation", "Rule test v1: input series, suggestions, expected verdicts."),
}


def file_name(name: str) -> str:
    return f"{name}.v1.json"


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one document type; ``name`` is a key of ``SCHEMAS``."""
    try:
        model, mode, title = SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMAS)}") from None
    body = model.model_json_schema(mode=mode)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE_ID + file_name(name),
        **body,
        "description": title,
    }


def render(name: str) -> str:
    """The schema as committed: two-space indented JSON with a final newline."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"
