"""Commands over recorded history: ``referee replay``, ``referee report``, ``referee scorecard``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from referee.cli.app import ConfigOpt, DatabaseOpt, SinceOpt, ToleranceOpt, UntilOpt, app

if TYPE_CHECKING:
    from referee.verdicts.store import VerdictStore


@app.command()
def replay(
    series: Annotated[
        list[Path],
        typer.Argument(help="Series files: CSV (timestamp,value[,metric][,attrs]) or OTLP/JSON lines."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    suggestions: Annotated[
        Path | None, typer.Option(help="Suggestion v1 JSON lines, each decided at its created_at.")
    ] = None,
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", "-r", help="Rule pack file or directory (repeatable).")
    ] = None,
    metric: Annotated[str, typer.Option(help="Metric name for CSV files without a metric column.")] = "value",
    attribute: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE for CSV files without attribute columns (repeatable)."),
    ] = None,
    fits: Annotated[
        bool,
        typer.Option(
            help="Seasonal (statsmodels) fits of the series decisions read, refitted every "
            "baselines.refit_every of the data's time, as serve does; --no-fits keeps the "
            "streaming baselines only."
        ),
    ] = True,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels to score the verdicts against: NAB-style windows (JSON "
            '{"file.csv": [["start","end"],...]}) or per-row labels (CSV timestamp,label 0/1). '
            "A claim is true when its created_at falls in a labelled window. Writes "
            "OUT/scores.json: precision (confirmed claims that are true), recall (labelled "
            "windows with a claim that got a confirmed one), retention (true claims confirmed "
            "or inconclusive), suppression (false claims suppressed), confirmation (true "
            "claims confirmed)."
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error (refused fits are logged at debug).")
    ] = "warning",
    config: ConfigOpt = None,
) -> None:
    """Replay series and suggestions through the same rules and baselines as `serve`.

    Writes OUT/verdicts.jsonl (Verdict v1), OUT/scores/<series>.csv
    (timestamp,value,expected,lower,upper,score) and OUT/replay.json (verdict counts; seasonal
    fits adopted by model, refused and skipped by reason), and with --labels OUT/scores.json.
    Deterministic: two runs give identical files.
    """
    import json
    import logging

    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(
            f"expected debug, info, warning or error, got {log_level!r}", param_hint="--log-level"
        )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from referee.config import Settings
    from referee.decision.rulepack import RulePackError
    from referee.replay import ReplayError
    from referee.replay import replay as run_replay
    from referee.replay.labels import LabelsError

    attrs: dict[str, str] = {}
    for pair in attribute or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--attribute")
        attrs[key] = value
    settings = Settings.load(config, rules=rules or None)
    try:
        result = run_replay(
            series, out, settings, suggestions, metric, attrs, progress=True, fits=fits, labels_path=labels
        )
    except (ReplayError, RulePackError, LabelsError) as e:
        Console(stderr=True).print(f"[red]replay failed:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    summary = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "no suggestions"
    typer.echo(f"{len(result.series)} series, {len(result.verdicts)} verdicts ({summary}) -> {out}")
    if result.fits is not None:
        f = result.fits

        def _counts(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {n}" for k, n in d.items()) or "none"

        typer.echo(
            f"seasonal fits: {f['tracked_series']} series tracked; adopted: {_counts(f['adopted'])}; "
            f"refused: {_counts(f['refused'])}; skipped: {_counts(f['skipped'])}"
        )
    else:
        typer.echo("seasonal fits: off (--no-fits)")
    if result.scores is not None:
        keys = ("precision", "recall", "retention", "suppression", "confirmation")
        typer.echo("scores: " + json.dumps({k: result.scores[k] for k in keys}))


def _from_store(
    config: Path | None,
    database: str | None,
    period: tuple[str | None, str | None, str],
    build: Callable[[VerdictStore, datetime | None, datetime | None, timedelta], dict[str, Any]],
) -> dict[str, Any]:
    """Opens the configured verdict store and calls ``build`` with the parsed period
    (``--since``, ``--until``, ``--tolerance``). ValueError names a bad option."""
    from referee.config import Settings
    from referee.outputs import scorecard as sc
    from referee.verdicts import open_verdict_store

    since, until, tolerance = period
    span = (
        sc.parse_time(since, "since") if since else None,
        sc.parse_time(until, "until") if until else None,
        sc.parse_tolerance(tolerance),
    )
    store = open_verdict_store(Settings.load(config, database=database).database)
    try:
        return build(store, *span)
    finally:
        store.close()


@app.command()
def report(
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    tolerance: ToleranceOpt = "15m",
    suppressed: Annotated[int, typer.Option(help="How many of the latest suppressions to list.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of Markdown.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """What Referee did over a period, as Markdown: the copilot scorecard, verdicts by claim
    kind and by deciding rule (shadow mode apart), the latest suppressions with their reasons,
    the misses (watch-rule findings no suggestion covered) and the delivery outbox. Read from
    the verdict store."""
    import json

    from referee.outputs import report as rp

    err = Console(stderr=True)
    try:
        data = _from_store(
            config,
            database,
            (since, until, tolerance),
            lambda store, a, b, t: rp.build(store, a, b, t, suppressed_limit=suppressed).to_json(),
        )
    except (ValueError, RuntimeError) as e:
        err.print(f"[red]report:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    text = json.dumps(data, indent=2) + "\n" if as_json else rp.render_markdown(data)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"report written to {out}", highlight=False)


@app.command()
def scorecard(
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    url: Annotated[
        str | None, typer.Option(help="Ask a running service instead, e.g. http://127.0.0.1:4318.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="REFEREE_API_TOKEN", help="Bearer token for --url.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    tolerance: ToleranceOpt = "15m",
    as_json: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")] = False,
) -> None:
    """Per source: suggestions, confirmed, suppressed, inconclusive, and misses (watch-rule
    findings that no suggestion of the source covered)."""
    import json

    from referee.outputs import scorecard as sc

    err = Console(stderr=True)
    try:
        if url:
            card = sc.fetch(url, {"since": since or "", "until": until or "", "tolerance": tolerance}, token)
        else:
            card = _from_store(
                config,
                database,
                (since, until, tolerance),
                lambda store, a, b, t: sc.build(store, a, b, t).to_json(),
            )
    except (ValueError, RuntimeError) as e:
        err.print(f"[red]scorecard:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(card, indent=2))
    else:
        Console().print(sc.render(card))
