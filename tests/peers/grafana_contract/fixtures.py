"""The ``grafana_server`` pytest fixture: a running ``GrafanaContractServer`` per test.

Register it with ``pytest_plugins = ["tests.peers.grafana_contract.fixtures"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.peers.grafana_contract.server import GrafanaContractServer


@pytest.fixture
def grafana_server() -> Iterator[GrafanaContractServer]:
    """A contract-checking Grafana on 127.0.0.1 (random port) with a random service-account token;
    ``.url``, ``.token``, ``.annotations``, ``.requests``, ``.violations``. Stopped after the test."""
    # Shaped like a Grafana service-account token so it is easy to spot if it leaks.
    token = f"glsa_{secrets.token_urlsafe(24)}_{secrets.token_hex(4)}"
    with GrafanaContractServer(token) as server:
        yield server
