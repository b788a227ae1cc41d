"""Shared fixtures: a service on a free port, settings in a temporary directory; the real peers'
fixtures from ``tests/peers/`` (Grafana's contract server ``grafana_server``, PostgreSQL).

``CONTRACTS`` is ``tests/contracts/`` (the upstream contracts the tests check against, see its
README), or ``$REFEREE_CONTRACTS_DIR`` when set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from referee.config import Settings
from referee.demo.run import BackgroundServer, free_port
from referee.service.runtime import Runtime

pytest_plugins = ["tests.peers.grafana_contract.fixtures", "tests.peers.postgres"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RULES = REPO / "rules"
CONTRACTS = Path(os.environ.get("REFEREE_CONTRACTS_DIR") or REPO / "tests" / "contracts")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in ("GRAFANA_URL", "GRAFANA_TOKEN", "GRAFANA_TOKEN_FILE", "REFEREE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings.load(
        env={}, database=tmp_path / "referee.db", port=free_port(), grpc_port=0, rules=[DEFAULT_RULES]
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def server(runtime: Runtime) -> Iterator[BackgroundServer]:
    with BackgroundServer(runtime, runtime.settings.port) as srv:
        yield srv
