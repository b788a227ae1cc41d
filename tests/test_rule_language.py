"""The rule language: lists, macros, exceptions, protective rules, how effects combine, watch
rules and their findings, YAML limits, the pack JSON Schema, and `rules check`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from referee import _core
from referee.decision.rulepack import schema as packschema
from referee.decision import rulepack as rp
from referee.decision.decider import Decider, combine
from referee.decision.rulepack import Effect, Rule, RulePackError, load_rules
from referee.decision.watch import run_watch_rules
from referee.models import RuleTrace, Suggestion
from referee.verdicts.store import VerdictStore
from tests.conftest import DEFAULT_RULES, REPO
from tests.serve_process import referee_serve

T0 = 1_700_000_000_000  # ms


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def errors_of(*paths: Path) -> list[str]:
    with pytest.raises(RulePackError) as info:
        load_rules(list(paths))
    return info.value.errors


def suggestion(service: str, kind: str = "latency_high", **subject: str) -> Suggestion:
    return Suggestion.model_validate(
        {
            "id": f"s-{service}-{kind}",
            "created_at": datetime.fromtimestamp((T0 + 65 * 60_000) / 1000, tz=UTC).isoformat(),
            "subject": {"service.name": service, **subject},
            "claim": {"kind": kind},
        }
    )


def spiky_store() -> _core.SeriesStore:
    """`web` p99 jumps from 0.2 to 1.0 in the last five minutes; `db` stays at 0.2."""
    store = _core.SeriesStore()
    ts = [T0 + i * 60_000 for i in range(65)]
    store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 60 + [1.0] * 5)
    store.ingest_points("lat", "p99", {"service.name": "db"}, ts, [0.2] * 65)
    return store


# --- lists and macros --------------------------------------------------------------------------

PACK = """\
referee: 1
pack: t
lists:
  protected: [payments, "ledger"]
  windows: [300, 600]
macros:
  latency: suggestion.claim.kind == "latency_high"
  protected_latency: macros.latency && suggestion.subject["service.name"] in lists.protected
rules:
  - id: suppress-latency
    priority: 10
    match: macros.latency
    then: {verdict: suppress, reason: latency claims are noise}
  - id: protect-payments
    protect: true
    match: macros.protected_latency
    signal: {metric: lat, statistic: p99, window: 5m}
    when: signal.observed > baseline.upper && signal.window_s in lists.windows
    then: {verdict: confirm, reason: p99 above its band}
    exceptions:
      - name: maintenance
        when: '"maintenance" in suggestion.subject'
      - name: tiny
        when: signal.max < 0.001
