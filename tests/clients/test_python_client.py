"""The installable async client (clients/python/marketing_client): against the
live service, and against a flaky stand-in server for retries and deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from marketing.v1 import event_pb2, service_pb2, service_pb2_grpc
from marketing_client import (
    DeadlineExceededError,
    InvalidArgumentError,
    MarketingClient,
    NotFoundError,
    RetryPolicy,
    UnavailableError,
)

from tests.harness import ServiceHarness, unique_email
from tests.service import builders

T = TypeVar("T")
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


def _with_client(address: str, use: Callable[[MarketingClient], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with MarketingClient(address, **kw) as client:
            return await use(client)

    return asyncio.run(main())


def test_typed_calls_against_the_service(harness: ServiceHarness) -> None:
    email = unique_email("client")

    async def use(client: MarketingClient) -> None:
        upserted = await client.upsert_contact(builders.contact(email, loyalty_tier="gold"))
        assert upserted.created
        contact = await client.get_contact(email=email)
        assert (contact.name, contact.loyalty_tier) == (upserted.contact.name, "gold")

        consent = builders.consent("EMAIL")
        first = await client.record_consent(contact.name, consent, request_id="")
        assert first.name.startswith(contact.name)
        assert len((await client.list_consents(contact.name)).consents) == 1

        event = builders.placed_order(email)  # no event id: the client gives it one
        tracked = await client.track_event(event)
        assert tracked.event_id and not tracked.duplicate
        assert event.event_id == ""  # the caller's message is left alone
        event.event_id = tracked.event_id
        assert (await client.track_event(event)).duplicate

        names = [c.name async for c in client.iter_contacts(page_size=1)]
        assert contact.name in names
        assert len(names) == len(set(names))

    _with_client(harness.address, use)


def test_errors_carry_the_field_violations(harness: ServiceHarness) -> None:
    async def use(client: MarketingClient) -> None:
        good = builders.placed_order(unique_email(), event_id="ok-1")
        bad = event_pb2.Event(email="not-an-email", event_id="has space")
        with pytest.raises(InvalidArgumentError) as caught:
            await client.track_events([good, bad])
        error = caught.value
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        reasons = {v.field: v.reason for v in error.violations}
        assert reasons["events[1].email"] == "INVALID_EMAIL"
        assert reasons["events[1].event_id"] == "INVALID_EVENT_ID"
        assert "events[1].email" in error.field_errors()
        assert error.reason == "INVALID_FIELDS"

        with pytest.raises(NotFoundError) as missing:
            await client.get_contact(email=unique_email("nobody"))
        assert missing.value.violations == ()

    _with_client(harness.address, use)


class _FlakyService(service_pb2_grpc.MarketingServiceServicer):
    """Fails the first `failures` TrackEvent calls with `code`; remembers every
    event id it was sent; sleeps `delay_s` before answering."""

    def __init__(self, failures: int, code: grpc.StatusCode, delay_s: float = 0.0) -> None:
        self.failures = failures
        self.code = code
        self.delay_s = delay_s
        self.seen: list[str] = []

    async def TrackEvent(
        self, request: service_pb2.TrackEventRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> service_pb2.TrackEventResponse:
        self.seen.append(request.event.event_id)
        await asyncio.sleep(self.delay_s)
        if len(self.seen) <= self.failures:
            await context.abort(self.code, "not now")
        return service_pb2.TrackEventResponse(event_id=request.event.event_id)


def _against(
    service: _FlakyService, use: Callable[[MarketingClient], Awaitable[T]], **kw: Any
) -> T:
    async def main() -> T:
        server = grpc.aio.server()
        service_pb2_grpc.add_MarketingServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with MarketingClient(f"127.0.0.1:{port}", **kw) as client:
                return await use(client)
        finally:
            await server.stop(0)

    return asyncio.run(main())


def test_unavailable_is_retried_with_the_same_event_id() -> None:
    service = _FlakyService(failures=2, code=grpc.StatusCode.UNAVAILABLE)
    event = builders.placed_order("a@example.com")
    response = _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert len(service.seen) == 3
    assert len(set(service.seen)) == 1
    assert response.event_id == service.seen[0] != ""


def test_retries_stop_after_the_last_attempt() -> None:
    service = _FlakyService(failures=100, code=grpc.StatusCode.UNAVAILABLE)
    event = builders.placed_order("a@example.com")
    with pytest.raises(UnavailableError):
        _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert len(service.seen) == FAST_RETRIES.max_attempts


def test_other_errors_are_not_retried() -> None:
    service = _FlakyService(failures=1, code=grpc.StatusCode.FAILED_PRECONDITION)
    event = builders.placed_order("a@example.com")
    with pytest.raises(Exception) as caught:
        _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert getattr(caught.value, "code", None) == grpc.StatusCode.FAILED_PRECONDITION
    assert len(service.seen) == 1


def test_the_deadline_covers_the_call() -> None:
    service = _FlakyService(failures=0, code=grpc.StatusCode.OK, delay_s=5.0)
    event = builders.placed_order("a@example.com")
    with pytest.raises(DeadlineExceededError):
        _against(service, lambda c: c.track_event(event, timeout_s=0.2))
