"""Settings that docs/configuration.md promises: gRPC port off, token sources and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from referee.config import Settings


@pytest.mark.parametrize("text", ["grpc_port: off\n", "grpc_port: 'off'\n", "grpc_port: null\n"])
def test_grpc_port_off_in_yaml(tmp_path: Path, text: str) -> None:
    # A bare `off` is YAML 1.1 false; it must not become port 0 (a random free port).
    path = tmp_path / "referee.yaml"
    path.write_text(text)
    assert Settings.load(path, env={}).grpc_port is None


def test_grpc_port_from_env_and_default() -> None:
    assert Settings.load(None, env={}).grpc_port == 4317
    assert Settings.load(None, env={"REFEREE_GRPC_PORT": "off"}).grpc_port is None
    assert Settings.load(None, env={"REFEREE_GRPC_PORT": "0"}).grpc_port == 0


def test_auth_tokens_file_wins_and_tokens_stay_secret(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("new-token\n\nold-token\n")
    env = {"REFEREE_AUTH_TOKENS": "a, b", "REFEREE_AUTH_TOKENS_FILE": str(tokens)}
    settings = Settings.load(None, env=env)
    assert [t.get() for t in settings.auth_tokens] == ["new-token", "old-token"]
    assert "new-token" not in repr(settings)
    assert [t.get() for t in Settings.load(None, env={"REFEREE_AUTH_TOKENS": "a, b"}).auth_tokens] == [
        "a",
        "b",
    ]
