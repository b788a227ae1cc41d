"""The feedback webhook back to the copilot (exactly once per verdict version, through the
outbox, with retries), and ``Retry-After`` honoured by the delivery worker for every sink."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from referee.config import Settings
from referee.models import Suggestion
from referee.outputs import delivery
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES
from tests.peers.grafana_contract.server import GrafanaContractServer


class Copilot:
    """A copilot's feedback endpoint: answers scripted failures first, accepts each
    idempotency key once (like a well-behaved receiver), and records everything."""

    def __init__(self, token: str = "s3cret") -> None:
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        self._script: list[tuple[int, float, dict[str, str]]] = []
        self._lock = threading.Lock()
        copilot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with copilot._lock:
                    copilot.requests.append({"headers": dict(self.headers), "body": body})
                    status, delay, headers = copilot._script.pop(0) if copilot._script else (200, 0.0, {})
                time.sleep(delay)
                if self.headers.get("Authorization") != f"Bearer {copilot.token}":
                    status = 401
                if status == 200:
                    with copilot._lock:
                        copilot.accepted.setdefault(self.headers["Idempotency-Key"], body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/referee/feedback"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def then(self, status: int, delay: float = 0.0, **headers: str) -> None:
        self._script.append((status, delay, headers))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def copilot() -> Iterator[Copilot]:
    c = Copilot()
    yield c
    c.close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "backoff", lambda attempts: 0.0)


def suggestion(n: int) -> Suggestion:
    return Suggestion.model_validate(
        {
            "id": f"s{n}",
            "source": "copilot",
            "created_at": datetime(2026, 11, 1, tzinfo=UTC).isoformat(),
            "subject": {"service.name": "web"},
            "claim": {"kind": "latency_high"},
        }
    )


def feedback_runtime(
    tmp_path: Path, copilot: Copilot, timeout_s: float = 5.0, database: Path | str | None = None
) -> Runtime:
    token_file = tmp_path / "token"
    token_file.write_text(copilot.token + "\n")
    settings = Settings.load(
        env={},
        database=database or tmp_path / "referee.db",
        rules=[DEFAULT_RULES],
        feedback={"url": copilot.url, "token_file": str(token_file), "timeout_s": timeout_s},
    )
    return Runtime(settings)


def test_feedback_is_retried_and_arrives_once_per_version(
    tmp_path: Path, copilot: Copilot, database_url: Path | str
) -> None:
    rt = feedback_runtime(tmp_path, copilot, timeout_s=0.5, database=database_url)
    try:
        assert [s.name for s in rt.sinks] == ["feedback"]
        assert "s3cret" not in repr(rt.sinks[0]) and "s3cret" not in repr(rt.settings)
        verdict, _ = rt.submit(suggestion(1))
        copilot.then(503)
        copilot.then(429)
        copilot.then(200, delay=1.0)  # applied, but the answer comes after the 0.5 s timeout
        assert rt.worker.run_once() == 0
        assert rt.worker.run_once() == 0
        assert rt.worker.run_once() == 0
        time.sleep(1.0)
        assert rt.worker.run_once() == 1
        assert rt.worker.run_once() == 0  # nothing left
        key = f"{verdict.decision_id}:{verdict.version}"
        assert [r["headers"]["Idempotency-Key"] for r in copilot.requests] == [key] * 4
        assert list(copilot.accepted) == [key]
        assert copilot.accepted[key]["decision_id"] == verdict.decision_id
        assert copilot.accepted[key]["verdict"] == verdict.verdict
        [row] = rt.verdicts.deliveries(verdict.decision_id)
        assert (row["status"], row["ref"], row["attempts"]) == ("delivered", key, 4)

        # A new version of the verdict is sent once more, naming the one it replaces.
        v2 = verdict.model_copy(update={"version": verdict.version + 1, "explanation": "revised"})
        rt.verdicts.revise(v2, requeue=True)
        assert rt.worker.run_once() == 1
        assert rt.worker.run_once() == 0
        key2 = f"{verdict.decision_id}:{v2.version}"
        assert list(copilot.accepted) == [key, key2]
        last = copilot.requests[-1]
        assert last["headers"]["Referee-Replaces"] == key
        assert last["body"]["explanation"] == "revised"
        assert len(copilot.requests) == 5
    finally:
        rt.close()


def test_a_refused_feedback_is_not_retried(tmp_path: Path, copilot: Copilot) -> None:
    rt = feedback_runtime(tmp_path, copilot)
    copilot.token = "another"  # the copilot rotated its token: ours is refused with 401
    try:
        verdict, _ = rt.submit(suggestion(2))
        assert rt.worker.run_once() == 0
        assert rt.worker.run_once() == 0
        [row] = rt.verdicts.deliveries(verdict.decision_id)
        assert row["status"] == "failed" and "HTTP 401" in str(row["last_error"])
        assert "s3cret" not in str(row["last_error"])
        assert len(copilot.requests) == 1
    finally:
        rt.close()


def test_feedback_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"feedback\.url"):
        Settings.load(env={}, feedback={"url": "ftp://x"})
    with pytest.raises(ValueError, match="unknown keys"):
        Settings.load(env={}, feedback={"url": "http://x", "secret": "y"})
    assert Settings.load(env={}).feedback is None


def test_retry_after_from_the_copilot_is_honoured(tmp_path: Path, copilot: Copilot) -> None:
    rt = feedback_runtime(tmp_path, copilot)
    try:
        rt.submit(suggestion(3))
        copilot.then(503, **{"Retry-After": "120"})
        before = time.time()
        assert rt.worker.run_once() == 0
        assert rt.verdicts.due(now=before + 100) == []  # not before the copilot asked
        assert len(rt.verdicts.due(now=time.time() + 121)) == 1
    finally:
        rt.close()


def test_retry_after_from_grafana_is_honoured(tmp_path: Path, grafana_server: GrafanaContractServer) -> None:
    settings = Settings.load(
        env={"GRAFANA_URL": grafana_server.url, "GRAFANA_TOKEN": grafana_server.token},
        database=tmp_path / "referee.db",
        rules=[DEFAULT_RULES],
    )
    rt = Runtime(settings)
    try:
        rt.submit(suggestion(4))
        grafana_server.fail_next(429, retry_after=45)
        before = time.time()
        assert rt.worker.run_once() == 0
        assert rt.verdicts.due(now=before + 40) == []
        assert len(rt.verdicts.due(now=time.time() + 46)) == 1
    finally:
        rt.close()