"""


def test_lists_and_macros_are_inlined(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, PACK)])
    rule = loaded.by_id["protect-payments"]
    assert rule.expanded["match"] == (
        '((suggestion.claim.kind == "latency_high") && '
        'suggestion.subject["service.name"] in ["payments", "ledger"])'
    )
    assert rule.expanded["when"] == "signal.observed > baseline.upper && signal.window_s in [300, 600]"
    # What the author wrote is kept for tools that show it.
    assert rule.match == "macros.protected_latency"


def test_protective_rule_exceptions_and_missing_evidence(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, PACK)])
    store = spiky_store()
    decider = Decider(store, loaded)
    # Not protected: the priority-10 suppression decides.
    v = decider.decide(suggestion("web"))
    assert (v.verdict, v.rule_ids) == ("suppress", ["suppress-latency"])
    # Protected, no data: inconclusive on missing evidence, and it beats the suppression.
    v = decider.decide(suggestion("payments"))
    assert (v.verdict, v.rule_ids) == ("inconclusive", ["protect-payments"])
    trace = {t.rule_id: t for t in v.trace}
    assert trace["protect-payments"].protect is True and trace["protect-payments"].missing
    assert trace["suppress-latency"].effect == "suppress"
    # The exception about the suggestion alone applies even though the evidence is missing.
    v = decider.decide(suggestion("payments", maintenance="until 18:00"))
    assert (v.verdict, v.rule_ids) == ("suppress", ["suppress-latency"])
    trace = {t.rule_id: t for t in v.trace}
    assert trace["protect-payments"].exception == "maintenance"
    assert trace["protect-payments"].effect is None


def test_protective_confirm_with_evidence_and_evidence_exception(tmp_path: Path) -> None:
    text = PACK.replace('[payments, "ledger"]', "[web]")
    loaded = load_rules([write(tmp_path, text)])
    v = Decider(spiky_store(), loaded).decide(suggestion("web"))
    assert (v.verdict, v.rule_ids) == ("confirm", ["protect-payments"])
    assert v.evidence.observed == pytest.approx(1.0)
    # An exception on the evidence: with the threshold above the data it holds.
    loaded = load_rules([write(tmp_path, text.replace("signal.max < 0.001", "signal.max < 5.0"))])
    v = Decider(spiky_store(), loaded).decide(suggestion("web"))
    assert v.verdict == "suppress"
    assert {t.rule_id: t.exception for t in v.trace}["protect-payments"] == "tiny"


def test_string_literals_are_not_expanded(tmp_path: Path) -> None:
    text = PACK.replace("match: macros.latency\n", "match: 'suggestion.summary == \"lists.nope macros.x\"'\n")
    loaded = load_rules([write(tmp_path, text)])
    assert loaded.by_id["suppress-latency"].expanded["match"] == 'suggestion.summary == "lists.nope macros.x"'


def test_unknown_list_and_macro_have_locations(tmp_path: Path) -> None:
    text = PACK.replace("in lists.windows", "in lists.windowz").replace(
        "match: macros.latency\n", "match: macros.latncy\n"
    )
    p = write(tmp_path, text)
    errs = errors_of(p)
    assert (
        f"{p}:12:12: rule `suppress-latency` match: unknown macro `latncy` "
        "(this pack defines: latency, protected_latency; macros are pack-scoped)" in errs
    )
    assert any(
        e.startswith(f"{p}:18:66: rule `protect-payments` when: unknown list `windowz`") for e in errs
    ), errs


def test_lists_and_macros_are_pack_scoped(tmp_path: Path) -> None:
    write(tmp_path, PACK, "a.yaml")
    other = write(
        tmp_path,
        """\
        referee: 1
        pack: other
        rules:
          - id: other
            match: macros.latency
            then: confirm
        """,
        "b.yaml",
    )
    (err,) = errors_of(tmp_path)
    assert err.startswith(
        f"{other}:5:12: rule `other` match: unknown macro `latency` (this pack defines none"
    )


def test_macro_cycles_and_depth_are_refused(tmp_path: Path) -> None:
    cyc = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        macros:
          a: macros.b || true
          b: macros.a
        rules:
          - {id: r, match: macros.a, then: confirm}
        """,
    )
    errs = errors_of(cyc)
    assert errs == [f"{cyc}:5:6: macro `b`: macros refer to each other in a cycle: a -> b -> a"]
    chain = "\n".join(f"  m{i}: macros.m{i + 1}" for i in range(12))
    deep = write(
        tmp_path,
        f"referee: 1\npack: t\nmacros:\n{chain}\n  m12: 'true'\n"
        "rules:\n  - {id: r, match: macros.m0, then: confirm}\n",
        "deep.yaml",
    )
    (err,) = errors_of(deep)
    assert "macros nest deeper than 8 levels" in err and err.startswith(f"{deep}:11:")


def test_errors_inside_a_macro_point_at_the_macro(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        PACK.replace('suggestion.claim.kind == "latency_high"', "suggestion.claim.knd == 'latency_high'"),
    )
    errs = errors_of(p)
    # Reported once, at the macro's text, although two rules and an exception use it.
    assert errs == [
        f"{p}:7:28: rule `suppress-latency` macro `latency`: `suggestion.claim` has no field `knd` "
        "(fields: kind, signal, statistic, direction, observed, unit, window)",
        f"{p}:7:28: rule `protect-payments` macro `latency`: `suggestion.claim` has no field `knd` "
        "(fields: kind, signal, statistic, direction, observed, unit, window)",
    ]


