"""The ``referee`` command line."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on \\[default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="OTLP/HTTP and REST port \\[default: 4318].")] = None,
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", "-r", help="Rule pack file or directory (repeatable).")
    ] = None,
    database: Annotated[Path | None, typer.Option(help="SQLite database \\[default: referee.db].")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the service: OTLP/HTTP ingest and the REST API on one port.

    SIGHUP reloads the rule packs (all or nothing: a broken pack keeps the running rules).
    """
    import uvicorn

    from referee.config import Settings
    from referee.decision.rulepack import RulePackError
    from referee.service.app import build_app
    from referee.service.runtime import Runtime

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.load(config, host=host, port=port, rules=rules or None, database=database)
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
        uvicorn.run(build_app(runtime), host=settings.host, port=settings.port, log_level=log_level.lower())
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

    try:
        loaded = load_rules(paths)
    except RulePackError as e:
        for line in e.errors:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(loaded.rules)} rules in {len(loaded.files)} files OK (revision {loaded.revision})")


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="suggestion or verdict.")],
    out: Annotated[
        Path | None, typer.Option(help="Write <out>/<name>.v1.json instead of printing (e.g. schemas/).")
    ] = None,
) -> None:
    """Print the JSON Schema of Suggestion v1 or Verdict v1, generated from the models."""
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
        result = run_replay(series, out, settings, suggestions, metric, attrs, progress=True)
    except (ReplayError, RulePackError) as e:
        Console(stderr=True).print(f"[red]replay failed:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    summary = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "no suggestions"
    typer.echo(f"{len(result.series)} series, {len(result.verdicts)} verdicts ({summary}) -> {out}")


@app.command()
def version() -> None:
    """Print the version of Referee and its core."""
    from referee import __version__, _core

    typer.echo(f"referee {__version__} (core {_core.__version__})")


def main() -> None:
    app()
