"""A wheel ships the default rule packs as ``referee/_rules``.

``engine/referee/_rules/`` holds one symlink per pack in ``rules/``. Building Referee's own wheel
means a release build of the Rust core, too heavy for the suite, so this checks the mechanism:
the symlinks are complete and right, maturin (the pinned version) writes a symlinked file's
contents into a wheel built from a tiny project with the same layout, and ``default_rules_dir``
finds ``_rules`` in an installed (non-repository) layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from referee import config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "engine" / "referee" / "_rules"


def test_every_default_pack_is_linked_into_the_package() -> None:
    packs = sorted(p.name for p in (REPO / "rules").glob("*.yaml"))
    linked = sorted(p.name for p in SHIPPED.iterdir())
    assert linked == packs, "engine/referee/_rules must have one symlink per rules/*.yaml"
    for name in linked:
        link = SHIPPED / name
        assert link.is_symlink() and os.readlink(link) == f"../../../rules/{name}"
        assert link.resolve() == (REPO / "rules" / name).resolve()


def test_default_rules_dir_in_the_repository_and_in_a_wheel_layout(tmp_path: Path) -> None:
    assert config.default_rules_dir() == REPO / "rules"
    package = tmp_path / "site-packages" / "referee"
    (package / "_rules").mkdir(parents=True)
    assert config.default_rules_dir(package) == package / "_rules"
    with pytest.raises(FileNotFoundError, match="default rule packs not found"):
        config.default_rules_dir(tmp_path / "elsewhere" / "referee")


def _maturin() -> str | None:
    here = Path(sys.executable).parent / "maturin"
    return str(here) if here.exists() else shutil.which("maturin")


@pytest.mark.skipif(_maturin() is None or shutil.which("cargo") is None, reason="needs maturin and cargo")
def test_maturin_writes_symlinked_packs_into_the_wheel(tmp_path: Path) -> None:
    """A no-dependency `bin` crate builds in about a second; the python-source part of the wheel
    is written the same way for pyo3 projects."""
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.rs").write_text("fn main() {}\n")
    (project / "Cargo.toml").write_text(
        '[package]\nname = "rtest"\nversion = "0.1.0"\nedition = "2021"\n[workspace]\n'
    )
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["maturin"]\nbuild-backend = "maturin"\n'
        '[project]\nname = "rtest"\nversion = "0.1.0"\n'
        '[tool.maturin]\nbindings = "bin"\npython-source = "engine"\n'
    )
    (project / "rules").mkdir()
    pack = (REPO / "rules" / "http-server.yaml").read_bytes()
    (project / "rules" / "http-server.yaml").write_bytes(pack)
    shipped = project / "engine" / "rtest" / "_rules"
    shipped.mkdir(parents=True)
    (shipped.parent / "__init__.py").write_text("")
    (shipped / "http-server.yaml").symlink_to("../../../rules/http-server.yaml")
    out = tmp_path / "dist"
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target")}
    done = subprocess.run(
        [_maturin() or "maturin", "build", "--quiet", "--out", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("rtest/_rules/http-server.yaml") == pack
