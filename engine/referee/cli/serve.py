"""``referee serve`` and ``referee demo``."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from referee.cli.app import ConfigOpt, app


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
            http="httptools",
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
