"""Rule packs refused precisely and fast (YAML limits, CEL limits), the pack JSON Schema
(generated from the loader, refusing what the loader refuses), and `rules check`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from referee.decision import rulepack as rp
from referee.decision.rulepack import schema as packschema
from tests.conftest import DEFAULT_RULES, REPO
from tests.decision.rulepacks import GOOD, PACK, WATCH, errors_of, write

BOMB = (
    "referee: 1\npack: t\nlists:\n  a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "rules: []\n"
)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("alias bomb", BOMB, "{p}:5:10: anchors and aliases are not allowed in rule packs"),
        ("duplicate key", GOOD + "    then: suppress\n", "{p}:9:5: duplicate key `then` in a rule"),
        (
            "broken pack",
            GOOD.replace("  - id: lat", "  - id: [lat"),
            "{p}:5:10: while parsing a flow sequence expected ',' or ']', but got ':'",
        ),
        (
            "unknown CEL field",
            GOOD.replace("baseline.upper", "baseline.uper"),
            "{p}:7:37: rule `lat` when: `baseline` has no field `uper`",
        ),
        (
            "runaway comprehension",
            GOOD.replace(
                "signal.observed > baseline.upper",
                "'[1,2].all(x, [1,2].all(y, [1,2].all(z, x + y + z > 0)))'",
            ),
            "{p}:7:47: rule `lat` when: comprehensions nest deeper than 2 levels",
        ),
        ("too deep", GOOD + "x: " + "[" * 40 + "]" * 40 + "\n", "{p}:9:"),
        ("too big", GOOD + "#" * (rp.MAX_FILE_BYTES + 1) + "\n", "{p}:1:1: file is "),
    ],
)
def test_bad_packs_are_refused_precisely_and_fast(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    p = write(tmp_path, text)
    started = time.perf_counter()
    errs = errors_of(p)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.25, f"{name} took {elapsed:.3f}s"
    assert errs[0].startswith(expected.format(p=p)), errs


# --- the JSON Schema ---------------------------------------------------------------------------


def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / "rulepack.v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_generated_from_the_loader() -> None:
    assert (REPO / "schemas" / "rulepack.v1.json").read_text() == packschema.render()
    s = packschema.rulepack_schema()
    assert s["$id"].endswith("/v1/rulepack.v1.json")
    assert set(s["properties"]) == rp.PACK_FIELDS
    assert set(s["$defs"]["rule"]["properties"]) == rp.RULE_FIELDS
    assert set(s["$defs"]["signal"]["properties"]) == rp.SIGNAL_FIELDS
    assert set(s["$defs"]["exception"]["properties"]) == rp.EXCEPTION_FIELDS
    assert set(s["$defs"]["effect"]["oneOf"][1]["properties"]) == rp.EFFECT_FIELDS


def test_every_shipped_pack_is_valid_against_the_schema(tmp_path: Path) -> None:
    v = schema_validator()
    packs = sorted(rp.pack_files([DEFAULT_RULES]))
    assert packs
    for p in packs:
        assert [e.message for e in v.iter_errors(yaml.safe_load(p.read_text()))] == [], p
    for text in (PACK, WATCH):
        assert [e.message for e in v.iter_errors(yaml.safe_load(text))] == []


@pytest.mark.parametrize(
    "change",
    [
        ("    then: confirm\n", "    then: approve\n"),
        ("    then: confirm\n", "    then: confirm\n    severty: high\n"),
        ("    then: confirm\n", ""),
        ("pack: t\n", "pack: t\nlists: {l: [a, 1]}\n"),
        ("    then: confirm\n", "    then: confirm\n    watch: 'true'\n"),
        ("    then: confirm\n", "    then: confirm\n    exceptions: [{name: x}]\n"),
        ("    then: confirm\n", "    then: confirm\n    protect: 'yes please'\n"),
    ],
)
def test_schema_and_loader_refuse_the_same_packs(tmp_path: Path, change: tuple[str, str]) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    assert list(schema_validator().iter_errors(yaml.safe_load(text))), text
    errors_of(write(tmp_path, text))


# --- rules check -------------------------------------------------------------------------------


def test_rules_check_prints_every_error(tmp_path: Path) -> None:
    a = write(tmp_path, GOOD, "a.yaml")
    b = write(
        tmp_path,
        GOOD.replace("pack: t\n", "pack: u\nlists: {x: [a]}\n") + "    otherwise: suppress\n",
        "b.yaml",
    )
    c = write(
        tmp_path, GOOD.replace("id: lat", "id: other").replace("match: ", "match: lists.nope || "), "c.yaml"
    )
    r = subprocess.run(
        [sys.executable, "-m", "referee", "rules", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert (
        f"{c}:5:12: rule `other` match: unknown list `nope` (this pack defines none; lists are pack-scoped)"
        in lines
    )
    assert f"{b}:5:9: duplicate rule id `lat` (first defined at {a}:4)" in lines
    assert len(lines) == 2
    ok = subprocess.run(
        [sys.executable, "-m", "referee", "rules", "check", str(a)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "1 rules in 1 files OK" in ok.stdout
