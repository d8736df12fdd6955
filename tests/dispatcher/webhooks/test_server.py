"""The receiver's HTTP server: where it listens, and sharing an address."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dispatcher.webhooks import WebhookServer
from dispatcher.webhooks.server import split_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8091", ("127.0.0.1", 8091)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        (":8091", ("", 8091)),
        ("[::1]:8091", ("::1", 8091)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_an_address_is_a_host_and_a_port(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["8091", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_anything_else_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_address(address)


def test_an_address_another_program_holds_fails_naming_it() -> None:
    with socket.socket() as other:  # no SO_REUSEPORT: nobody may share it
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"127.0.0.1:{other.getsockname()[1]}"

        with pytest.raises(OSError, match=f"cannot listen on {address}"):
            WebhookServer.listen(address)


async def _answer(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


APP = Starlette(routes=[Route("/", _answer, methods=["POST"])])


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_replicas_on_one_host_share_the_address() -> None:
    async def scenario() -> None:
        first = WebhookServer.listen("127.0.0.1:0")
        second = WebhookServer.listen(f"127.0.0.1:{first.port}")
        for server in (first, second):
            server.start(APP)
        try:
            async with httpx.AsyncClient() as http:
                reply = await http.post(f"http://127.0.0.1:{first.port}/")
                assert reply.text == "ok"
            await first.stop()
            async with httpx.AsyncClient() as http:  # the other one answers alone
                reply = await http.post(f"http://127.0.0.1:{first.port}/")
                assert reply.text == "ok"
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(scenario())


def test_stopping_closes_the_address_and_may_repeat() -> None:
    async def scenario() -> None:
        server = WebhookServer.listen("127.0.0.1:0")
        server.start(APP)
        await server.stop()
        await server.stop()
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(f"http://127.0.0.1:{server.port}/")

    asyncio.run(scenario())