def test_bad_lists_and_misused_namespaces(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        lists:
          mixed: [a, 1]
          nested: [[a]]
          flag: [true]
        rules:
          - {id: r, match: lists == 1, then: confirm}
        """,
    )
    errs = errors_of(p)
    assert f"{p}:4:10: list `mixed` mixes strings and numbers" in errs
    assert f"{p}:5:12: list `nested`: items must be strings or numbers" in errs
    assert f"{p}:6:10: list `flag`: items must be strings or numbers" in errs
    assert f"{p}:8:20: rule `r` match: `lists` must be followed by `.<name>`, e.g. `lists.example`" in errs


# --- how effects combine -----------------------------------------------------------------------


def eff(rid: str, verdict: str, priority: int = 0, mode: str = "enforce", protect: bool = False):  # type: ignore[no-untyped-def]
    rule = Rule(id=rid, pack="p", source="s", mode=mode, priority=priority, protect=protect)
    trace = RuleTrace(rule_id=rid, mode=mode, priority=priority, matched=True)  # type: ignore[arg-type]
    return (rule, trace, Effect(verdict))


def decided(*effects):  # type: ignore[no-untyped-def]
    verdict, chosen, mode = combine(list(effects))
    return verdict, [r.id for r, _, _ in chosen], mode


@pytest.mark.parametrize(
    ("effects", "expected"),
    [
        # No effect at all: the caller says "no rule judges this claim".
        ((), (None, [], "enforce")),
        # Only the highest priority counts, whatever the verdicts.
        ((eff("c", "confirm", 1), eff("s", "suppress", 5)), ("suppress", ["s"], "enforce")),
        # Same priority: confirm > inconclusive > suppress.
        ((eff("s", "suppress"), eff("c", "confirm")), ("confirm", ["c"], "enforce")),
        ((eff("s", "suppress"), eff("i", "inconclusive")), ("inconclusive", ["i"], "enforce")),
        ((eff("i", "inconclusive"), eff("c", "confirm")), ("confirm", ["c"], "enforce")),
        ((eff("s1", "suppress"), eff("s2", "suppress")), ("suppress", ["s1", "s2"], "enforce")),
        # Shadow rules decide only when no enforce rule has an effect.
        ((eff("sh", "confirm", 9, "shadow"), eff("s", "suppress")), ("suppress", ["s"], "enforce")),
        ((eff("sh", "confirm", 0, "shadow"),), ("confirm", ["sh"], "shadow")),
        # Protective confirm or inconclusive drops every suppression, whatever its priority.
        ((eff("p", "confirm", 0, protect=True), eff("s", "suppress", 99)), ("confirm", ["p"], "enforce")),
        (
            (eff("p", "inconclusive", 0, protect=True), eff("s", "suppress", 99)),
            ("inconclusive", ["p"], "enforce"),
        ),
        # ... but not the other effects' priorities.
        (
            (eff("p", "inconclusive", 0, protect=True), eff("c", "confirm", 5), eff("s", "suppress", 9)),
            ("confirm", ["c"], "enforce"),
        ),
        # A protective rule's own suppression protects nothing.
        ((eff("p", "suppress", 0, protect=True), eff("c", "confirm", -1)), ("suppress", ["p"], "enforce")),
        # A shadow protective rule does not change an enforced suppression.
        ((eff("p", "confirm", 0, "shadow", True), eff("s", "suppress")), ("suppress", ["s"], "enforce")),
    ],
)
def test_combination(effects: tuple, expected: tuple) -> None:
    assert decided(*effects) == expected


def test_off_rules_are_skipped_and_shadow_marks_the_verdict(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        rules:
          - {id: off-confirm, mode: "off", match: "true", then: confirm}
          - {id: shadow-suppress, mode: shadow, match: "true", then: suppress}
        """,
    )
    v = Decider(_core.SeriesStore(), load_rules([p])).decide(suggestion("web"))
    assert (v.verdict, v.mode, v.rule_ids) == ("suppress", "shadow", ["shadow-suppress"])
    assert [t.rule_id for t in v.trace] == ["shadow-suppress"]


