"""The ``referee`` command line's Typer apps and the options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
