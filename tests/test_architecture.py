"""The layout is the architecture: no import cycles (Python or Rust), and files of one purpose.

The layers themselves (ingest → state → decision → verdicts → outputs) are import-linter's
contract in ``pyproject.toml``, checked by ``make lint``; here: what a contract cannot say.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
#: A module longer than this needs a reason in its first lines: "Why this file is long: ...".
MAX_PYTHON_LINES = 400
MAX_RUST_LINES = 800


def _load_checker() -> ModuleType:
    """The Rust module-cycle checker, whose cycle finder works on any graph of sortable names."""
    path = REPO / "rust_core" / "tools" / "check_module_cycles.py"
    spec = importlib.util.spec_from_file_location("check_module_cycles", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


CHECKER = _load_checker()


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The modules of each strongly connected component of more than one module."""
    nodes = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in nodes}
    return [members for _, members in CHECKER.find_cycles(nodes, edges)]


@pytest.mark.parametrize("package", ["referee", "bench"])
def test_no_python_import_cycles(package: str) -> None:
    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_rust_module_cycles() -> None:
    checker = REPO / "rust_core" / "tools" / "check_module_cycles.py"
    done = subprocess.run([sys.executable, str(checker)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def _long_without_reason(paths: list[Path], limit: int, head_lines: int = 30) -> list[str]:
    out = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        head = "\n".join(lines[:head_lines]).lower()
        if len(lines) > limit and "why this file is long" not in head:
            out.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
    return out


def test_python_modules_have_one_purpose() -> None:
    files = [
        p
        for root in ("engine", "plugins", "bench")
        for p in (REPO / root).rglob("*.py")
        if ".venv" not in p.parts
    ]
    assert _long_without_reason(files, MAX_PYTHON_LINES) == []


def test_rust_files_have_one_purpose() -> None:
    files = [p for p in (REPO / "rust_core" / "src").rglob("*.rs") if p.name != "tests.rs"]
    assert _long_without_reason(files, MAX_RUST_LINES) == []