# --- watch rules and findings ------------------------------------------------------------------

WATCH = """\
referee: 1
pack: w
lists:
  ignored: [batch]
rules:
  - id: lat.watch
    severity: critical
    watch: '!(series["service.name"] in lists.ignored)'
    signal: {metric: lat, statistic: p99, window: 5m}
    when: baseline.max_point_score > 0.75 && signal.observed > baseline.upper
    exceptions:
      - {name: small, when: signal.observed < 0.05}
"""


def test_watch_rules_raise_deduplicate_and_close_findings(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, WATCH)])
    assert [r.id for r in loaded.rules] == ["lat.watch"] and len(loaded.compiled) == 0
    store = spiky_store()
    verdicts = VerdictStore(":memory:")
    first = run_watch_rules(loaded, store, verdicts)
    assert (first.series, first.raised, first.closed) == (2, 1, 0)
    (f,) = verdicts.findings()
    assert (f.rule_id, f.subject, f.severity, f.metric, f.statistic) == (
        "lat.watch",
        {"service.name": "web"},
        "critical",
        "lat",
        "p99",
    )
    assert f.observed is not None and f.band is not None and f.observed > f.band.upper
    assert f.observed == pytest.approx(1.0)
    assert f.window_end == datetime.fromtimestamp((T0 + 64 * 60_000) / 1000, tz=UTC)
    assert f.closed_at is None and f.rules_revision == loaded.revision
    # Still holding: no second finding.
    assert run_watch_rules(loaded, store, verdicts).raised == 0
    assert len(verdicts.findings()) == 1
    # Back to normal for a whole window: closed.
    ts = [T0 + i * 60_000 for i in range(65, 75)]
    store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 10)
    assert run_watch_rules(loaded, store, verdicts).closed == 1
    (f2,) = verdicts.findings(service="web")
    assert f2.finding_id == f.finding_id and f2.closed_at is not None
    assert verdicts.findings(service="db") == []
    assert verdicts.findings(since=f.found_at + timedelta(seconds=1)) == []
    assert len(verdicts.findings(since=f.found_at, until=f.found_at + timedelta(seconds=1))) == 1
    verdicts.close()


def test_watch_selector_and_exceptions_hold_back_findings(tmp_path: Path) -> None:
    store = spiky_store()
    verdicts = VerdictStore(":memory:")
    ignored = load_rules([write(tmp_path, WATCH.replace("[batch]", "[web]"))])
    assert run_watch_rules(ignored, store, verdicts).raised == 0
    excepted = load_rules([write(tmp_path, WATCH.replace("< 0.05", "< 5.0"))])
    assert run_watch_rules(excepted, store, verdicts).raised == 0
    shadow = load_rules([write(tmp_path, WATCH.replace("severity: critical", "mode: shadow"))])
    assert run_watch_rules(shadow, store, verdicts).raised == 0
    assert verdicts.findings() == []
    verdicts.close()


