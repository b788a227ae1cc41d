"""The HTTP protocol `referee serve` runs: a response's writes leave in one send."""

from __future__ import annotations

import asyncio

from referee.service.http import _GatheringTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_in_one_turn_of_the_loop_are_sent_together() -> None:
    async def main() -> RecordingTransport:
        fake = RecordingTransport()
        t = _GatheringTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert fake.writes == []  # nothing sent before the loop's next turn
        await asyncio.sleep(0)
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        # A later write is its own send, and closing sends what is gathered first.
        t.write(b"more")
        t.close()
        assert fake.writes[1:] == [b"more"] and fake.closed
        assert t.get_extra_info("peername") == "info:peername"  # the rest is the transport's
        return fake

    fake = asyncio.run(main())
    assert len(fake.writes) == 2


def test_serve_runs_uvicorn_with_the_one_write_protocol(tmp_path, monkeypatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from referee.cli import app
    from referee.service.http import OneWriteHttpToolsProtocol

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kw: seen.update(kw))
    result = CliRunner().invoke(
        app, ["serve", "--port", "0", "--grpc-port", "off", "--database", str(tmp_path / "r.db")]
    )
    assert result.exit_code == 0, result.output
    assert seen["http"] is OneWriteHttpToolsProtocol
