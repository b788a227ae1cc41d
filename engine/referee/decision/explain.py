"""``referee rules explain``: why a suggestion got its verdict, rule by rule.

An explanation is a Verdict v1 (with its full trace) plus what the loaded rules say: each rule's
conditions and effects, so a reader sees the condition text next to the value it had. The same
document comes from ``POST /api/v1/explain`` of a running service (decided without storing)
and from a rule-test file's input series replayed locally; ``render`` prints it as tables.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from referee.decision.decider import fmt
from referee.decision.rulepack import LoadedRules, Rule
from referee.errors import InvalidInputError
from referee.models import RuleTrace, Verdict

#: Numbers shown for a rule's signal and baseline, in this order (the rest follow as they come).
SIGNAL_KEYS = (
    "metric",
    "statistic",
    "series",
    "observed",
    "samples",
    "window_s",
    "mean",
    "min",
    "max",
    "last",
)
BASELINE_KEYS = (
    "expected",
    "lower",
    "upper",
    "sigma",
    "z",
    "score",
    "raw_score",
    "max_point_score",
    "max_raw_score",
    "ratio",
    "model",
    "history",
    "freshness_s",
)


def _effect(effect: Any) -> dict[str, Any] | None:
    if effect is None:
        return None
    return (
        asdict(effect) if is_dataclass(effect) and not isinstance(effect, type) else {"verdict": str(effect)}
    )


def rule_document(rule: Rule) -> dict[str, Any]:
    """What an explanation shows of a rule's definition (its source of truth is the pack)."""
    out: dict[str, Any] = {
        "id": rule.id,
        "pack": rule.pack,
        "source": rule.source,
        "title": rule.title,
        "severity": rule.severity,
        "mode": rule.mode,
        "priority": rule.priority,
        "kind": getattr(rule, "kind", "suggestion"),
        "protect": getattr(rule, "protect", False),
        "match": rule.match,
        "when": rule.when,
        "then": _effect(rule.then),
        "otherwise": _effect(rule.otherwise),
        "signal": rule.signal,
    }
    exceptions = getattr(rule, "exceptions", None)
    if exceptions:
        out["exceptions"] = [
            asdict(x) if is_dataclass(x) and not isinstance(x, type) else x for x in exceptions
        ]
    return out


def explanation(verdict: Verdict, rules: LoadedRules) -> dict[str, Any]:
    """The explanation document: ``{"verdict": Verdict v1, "rules": [rule definitions]}``."""
    return {
        "verdict": verdict.model_dump(mode="json"),
        "rules": [rule_document(r) for r in rules.rules if getattr(r, "kind", "suggestion") == "suggestion"],
    }


# --- rendering --------------------------------------------------------------------------------

_COLOURS = {"confirm": "green", "suppress": "yellow", "inconclusive": "magenta"}


