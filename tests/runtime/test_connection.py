"""The Bus against a real nats-server of its own: a connection the server
closes is replaced, a server restart is logged as a few lines (no traceback
per retry), and a server with a small max_payload is warned about."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from marketing_runtime.connection import Bus
from marketing_runtime.publisher import Ack

from tests.harness import until_true
from tests.processes import SMALL_MAX_PAYLOAD, NatsServer, kill_connection


def _with_bus(url: str, scenario: Callable[[Bus], Awaitable[None]]) -> None:
    async def main() -> None:
        bus = Bus(url, name="test-connection")
        bus.start()
        try:
            await scenario(bus)
        finally:
            await bus.close()

    asyncio.run(main())


def test_a_connection_the_server_closes_is_replaced(small_nats: NatsServer) -> None:
    async def scenario(bus: Bus) -> None:
        assert await bus.wait_ready(30)
        old, ended = bus.nc, bus.connection_ended()
        assert old is not None and not ended.is_set()
        await kill_connection(old)
        await until_true(lambda: bus.nc is not None and bus.nc is not old)
        assert old.is_closed and ended.is_set()
        publisher = bus.publisher
        assert publisher is not None
        acks = await publisher.publish("marketing.work.events", [("after-kill", b"{}")], 5.0)
        assert acks == [Ack(duplicate=False)]

    _with_bus(small_nats.url, scenario)


def test_a_restart_is_logged_once_per_state_change_without_tracebacks(
    small_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(bus: Bus) -> None:
        assert await bus.wait_ready(30)
        caplog.clear()
        small_nats.stop()
        await until_true(lambda: bus.log.failed_attempts >= 3)
        small_nats.start()
        await until_true(lambda: bus.js is not None)

    with caplog.at_level(logging.DEBUG):
        _with_bus(small_nats.url, scenario)
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not [r for r in caplog.records if r.exc_info], "no tracebacks"
    assert [_kind(r.getMessage()) for r in lines] == ["lost", "cannot connect", "reconnected"]
    assert "ConnectionRefusedError" in lines[1].getMessage()


def test_failing_first_connects_are_one_line_then_connected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = NatsServer(tmp_path / "nats")  # not started yet

    async def scenario(bus: Bus) -> None:
        await until_true(lambda: bus.log.failed_attempts >= 3)
        server.start()
        assert await bus.wait_ready(30)

    try:
        with caplog.at_level(logging.DEBUG):
            _with_bus(server.url, scenario)
    finally:
        server.stop()
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not [r for r in caplog.records if r.exc_info], "no tracebacks"
    kinds = [_kind(r.getMessage()) for r in lines]
    assert kinds[:1] == ["cannot connect"] and kinds.count("cannot connect") == 1
    assert "connected" in kinds


def test_a_small_max_payload_is_warned_about_at_connect(
    small_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(bus: Bus) -> None:
        assert await bus.wait_ready(30)
        assert bus.max_payload == SMALL_MAX_PAYLOAD

    with caplog.at_level(logging.WARNING):
        _with_bus(small_nats.url, scenario)
    (warning,) = [r.getMessage() for r in caplog.records if "max_payload" in r.getMessage()]
    assert str(SMALL_MAX_PAYLOAD) in warning


def test_the_default_server_here_needs_no_warning(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(bus: Bus) -> None:
        assert await bus.wait_ready(30)

    with caplog.at_level(logging.WARNING):
        _with_bus(nats_server.url, scenario)
    assert not [r for r in caplog.records if "max_payload" in r.getMessage()]


def _kind(message: str) -> str:
    for kind in ("cannot connect", "reconnected", "connected", "lost", "closed"):
        if kind in message:
            return kind
    return message
