"""Open-loop POSTs over keep-alive HTTP/1.1 connections, written and read with
asyncio streams: each request is sent at its due time (or as soon as a
connection is free) whatever the answers before it, and timed from its due time.

Why not httpx: on the bench's two cores, httpx spent about 3 ms of CPU a request
(7 ms with a coroutine per request waiting in its pool), twice what the
preference page it measured spends, so at 200 a second the load generator fell
behind, not the service (answers 20 to 90 s late and ReadErrors while the
serving process used 15 % of a core). Here a request costs the client about
0.25 ms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_CLOSED = (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError)
TIMEOUT_S = 30.0  # an answer later than this fails the phase


@dataclass(frozen=True)
class Answer:
    index: int  # of the request, in the order given
    late_s: float  # the answer's time from the request's due time
    wall: float  # time.time() when it came


class _Connection:
    """One keep-alive connection, opened again when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, request: bytes) -> int:
        """The answer's status. A connection the server closed while idle (its
        keep-alive timeout) is opened again and the request sent once more."""
        async with asyncio.timeout(TIMEOUT_S):
            try:
                return await self._exchange(request)
            except _CLOSED:
                self.close()
                return await self._exchange(request)

    async def _exchange(self, request: bytes) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            self.close()
        return int(head[0].split(" ", 2)[1])

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def _request(url: str, form: bytes) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    )
    return head.encode() + form


async def post_open_loop(
    urls: Sequence[str], form: bytes, rate: float, connections: int
) -> list[Answer]:
    """POST `form` (urlencoded) to each URL (all on one host) at `rate` a second;
    every answer, which must be 200 (anything else raises)."""
    parts = urlsplit(urls[0])
    assert parts.hostname is not None and parts.port is not None
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    answers: list[Answer] = []
    began = time.perf_counter()

    async def feed() -> None:
        for n in range(len(urls)):
            at = began + n / rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            due.put_nowait((n, at))
        for _ in range(connections):
            due.put_nowait(None)

    async def send(connection: _Connection) -> None:
        try:
            while (item := await due.get()) is not None:
                n, at = item
                status = await connection.post(_request(urls[n], form))
                if status != 200:
                    raise RuntimeError(f"POST {urls[n]} answered {status}")
                answers.append(Answer(n, time.perf_counter() - at, time.time()))
        finally:
            connection.close()

    senders = [send(_Connection(parts.hostname, parts.port)) for _ in range(connections)]
    await asyncio.gather(feed(), *senders)
    return answers
