"""End-to-end OTLP/HTTP ingest: ``referee serve`` in its own process, fed by a load generator
in another (``bench.speed.http_client``), against two references run the same way in the same run:
the light pure-Python reference ingest (``bench.reference.light.python_ingest``, which does less
than Referee) and a server that ingests nothing, both on the same minimal Starlette/uvicorn
stack (``bench.reference.ref_server``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.workloads.otlp import POINTS_PER_REQUEST, build_payloads
from referee.demo.run import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(cmd: list[str], port: int, cwd: Path) -> Iterator[str]:
    """Starts a server process and waits until ``/healthz`` answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFEREE_", "GRAFANA_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"{cmd[2:4]} exited: {out[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{cmd} did not come up")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def referee_cmd(port: int, tmp: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "referee",
        "serve",
        "--port",
        str(port),
        "--grpc-port",
        "off",
        "--database",
        str(tmp / "bench.db"),
        "--log-level",
        "warning",
    ]


def ref_cmd(port: int, mode: str) -> list[str]:
    return [sys.executable, "-m", "bench.reference.ref_server", "--port", str(port), "--mode", mode]


def drive(url: str, payload_dir: Path, workers: int, duration: float) -> dict[str, Any]:
    """Runs the load generator as a separate process against ``url``."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.speed.http_client",
            f"{url}/v1/metrics",
            str(payload_dir),
            "--workers",
            str(workers),
            "--duration",
            str(duration),
        ],
        cwd=ROOT,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def bench_http_ingest(workers: int = 4, per_worker: int = 40, duration: float = 4.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        payload_dir = tmp / "payloads"
        payload_dir.mkdir()
        for w in range(workers):
            for i, body in enumerate(build_payloads(per_worker, host=f"h{w}", seed=w)):
                (payload_dir / f"w{w}-{i:04d}.pb.gz").write_bytes(body)
        runs: dict[str, Any] = {}
        port = free_port()
        with serving(referee_cmd(port, tmp), port, tmp) as url:
            runs["referee"] = drive(url, payload_dir, workers, duration)
            series = httpx.get(f"{url}/api/v1/series", params={"limit": 1}).json()
        for mode in ("python", "noop"):
            port = free_port()
            with serving(ref_cmd(port, mode), port, ROOT) as url:
                runs[mode] = drive(url, payload_dir, workers, duration)
    return {
        "client": (
            f"separate process, {workers} keep-alive connections (httpx, one thread each), prebuilt "
            f"gzip protobuf payloads of {POINTS_PER_REQUEST} points; each connection's first request "
            "creates its series and is sent before the clock starts; every response checked: 200 "
            "and no partial_success rejections"
        ),
        "referee_points_per_s": runs["referee"]["points_per_s"],
        "python_reference_points_per_s": runs["python"]["points_per_s"],
        "ratio": round(runs["referee"]["points_per_s"] / runs["python"]["points_per_s"], 2),
        "no_ingest_ceiling_points_per_s": runs["noop"]["points_per_s"],
        "target_points_per_s": 300_000,
        "referee_series_after": series.get("stats", {}).get("series"),
        "runs": runs,
    }


if __name__ == "__main__":
    print(json.dumps(bench_http_ingest(), indent=2))