def _num(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "n/a"
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or "{}"
    return str(v)


def _bool(v: bool | None) -> Text:
    if v is None:
        return Text("–", style="dim")
    return Text(str(v).lower(), style="bold" if v else "")


def _verdict_text(v: str | None) -> Text:
    if v is None:
        return Text("no effect", style="dim")
    return Text(v, style=_COLOURS.get(v, ""))


def _numbers(title: str, data: dict[str, Any], keys: tuple[str, ...]) -> Tree:
    tree = Tree(Text(title, style="bold"))
    for k in (*[k for k in keys if k in data], *sorted(k for k in data if k not in keys)):
        tree.add(f"{k}: {_num(data[k])}")
    return tree


def _ms(v: Any) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(v / 1000, tz=UTC).isoformat().replace("+00:00", "Z") if v else "n/a"


def _condition(tree: Tree, name: str, text: str | None, value: bool | None) -> None:
    if text is None:
        return
    tree.add(Text.assemble((f"{name}: ", "bold"), (text, "cyan"), "  →  ", _bool(value)))


def render(doc: dict[str, Any], console: Console) -> None:
    """Prints an explanation document: the verdict, a table of every rule, then per rule its
    conditions with their values and the numbers its signal and baseline gave."""
    verdict = Verdict.model_validate(doc["verdict"])
    defs = {r["id"]: r for r in doc.get("rules", [])}
    console.print(
        Text.assemble(
            ("verdict ", "bold"),
            _verdict_text(verdict.verdict),
            f"  mode {verdict.mode}  rules {', '.join(verdict.rule_ids) or '–'}",
            f"  revision {verdict.rules_revision}",
        )
    )
    console.print(Text(verdict.explanation))

    table = Table(title="Rules considered", title_justify="left")
    for col in ("rule", "mode", "priority", "matched", "when", "effect", "why"):
        table.add_column(col, overflow="fold")
    traced = {t.rule_id for t in verdict.trace}
    for t in verdict.trace:
        why = f"missing: {t.missing}" if t.missing else f"error: {t.error}" if t.error else t.reason or ""
        extra = _trace_extras(t)
        if extra:
            why = "; ".join(x for x in (why, extra) if x)
        table.add_row(
            t.rule_id, t.mode, str(t.priority), _bool(t.matched), _bool(t.when), _verdict_text(t.effect), why
        )
    for rid, d in defs.items():
        if rid not in traced:  # `mode: off` rules are skipped before evaluation
            table.add_row(
                rid, d.get("mode", ""), str(d.get("priority", "")), "–", "–", Text("skipped", style="dim")
            )
    console.print(table)

    for t in verdict.trace:
        d = defs.get(t.rule_id, {})
        tree = Tree(Text.assemble((t.rule_id, "bold"), f"  ({d.get('pack', '?')}, {d.get('source', '?')})"))
        _condition(tree, "match", d.get("match"), t.matched)
        if t.matched:
            _condition(tree, "when", d.get("when"), t.when)
        for x in d.get("exceptions") or []:
            tree.add(
                Text.assemble(("exception ", "bold"), f"{x.get('name')}: ", (str(x.get("when")), "cyan"))
            )
        for name in ("then", "otherwise"):
            if d.get(name):
                e = d[name]
                tree.add(
                    Text.assemble(
                        (f"{name}: ", "bold"), e["verdict"], f" ({e['reason']})" if e.get("reason") else ""
                    )
                )
        tree.add(Text.assemble(("effect: ", "bold"), _verdict_text(t.effect)))
        if t.signal:
            sig = dict(t.signal)
            for k in ("start_ms", "end_ms"):
                if k in sig:
                    sig[k.replace("_ms", "")] = _ms(sig.pop(k))
            tree.add(_numbers("signal", sig, SIGNAL_KEYS))
        if t.baseline:
            tree.add(_numbers("baseline", t.baseline, BASELINE_KEYS))
        console.print(tree)


def _trace_extras(t: RuleTrace) -> str:
    """Fields other parts of Referee add to a rule's trace entry (exceptions, protection...)."""
    known = {
        "rule_id",
        "mode",
        "priority",
        "matched",
        "when",
        "effect",
        "reason",
        "missing",
        "error",
        "signal",
        "baseline",
    }
    extra = {k: v for k, v in t.model_dump(exclude_none=True).items() if k not in known}
    return ", ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in extra.items())


# --- where the data comes from ------------------------------------------------------------------


class ExplainError(InvalidInputError):
    """The explanation cannot be produced (bad input, service unreachable...)."""


def from_test_file(
    path: Any,
    suggestion: dict[str, Any] | None,
    *,
    case: int | None = None,
    at: str | None = None,
    rules: list[Any] | None = None,
) -> dict[str, Any]:
    """Decides ``suggestion`` (or the file's case ``case``) on a rule-test file's input series.

    The time is the suggestion's ``created_at``, else ``at`` (an offset from the file's
    ``start`` or RFC 3339), else the case's ``at``, else the last input sample: the series get
    their points up to then, exactly as ``referee rules test`` feeds them."""
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from referee.decision import ruletest
    from referee.decision.decider import Decider
    from referee.decision.rulepack import RulePackError, load_rules
    from referee.durations import parse_duration
    from referee.models import Suggestion
    from referee.plugins import plugin_manager, rule_functions
    from referee.state import open_store

    tf = ruletest.read_test_file(path)
    settings = ruletest.settings_for(tf)
    if rules:
        settings.rules = list(rules)
    try:
        loaded = load_rules(settings.rules, settings.min_history, rule_functions(plugin_manager()))
    except RulePackError as e:
        raise ExplainError("the rule packs have errors:\n" + "\n".join(e.errors)) from None
    series = ruletest.build_series(tf)
    when: datetime | None = None
    if case is not None:
        if not 0 <= case < len(tf.doc.suggestions):
            raise ExplainError(
                f"{path} has {len(tf.doc.suggestions)} cases (0..{len(tf.doc.suggestions) - 1})"
            )
        s = ruletest.suggestion_for(tf, case)
        when = s.created_at
    if suggestion is not None:
        try:
            s = Suggestion.model_validate(suggestion)
        except ValidationError as e:
            details = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors(include_url=False)
            )
            raise ExplainError(f"not a valid Suggestion v1: {details}") from None
        when = s.created_at if "created_at" in suggestion else when
    elif case is None:
        raise ExplainError("give a suggestion (--suggestion FILE or JSON on stdin) or --case N")
    if at is not None:
        try:
            start = datetime.fromtimestamp(ruletest.start_ms(tf) / 1000, tz=UTC)
            when = start + timedelta(seconds=parse_duration(at))
        except ValueError:
            try:
                when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise ExplainError(f"--at `{at}` is neither a duration from the start nor RFC 3339") from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when is None:
        last = max((x.timestamps_ms[-1] for x in series if x.timestamps_ms), default=ruletest.start_ms(tf))
        when = datetime.fromtimestamp(last / 1000, tz=UTC)
    s = s.model_copy(update={"created_at": when})
    store = open_store(settings)
    ruletest.feed_until(store, series, int(when.timestamp() * 1000))
    return explanation(Decider(store, loaded).decide(s, when), loaded)


def from_service(url: str, suggestion: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Asks a running ``referee serve`` (``POST /api/v1/explain``): decided, not stored."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url.rstrip("/") + "/api/v1/explain",
        data=json.dumps(suggestion).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            problem = json.loads(body)
            message = problem.get("error", body)
            if problem.get("details"):
                message += ": " + "; ".join(f"{d['loc']}: {d['msg']}" for d in problem["details"])
        except (ValueError, AttributeError):
            message = body
        raise ExplainError(f"{url} answered {e.code}: {message}") from None
    except (urllib.error.URLError, OSError) as e:
        raise ExplainError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
