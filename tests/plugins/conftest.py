"""The ``grafana`` fixture: Grafana's contract server (``grafana_server``) that fails the test
when the server saw a request violating Grafana's OpenAPI contract or failed itself.
``test_grafana_contract_server.py`` checks the server, so that "no violations" means something."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.grafana_contract.server import GrafanaContractServer


@pytest.fixture
def grafana(grafana_server: GrafanaContractServer) -> Iterator[GrafanaContractServer]:
    yield grafana_server
    assert grafana_server.violations == []
    assert grafana_server.errors == []
