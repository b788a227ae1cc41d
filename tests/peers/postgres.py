"""A real PostgreSQL for the tests: ``initdb`` + ``pg_ctl`` in a temporary directory on a free
port (as ``nobody`` when the tests run as root, which PostgreSQL refuses), one fresh database
per test (``pg_url``), and ``database_url``: the same test against SQLite and PostgreSQL."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from referee.demo.run import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None
    )
    if not found:
        pytest.fail(f"{name} not found: install PostgreSQL (`make install` does: apt-get install postgresql)")
    return found


@dataclass
class Postgres:
    url: str  # the admin URL (database ``postgres``)
    restart: Callable[[], None]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server for the session."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="referee-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        run_as = ["runuser", "-u", "nobody", "--"]
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, cwd=root)

    def restart() -> None:
        run(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-m", "fast", "restart")

    run(initdb, "-D", str(data), "-U", "referee", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    run(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o", options, "start")
    try:
        yield Postgres(f"postgresql://referee@127.0.0.1:{port}/postgres", restart)
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres) -> str:
    return postgres_server.url


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A new, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    yield postgres.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """The ``database`` setting: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "referee.db"
    return str(request.getfixturevalue("pg_url"))
