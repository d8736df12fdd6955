"""`python -m tests.bench.echo_server HOST:PORT`: the ceiling for unary RPCs.

A grpc.aio server (same options and event loop as the service: uvloop, which
makes any grpc.aio server about a quarter faster here) whose TrackEvent is a
generic handler that takes the request bytes and answers an empty response, so
the benchmark can call it with exactly the client code it uses for the service."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import grpc
from marketing_runtime import event_loop

from service.settings import DEFAULT_MAX_MESSAGE_BYTES

SERVICE = "marketing.v1.MarketingService"


async def _empty(request: bytes, context: Any) -> bytes:
    return b""


async def serve(address: str) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ]
    )
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        _empty
    )  # no (de)serializers: raw bytes
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"TrackEvent": handler}),)
    )
    server.add_insecure_port(address)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1.0)


if __name__ == "__main__":
    # The service's default loop; the bench starts the service with no
    # MARKETING_* settings of the caller's (tests/bench/stack.py), so it is its loop.
    event_loop.run(serve(sys.argv[1]), "uvloop")