def test_watch_rule_errors(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: w
        rules:
          - id: a
            watch: suggestion.id == "x"
            signal: {metric: lat, statistic: p99}
            when: "true"
            then: confirm
          - id: b
            watch: "true"
        """,
    )
    errs = errors_of(p)
    assert (
        f"{p}:5:12: rule `a` watch: watch rules have no `suggestion`; use `series`, `signal` and `baseline`"
        in errs
    )
    assert f"{p}:8:5: rule `a`: a watch rule raises findings; it has no `then`" in errs
    assert f"{p}:9:5: rule `b`: a watch rule needs a `signal` (the metric whose series it watches)" in errs
    assert f"{p}:9:5: rule `b`: a watch rule needs a `when` (the condition that raises a finding)" in errs


def test_findings_api(tmp_path: Path) -> None:
    import httpx

    from referee.config import Settings
    from referee.demo.run import BackgroundServer, free_port
    from referee.service.runtime import Runtime

    pack = write(tmp_path, WATCH)
    settings = Settings.load(
        env={},
        database=tmp_path / "r.db",
        port=free_port(),
        rules=[pack],
        watch_interval_s=0.0,
        grpc_port=None,
    )
    rt = Runtime(settings, load_plugins=False)
    try:
        ts = [T0 + i * 60_000 for i in range(65)]
        rt.store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 60 + [1.0] * 5)
        assert rt.run_watch().raised == 1
        with BackgroundServer(rt, settings.port) as srv:
            body = httpx.get(f"{srv.url}/api/v1/findings", params={"service": "web"}).json()
            assert [f["rule_id"] for f in body["findings"]] == ["lat.watch"]
            assert httpx.get(f"{srv.url}/api/v1/findings", params={"service": "db"}).json() == {
                "findings": []
            }
            r = httpx.get(f"{srv.url}/api/v1/findings", params={"since": "yesterday"})
            assert r.status_code == 400 and "since/until" in r.json()["error"]
            rules = httpx.get(f"{srv.url}/api/v1/rules").json()
            assert rules["reload_failures_total"] == 0
            assert rules["rules"][0]["kind"] == "watch"
    finally:
        rt.close()


# --- YAML limits: refused precisely and fast ---------------------------------------------------


GOOD = """\
referee: 1
pack: t
rules:
  - id: lat
    match: suggestion.claim.kind == "latency_high"
    signal: {metric: http.server.request.duration, statistic: p99, window: 10m}
    when: signal.observed > baseline.upper
    then: confirm
"""
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


# --- hot reload in `referee serve` -------------------------------------------------------------


def test_serve_reloads_rules_when_files_change(tmp_path: Path) -> None:

    import httpx

    rules = tmp_path / "rules"
    rules.mkdir()
    pack = write(rules, GOOD)

    def until(check, what: str) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                body = httpx.get(url).json()
                if check(body):
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")

    env = {"REFEREE_RULES_WATCH_INTERVAL_S": "0.2"}
    with referee_serve(tmp_path, rules, env=env, log_level="info") as served:
        url = f"{served.url}/api/v1/rules"
        first = until(lambda b: True, "referee serve")
        assert first["last_error"] is None and [r["id"] for r in first["rules"]] == ["lat"]
        # An edit loads a new revision.
        pack.write_text(GOOD.replace("id: lat", "id: lat2"))
        second = until(lambda b: b["revision"] != first["revision"], "the edit to load")
        assert [r["id"] for r in second["rules"]] == ["lat2"] and second["last_error"] is None
        # A broken edit keeps the running revision and says where the problem is.
        pack.write_text(GOOD.replace("id: lat", "id: lat2").replace("baseline.upper", "baseline.uper"))
        broken = until(lambda b: b["last_error"] is not None, "the broken edit to be refused")
        assert broken["revision"] == second["revision"] and broken["reload_failures_total"] == 1
        assert broken["last_error"].startswith(
            f"{pack}:7:37: rule `lat2` when: `baseline` has no field `uper`"
        )
        # A new file is noticed too; fixing the pack reloads everything at once.
        write(rules, GOOD.replace("id: lat", "id: extra"), "extra.yaml")
        pack.write_text(GOOD)
        fixed = until(lambda b: b["last_error"] is None and len(b["rules"]) == 2, "the fix to load")
        assert sorted(r["id"] for r in fixed["rules"]) == ["extra", "lat"]
        assert fixed["revision"] not in (first["revision"], second["revision"])
        # The new file may have been seen alone, beside the still broken pack: one more failure.
        assert fixed["reload_failures_total"] in (1, 2)
    out = served.output
    assert "rule reload failed; keeping revision" in out and f"{pack}:7:37:" in out
