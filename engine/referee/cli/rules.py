"""``referee rules check|test|explain`` and ``referee schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from referee.cli.app import app, rules_app


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
