"""A real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``, installed by ``make
install``) on a free loopback port, sending its webhooks to a receiver URL; and ``wait_for``,
the polling loop the tests around real peers share."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from referee.demo.run import free_port

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

CONFIG = """
route:
  receiver: referee
  group_by: [alertname, service_name]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: referee
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """``check()``'s first truthy result, polled every 0.2 s; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def run_alertmanager(tmp_path: Path, webhook_url: str) -> Iterator[str]:
    """Starts Alertmanager (config, data and ``alertmanager.log`` in ``tmp_path``; one route, to
    ``webhook_url``, resolved notifications included, 1 s grouping), waits until it is ready and
    yields its URL; stopped on exit."""
    assert Path(BINARY).exists(), "prometheus-alertmanager is missing: run `make install`"
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(webhook_url=webhook_url))
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, what="alertmanager to start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
