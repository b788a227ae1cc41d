"""The ``referee`` command line."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from referee.outputs.verdicts import VerdictStore

app = typer.Typer(
    help="Referee: a second, evidence-based opinion on AI copilots' operational suggestions.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Work with rule packs.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="referee.yaml (default: $REFEREE_CONFIG or ./referee.yaml)."),
]
# The period options of `report` and `scorecard`.
DatabaseOpt = Annotated[
    str | None, typer.Option(help="SQLite file or postgresql:// URL \\[default: from the config].")
]
SinceOpt = Annotated[str | None, typer.Option(help="RFC 3339 time or a duration back (24h, 7d).")]
UntilOpt = Annotated[str | None, typer.Option(help="RFC 3339 time or a duration back.")]
ToleranceOpt = Annotated[
    str, typer.Option(help="How far a suggestion may be from a finding and still cover it.")
]


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on \\[default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="OTLP/HTTP and REST port \\[default: 4318].")] = None,
    grpc_port: Annotated[
        str | None, typer.Option(help="OTLP/gRPC port, 0 for any free one, or 'off' \\[default: 4317].")
    ] = None,
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", "-r", help="Rule pack file or directory (repeatable).")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="SQLite file or postgresql:// URL \\[default: referee.db].")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the service: OTLP/HTTP ingest and the REST API on one port, OTLP/gRPC on another.

    The rule packs are reloaded when a pack file changes and on SIGHUP (all or nothing: a
    broken pack keeps the running rules).
    """
    import uvicorn

    from referee.config import Settings
    from referee.decision.rulepack import RulePackError
    from referee.service.app import build_app
    from referee.service.http import OneWriteHttpToolsProtocol
    from referee.service.runtime import Runtime

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.load(
        config, host=host, port=port, grpc_port=grpc_port, rules=rules or None, database=database
    )
    try:
        runtime = Runtime(settings)
    except RulePackError as e:
        Console(stderr=True).print(f"[red]cannot start: the rule packs have errors[/]\n{e}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as e:  # e.g. a plugin's rule function clashing with a built-in
        Console(stderr=True).print(f"[red]cannot start:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    signal.signal(signal.SIGHUP, lambda *_: runtime.reload_rules())
    try:
        uvicorn.run(
            build_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=log_level.lower(),
            http=OneWriteHttpToolsProtocol,
        )
    finally:
        runtime.close()


@app.command()
def demo() -> None:
    """Play the seed incident end to end on the embedded defaults (a few seconds)."""
    from referee.demo.run import run

    verdicts = run()
    if not {"confirm", "suppress"} <= {v.verdict for v in verdicts}:
        raise typer.Exit(1)


@rules_app.command("check")
def rules_check(
    paths: Annotated[list[Path], typer.Argument(help="Rule pack files or directories.")],
) -> None:
    """Validate rule packs: YAML, fields, CEL conditions.

    Prints every problem as path:line:col: message and exits 1 on any.
    """
    from referee.decision.rulepack import RulePackError, load_rules
    from referee.plugins import plugin_manager, rule_functions

    try:
        # Functions that installed plugins register are known here, as in `serve`.
        loaded = load_rules(paths, functions=rule_functions(plugin_manager()))
    except RulePackError as e:
        for line in e.errors:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    except ValueError as e:  # a plugin's function clashing with a built-in, or registered twice
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(loaded.rules)} rules in {len(loaded.files)} files OK (revision {loaded.revision})")


@rules_app.command("test")
def rules_test(
    paths: Annotated[list[Path], typer.Argument(help="Rule test files, or directories holding *.test.yaml.")],
) -> None:
    """Run rule tests: input series, suggestions at given times, expected verdicts.

    Uses the same store, rule loader and decision code as `referee serve`. Prints a diff for
    every failing case and exits 1 on any failure or error in a test file.
    """
    from referee.decision.ruletest import run_paths

    summary = run_paths(paths)
    for block in summary.output:
        typer.echo(block, err=True)
    typer.echo(
        f"{summary.passed} passed, {summary.failed} failed, {summary.errors} errors in {summary.files} files"
    )
    if not summary.ok:
        raise typer.Exit(1)


@rules_app.command("explain")
def rules_explain(
    suggestion: Annotated[
        Path | None, typer.Option(help="Suggestion v1 JSON file (default: read JSON from stdin).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A running service, e.g. http://127.0.0.1:4318 (decides, stores nothing)."),
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="Replay this rule-test file's input series instead.")
    ] = None,
    case: Annotated[
        int | None,
        typer.Option(help="With --test: explain the file's case N (0-based) instead of a suggestion."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="With --test: decide at this offset from the start (30m) or RFC 3339 time."),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="With --test: these packs instead of its rule_files."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Explain a verdict: every rule considered, each condition's value, the numbers used."""
    import json
    import sys

    from referee.decision import explain
    from referee.decision.ruletest import RuleTestError

    err = Console(stderr=True)
    if (url is None) == (test is None):
        err.print(
            "give exactly one of --url (a running service) or --test (a rule-test file)", highlight=False
        )
        raise typer.Exit(2)
    raw: dict[str, object] | None = None
    if suggestion is not None or case is None:
        try:
            text = suggestion.read_text(encoding="utf-8") if suggestion else sys.stdin.read()
            raw = json.loads(text)
        except (OSError, ValueError) as e:
            err.print(f"cannot read the suggestion: {e}", highlight=False)
            raise typer.Exit(2) from None
        if not isinstance(raw, dict):
            err.print("the suggestion must be a JSON object", highlight=False)
            raise typer.Exit(2)
    try:
        if url is not None:
            if raw is None:
                raise explain.ExplainError("--case needs --test")
            doc = explain.from_service(url, raw)
        else:
            assert test is not None
            doc = explain.from_test_file(test, raw, case=case, at=at, rules=rules)
    except RuleTestError as e:
        err.print("\n".join(e.errors), highlight=False)
        raise typer.Exit(2) from None
    except explain.ExplainError as e:
        err.print(str(e), highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        # Piped output is not squeezed to 80 columns: condition texts stay readable.
        explain.render(doc, Console(highlight=False, width=None if sys.stdout.isatty() else 140))


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="suggestion, verdict or ruletest.")],
    out: Annotated[
        Path | None, typer.Option(help="Write <out>/<name>.v1.json instead of printing (e.g. schemas/).")
    ] = None,
) -> None:
    """Print the JSON Schema of Suggestion v1, Verdict v1 or Rule test v1, generated from the models."""
    from referee.schemas import file_name, render

    try:
        text = render(name)
    except ValueError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / file_name(name)).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out / file_name(name)}")


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
    config: ConfigOpt = None,
) -> None:
    """Replay series and suggestions through the same rules and baselines as `serve`.

    Writes OUT/verdicts.jsonl (Verdict v1) and OUT/scores/<series>.csv
    (timestamp,value,expected,lower,upper,score). Deterministic: two runs give identical files.
    """
    from referee.config import Settings
    from referee.decision.rulepack import RulePackError
    from referee.replay import ReplayError
    from referee.replay import replay as run_replay

    attrs: dict[str, str] = {}
    for pair in attribute or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--attribute")
        attrs[key] = value
    settings = Settings.load(config, rules=rules or None)
    try:
        result = run_replay(series, out, settings, suggestions, metric, attrs, progress=True, fits=fits)
    except (ReplayError, RulePackError) as e:
        Console(stderr=True).print(f"[red]replay failed:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    summary = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "no suggestions"
    typer.echo(f"{len(result.series)} series, {len(result.verdicts)} verdicts ({summary}) -> {out}")


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
    from referee.outputs.store import open_verdict_store

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


@app.command()
def version() -> None:
    """Print the version of Referee and its core."""
    from referee import __version__, _core

    typer.echo(f"referee {__version__} (core {_core.__version__})")


def main() -> None:
    app()
