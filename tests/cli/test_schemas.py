"""The published JSON Schemas: committed copies match the models, and the documented examples
(and real documents) validate against them with an independent validator (jsonschema)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from referee.cli import app
from referee.models import Suggestion, Verdict
from referee.schemas import SCHEMAS, file_name, render

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "schemas" / file_name(name)).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.v1.example.json").read_text())


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (REPO / "schemas" / file_name(name)).read_text()
    assert committed == render(name), (
        f"schemas/{file_name(name)} is stale: run `referee schema {name} --out schemas`"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_versioned(name: str) -> None:
    schema = json.loads((REPO / "schemas" / file_name(name)).read_text())
    assert "/v1/" in schema["$id"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cli_prints_and_writes(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["schema", "verdict"])
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(render("verdict"))
    r = CliRunner().invoke(app, ["schema", "suggestion", "--out", str(tmp_path)])
    assert r.exit_code == 0
    assert (tmp_path / "suggestion.v1.json").read_text() == render("suggestion")
    r = CliRunner().invoke(app, ["schema", "scorecard"])
    assert r.exit_code == 2 and "unknown schema" in r.output


def test_examples_validate_against_schema_and_model() -> None:
    validator("suggestion").validate(example("suggestion"))
    validator("verdict").validate(example("verdict"))
    Suggestion.model_validate(example("suggestion"))
    Verdict.model_validate(example("verdict"))


def test_verdict_without_lifecycle_fields_is_still_valid() -> None:
    """Old clients and stored verdicts from before `status`/`version` keep working."""
    old = example("verdict")
    for key in ("status", "version", "settles_at"):
        old.pop(key)
    validator("verdict").validate(old)
    v = Verdict.model_validate(old)
    assert (v.status, v.version) == ("settled", 1)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("claim", "kind"), "cpu_high", "is not one of"),
        (("id",), "", "should be non-empty"),
        (("subject",), {}, "should be non-empty"),
        (("confidence",), 1.5, "not valid under any of the given schemas"),
        (("surprise",), 1, "Additional properties"),
    ],
)
def test_bad_suggestions_are_refused_by_the_schema(path: tuple[str, ...], value: Any, message: str) -> None:
    doc = copy.deepcopy(example("suggestion"))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=message):
        validator("suggestion").validate(doc)
    with pytest.raises(ValueError):
        Suggestion.model_validate(doc)


def test_a_bad_verdict_status_is_refused() -> None:
    doc = example("verdict")
    doc["status"] = "open"
    with pytest.raises(jsonschema.ValidationError, match="is not one of"):
        validator("verdict").validate(doc)


def test_real_verdicts_validate(runtime: Any) -> None:
    """What the engine produces (not only the hand-written example) matches the schema."""
    verdict, _ = runtime.submit(Suggestion.model_validate(example("suggestion")))
    validator("verdict").validate(verdict.model_dump(mode="json"))
