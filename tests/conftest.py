"""Shared fixtures: a service on a free port, settings in a temporary directory, Grafana's
contract server (``grafana_server``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from referee.config import Settings
from referee.demo.run import BackgroundServer, free_port
from referee.service.runtime import Runtime

pytest_plugins = ["tests.grafana_contract.fixtures", "tests.postgres"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RULES = REPO / "rules"


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
