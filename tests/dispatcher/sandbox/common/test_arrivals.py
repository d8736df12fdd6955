"""A sandbox counts a request when the kernel received it, not when one of its busy
handler threads got round to reading it (`dispatcher.sandbox.common.arrivals`)."""

from __future__ import annotations

import io
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from dispatcher.sandbox import start_sandbox
from dispatcher.sandbox.common.arrivals import StampedReader
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.http import SandboxHandler
from tests.dispatcher.helpers import headers

ERASE = "/api/data-privacy-deletion-jobs"


@pytest.fixture
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            yield client, accepted


def test_a_read_gives_the_kernels_receive_time_of_its_first_bytes(
    connected: tuple[socket.socket, socket.socket],
) -> None:
    client, accepted = connected
    reader = StampedReader(accepted)
    buffered = io.BufferedReader(reader)
    reader.mark()
    before = time.time()
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert select.select([accepted], [], [], 30)[0]  # it has come, and is not read yet
    read = time.time()
    assert buffered.readline() == b"GET / HTTP/1.1\r\n"
    assert buffered.readline() == b"\r\n"
    client.sendall(b"POST / HTTP/1.1\r\n\r\n")  # a later read: not this request's arrival
    assert buffered.readline() == b"POST / HTTP/1.1\r\n"

    assert reader.first_received is not None
    assert before <= reader.first_received < read


def test_only_the_first_read_after_a_mark_is_the_arrival(
    connected: tuple[socket.socket, socket.socket],
) -> None:
    client, accepted = connected
    reader = StampedReader(accepted)
    client.sendall(b"x")
    assert reader.readinto(bytearray(8)) == 1
    assert reader.first_received is None  # no request began: nothing to stamp
    reader.mark()
    client.sendall(b"y")
    assert reader.readinto(bytearray(8)) == 1
    arrival = reader.first_received
    client.sendall(b"z")
    assert reader.readinto(bytearray(8)) == 1
    assert reader.first_received == arrival is not None


def test_the_wall_clocks_instant_on_the_sandboxs_clock() -> None:
    wall = SandboxClock()
    wall.advance(30.0)  # as a test moves the flows' time on
    earlier = time.time() - 0.5
    assert wall.at_wall(earlier) == pytest.approx(earlier + 30.0, abs=1e-6)
    assert wall.at_wall(None) == pytest.approx(time.time() + 30.0, abs=1.0)
    virtual = SandboxClock(lambda: 1_800_000_000.0)
    assert virtual.at_wall(earlier) == 1_800_000_000.0  # wall time does not move it


def test_the_sandbox_counts_a_request_when_it_came_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The request counts when it came in, before its handler thread began to read it
    (on a busy sandbox, a thread's turn comes late; read at the handler, as before,
    it counted after)."""
    began: list[float] = []
    parse = SandboxHandler.parse_request

    def parse_noting_when(handler: SandboxHandler) -> bool:
        began.append(time.time())
        return parse(handler)

    monkeypatch.setattr(SandboxHandler, "parse_request", parse_noting_when)
    with start_sandbox() as sandbox, httpx.Client(base_url=sandbox.base_url) as client:
        body = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {
                    "profile": {
                        "data": {"type": "profile", "attributes": {"email": "a@example.com"}}
                    }
                },
            }
        }
        answer = client.post(ERASE, json=body, headers=headers())
        assert answer.status_code == 202, answer.text
        [request] = sandbox.requests(ERASE)

    assert request["received_s"] < began[-1]
