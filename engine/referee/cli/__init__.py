"""The ``referee`` command line: ``serve`` and ``demo`` (``serve.py``), ``rules`` and ``schema``
(``rules.py``), ``replay``, ``report`` and ``scorecard`` (``history.py``)."""

from __future__ import annotations

import typer

# Importing the command modules registers their commands, in the order ``--help`` lists them.
from referee.cli import history, rules, serve
from referee.cli.app import app

__all__ = ["app", "history", "main", "rules", "serve"]


@app.command()
def version() -> None:
    """Print the version of Referee and its core."""
    from referee import __version__, _core

    typer.echo(f"referee {__version__} (core {_core.__version__})")


def main() -> None:
    app()
