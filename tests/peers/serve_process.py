"""`referee serve` as users run it: a subprocess on a free port, for the tests that need the
real command (signals, the environment, process exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from referee.demo.run import free_port


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[str]
    #: Everything the process printed, set once it has exited.
    output: str = ""


@contextmanager
def referee_serve(
    tmp_path: Path,
    rules: Path,
    *,
    env: dict[str, str] | None = None,
    drop_env: tuple[str, ...] = ("GRAFANA_", "REFEREE_"),
    log_level: str = "warning",
) -> Iterator[ServeProcess]:
    """Starts `referee serve` (SQLite in `tmp_path`, any free gRPC port), waits for /healthz,
    and stops it on exit; `output` then holds its log."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)} | (env or {})
    cmd = [sys.executable, "-m", "referee", "serve", "--port", str(port), "--grpc-port", "0"]
    cmd += ["--database", str(tmp_path / "r.db"), "--rules", str(rules), "--log-level", log_level]
    proc = subprocess.Popen(
        cmd, env=full_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    served = ServeProcess(f"http://127.0.0.1:{port}", proc)
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{served.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("referee serve did not come up")
        yield served
    finally:
        proc.terminate()
        served.output, _ = proc.communicate(timeout=20)
