"""The HTTP protocol ``referee serve`` runs under uvicorn: httptools, with one send per response.

uvicorn writes a response's status line and headers as soon as the application starts it,
then the body in a second write: two ``send()`` calls, two TCP segments and, for a client
reading the headers first, a second wake-up. On loopback, where a decision answers in well
under a millisecond, that second round through the network stack is a sizeable share of the
latency. Here a connection's writes are gathered until the event loop's next turn and leave
together: a response written in one go (every one Referee sends) is one ``send()``.

Nothing waits longer than that turn: a body streamed in parts still leaves part by part, and
closing the connection sends what is gathered first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _GatheringTransport:
    """A connection's transport whose writes within one turn of the event loop are sent as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, get_extra_info, pause_reading, ...) is the transport's.
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `_GatheringTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # (uvloop's transports are not asyncio.Transport subclasses, only alike.)
        super().connection_made(_GatheringTransport(transport, self.loop))  # type: ignore[arg-type]
