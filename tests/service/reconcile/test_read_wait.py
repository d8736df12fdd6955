"""ReconcileContact when the provider cannot be read in time: the dispatcher says so at
once, and the service answers UNAVAILABLE with the wait as RetryInfo. Through the real
gRPC server, PostgreSQL and nats-server, with the dispatcher's real read_person
responder (its reads paused by a Retry-After) and the Klaviyo sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import grpc
import nats
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketing.bus.v1 import bus_pb2
from marketing.v1 import service_pb2 as pb
from nats.aio.client import Client

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.read_person import PersonReader
from dispatcher.providers.base import READ_PERSON
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import start_sandbox
from service.api.status_table import status_of
from service.errors import UnavailableError
from service.reconcile.provider import person_of, wait_at_most
from tests.builders import upsert
from tests.harness import ServiceHarness, error_reason, unique_email
from tests.processes import NatsServer

API_KEY = "pk_read_wait"
RETRY_AFTER_S = 60


@contextlib.contextmanager
def paused_dispatcher(nats_url: str) -> Iterator[None]:
    """A dispatcher's read_person responder on its own loop thread, its reads paused
    for RETRY_AFTER_S as after a 429 (real time: it answers at once, never waits)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with start_sandbox(api_key=API_KEY) as sandbox:
        client = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        gate = ProviderGate()

        async def start() -> tuple[Client, asyncio.Task[None]]:
            async def refused() -> None:
                raise RetryableProviderError("429", status=429, retry_after=RETRY_AFTER_S)

            with contextlib.suppress(RetryableProviderError):
                await gate.call(READ_PERSON, 1, refused)
            nc = await nats.connect(nats_url)
            serving = asyncio.create_task(PersonReader(client, gate, "").serve(nc))
            await nc.flush()
            return nc, serving

        async def stop(nc: Client, serving: asyncio.Task[None]) -> None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            await nc.close()
            await client.aclose()

        nc, serving = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        try:
            yield
        finally:
            asyncio.run_coroutine_threadsafe(stop(nc, serving), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            assert sandbox.requests("/api/profiles") == [], "the paused read was not sent"


def retry_delay_s(error: grpc.RpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("no RetryInfo in the status")


def test_a_read_the_provider_holds_off_is_unavailable_with_the_wait(
    bus_harness: ServiceHarness, nats_server: NatsServer
) -> None:
    email = unique_email("reconcile")
    bus_harness.stub.UpsertContact(upsert(email))
    with paused_dispatcher(nats_server.url), pytest.raises(grpc.RpcError) as raised:
        bus_harness.stub.ReconcileContact(pb.ReconcileContactRequest(email=email))
    error = raised.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(error) == "PROVIDER_UNAVAILABLE"
    assert f"try again in {RETRY_AFTER_S} s" in (error.details() or "")
    assert "no dispatcher answered" not in (error.details() or "")
    assert RETRY_AFTER_S - 1 <= retry_delay_s(error) <= RETRY_AFTER_S + 1


def test_the_dispatcher_s_wait_becomes_the_retry_delay() -> None:
    reply = bus_pb2.ReadPersonReply(
        error=bus_pb2.ReadPersonError(retryable=True, message="try again in 42 s")
    )
    reply.error.retry_after.FromSeconds(42)
    with pytest.raises(UnavailableError) as raised:
        person_of(reply)
    assert raised.value.retry_after_s == 42
    code, status = status_of(raised.value)
    assert code == grpc.StatusCode.UNAVAILABLE
    (retry,) = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    info = error_details_pb2.RetryInfo()
    retry.Unpack(info)
    assert info.retry_delay.seconds == 42


def test_without_a_wait_the_retry_delay_is_the_default() -> None:
    reply = bus_pb2.ReadPersonReply(
        error=bus_pb2.ReadPersonError(retryable=True, message="HTTP 503")
    )
    with pytest.raises(UnavailableError) as raised:
        person_of(reply)
    assert raised.value.retry_after_s is None
    _, status = status_of(raised.value)
    (retry,) = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    info = error_details_pb2.RetryInfo()
    retry.Unpack(info)
    assert info.retry_delay.seconds == 1


def test_the_dispatcher_may_wait_the_timeout_less_the_read_itself() -> None:
    assert wait_at_most(10.0) == 7.0
    assert wait_at_most(2.0) == 1.0  # a short timeout: half of it
