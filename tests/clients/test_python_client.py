"""The installable async client (clients/python/marketing_client): against the
live service, and against a flaky stand-in server for retries and deadlines."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from marketing.v1 import consent_pb2, event_pb2, service_pb2, service_pb2_grpc
from marketing_client import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MarketingClient,
    NotFoundError,
    PermissionDeniedError,
    PlaintextTokenWarning,
    ResourceExhaustedError,
    RetryPolicy,
    Tls,
    UnauthenticatedError,
    UnavailableError,
)
from marketing_client.errors import STATUS_DETAILS_KEY

from tests import builders
from tests.harness import ServiceHarness, make_certificates, unique_email, write_auth_file

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

    _with_client(harness.address, use, token=harness.token)


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
        with pytest.raises(NotFoundError):
            await client.reconcile_contact(email=unique_email("nobody"))
        with pytest.raises(ValueError, match="exactly one"):
            await client.reconcile_contact()

    _with_client(harness.address, use, token=harness.token)


def test_the_token_authenticates_and_its_absence_is_an_error(
    database_url: str, tmp_path: Path
) -> None:
    auth_file = write_auth_file(
        tmp_path / "callers.toml", [("checkout", "checkout-token", ["UpsertContact"])]
    )
    with ServiceHarness.start(database_url, auth_file=auth_file) as running:

        async def use(client: MarketingClient) -> None:
            await client.upsert_contact(builders.contact(unique_email("tok")))
            with pytest.raises(PermissionDeniedError) as denied:
                await client.get_queue_stats()
            assert denied.value.reason == "METHOD_NOT_ALLOWED"

        _with_client(running.address, use, token="checkout-token")

        async def anonymous(client: MarketingClient) -> None:
            with pytest.raises(UnauthenticatedError) as refused:
                await client.upsert_contact(builders.contact(unique_email("anon")))
            assert refused.value.reason == "MISSING_CREDENTIALS"

        _with_client(running.address, anonymous)


def test_mutual_tls_with_a_token(database_url: str, tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    auth_file = write_auth_file(tmp_path / "callers.toml", [("ops", "ops-token", ["*"])])
    with ServiceHarness.start(
        database_url,
        auth_file=auth_file,
        tls_cert=files["server_cert"],
        tls_key=files["server_key"],
        tls_client_ca=files["ca"],
    ) as running:
        tls = Tls.from_files(ca=files["ca"], cert=files["client_cert"], key=files["client_key"])

        async def use(client: MarketingClient) -> None:
            await client.get_queue_stats()

        _with_client(running.address, use, token="ops-token", tls=tls)
        without_cert = Tls.from_files(ca=files["ca"])
        with pytest.raises(UnavailableError):
            _with_client(
                running.address, use, token="ops-token", tls=without_cert, retry=FAST_RETRIES
            )


class _FlakyService(service_pb2_grpc.MarketingServiceServicer):
    """Fails the first `failures` calls with `code` (and `trailers`); remembers
    every request it was sent and when; sleeps `delay_s` before answering."""

    def __init__(
        self,
        failures: int,
        code: grpc.StatusCode,
        *,
        delay_s: float = 0.0,
        trailers: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        self.failures = failures
        self.code = code
        self.delay_s = delay_s
        self.trailers = trailers
        self.seen: list[Message] = []
        self.seen_at: list[float] = []

    async def _answer(
        self, request: Message, context: grpc.aio.ServicerContext[Any, Any], response: Message
    ) -> Any:
        self.seen.append(request)
        self.seen_at.append(time.monotonic())
        await asyncio.sleep(self.delay_s)
        if len(self.seen) <= self.failures:
            await context.abort(self.code, "not now", trailing_metadata=self.trailers)
        return response

    async def TrackEvent(
        self, request: service_pb2.TrackEventRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> service_pb2.TrackEventResponse:
        response = service_pb2.TrackEventResponse(event_id=request.event.event_id)
        return await self._answer(request, context, response)

    async def RecordConsent(
        self,
        request: service_pb2.RecordConsentRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> service_pb2.RecordConsentResponse:
        response = service_pb2.RecordConsentResponse(consent=request.consent)
        return await self._answer(request, context, response)

    async def RetryFailedDeliveries(
        self,
        request: service_pb2.RetryFailedDeliveriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> service_pb2.RetryFailedDeliveriesResponse:
        response = service_pb2.RetryFailedDeliveriesResponse(retried=3)
        return await self._answer(request, context, response)


def _against(
    service: _FlakyService,
    use: Callable[[MarketingClient], Awaitable[T]],
    *,
    server_options: tuple[tuple[str, int], ...] = (),
    **kw: Any,
) -> T:
    async def main() -> T:
        server = grpc.aio.server(options=server_options)
        service_pb2_grpc.add_MarketingServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with MarketingClient(f"127.0.0.1:{port}", **kw) as client:
                return await use(client)
        finally:
            await server.stop(0)

    return asyncio.run(main())


def _event_ids(service: _FlakyService) -> list[str]:
    return [request.event.event_id for request in service.seen]  # type: ignore[attr-defined]


def _status_trailer(*details: Message) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=14, message="not now")
    for detail in details:
        status.details.add().Pack(detail)
    return ((STATUS_DETAILS_KEY, status.SerializeToString()),)


def _open_and_close(target: str, times: int = 1, **kw: Any) -> None:
    """Creates the client(s) only: a channel connects at its first call."""

    async def main() -> None:
        for _ in range(times):
            await MarketingClient(target, **kw).close()

    asyncio.run(main())


@pytest.mark.parametrize(
    "target",
    [
        "marketing.internal:50051",
        "10.0.0.7:50051",
        "dns:///marketing.internal:50051",
        "[2001:db8::1]:50051",
        "ipv4:192.0.2.1:50051",
    ],
)
def test_a_token_in_clear_to_another_host_is_warned_about_once(target: str) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's own: once per message and line
        _open_and_close(target, times=3, token="secret-token")
    said = [str(w.message) for w in seen if issubclass(w.category, PlaintextTokenWarning)]
    assert len(said) == 1, said
    assert target in said[0] and "without TLS" in said[0] and "secret-token" not in said[0]


@pytest.mark.parametrize(
    ("target", "kw"),
    [
        ("127.0.0.1:50051", {"token": "t"}),
        ("127.3.2.1:50051", {"token": "t"}),
        ("localhost:50051", {"token": "t"}),
        ("[::1]:50051", {"token": "t"}),
        ("dns:///localhost:50051", {"token": "t"}),
        ("unix:/run/marketing.sock", {"token": "t"}),
        ("marketing.internal:50051", {}),  # no token, nothing to read
        ("marketing.internal:50051", {"token": "t", "tls": Tls()}),
    ],
)
def test_no_warning_on_this_host_over_tls_or_without_a_token(
    target: str, kw: dict[str, Any]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlaintextTokenWarning)
        _open_and_close(target, **kw)


def test_unavailable_is_retried_with_the_same_event_id() -> None:
    service = _FlakyService(failures=2, code=grpc.StatusCode.UNAVAILABLE)
    event = builders.placed_order("a@example.com")
    response = _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    ids = _event_ids(service)
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert response.event_id == ids[0] != ""
    assert event.event_id == ""  # the caller's message is left as it was


def test_consent_is_retried_with_the_same_request_id() -> None:
    service = _FlakyService(failures=2, code=grpc.StatusCode.UNAVAILABLE)
    consent = consent_pb2.Consent(type=consent_pb2.CONSENT_TYPE_EMAIL, granted=True, source="web")
    _against(service, lambda c: c.record_consent("contacts/1", consent), retry=FAST_RETRIES)
    request_ids = {request.request_id for request in service.seen}  # type: ignore[attr-defined]
    assert len(service.seen) == 3
    assert len(request_ids) == 1
    assert "" not in request_ids


def test_resource_exhausted_is_retried() -> None:
    service = _FlakyService(failures=1, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    event = builders.placed_order("a@example.com")
    _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert len(set(_event_ids(service))) == 1
    assert len(service.seen) == 2


def test_a_message_over_the_size_limit_is_not_retried() -> None:
    service = _FlakyService(failures=0, code=grpc.StatusCode.OK)
    event = builders.placed_order("a@example.com")
    event.placed_order.order.order_id = "x" * 2048
    with pytest.raises(ResourceExhaustedError) as caught:
        _against(
            service,
            lambda c: c.track_event(event),
            server_options=(("grpc.max_receive_message_length", 1024),),
            retry=FAST_RETRIES,
        )
    assert "larger than max" in caught.value.message
    assert service.seen == []


def test_retrying_failed_deliveries_is_never_repeated() -> None:
    service = _FlakyService(failures=1, code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(UnavailableError):
        _against(service, lambda c: c.retry_failed_deliveries(), retry=FAST_RETRIES)
    assert len(service.seen) == 1


def test_retries_stop_after_the_last_attempt() -> None:
    service = _FlakyService(failures=100, code=grpc.StatusCode.UNAVAILABLE)
    event = builders.placed_order("a@example.com")
    with pytest.raises(UnavailableError):
        _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert len(service.seen) == FAST_RETRIES.max_attempts


def test_the_service_s_retry_delay_is_waited_for() -> None:
    delay = error_details_pb2.RetryInfo(retry_delay={"nanos": 300_000_000})
    service = _FlakyService(
        failures=1, code=grpc.StatusCode.UNAVAILABLE, trailers=_status_trailer(delay)
    )
    event = builders.placed_order("a@example.com")
    _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert len(service.seen) == 2
    assert service.seen_at[1] - service.seen_at[0] >= 0.3


def test_when_no_time_is_left_for_a_retry_the_last_failure_is_raised() -> None:
    delay = error_details_pb2.RetryInfo(retry_delay={"seconds": 5})
    service = _FlakyService(
        failures=100, code=grpc.StatusCode.UNAVAILABLE, trailers=_status_trailer(delay)
    )
    event = builders.placed_order("a@example.com")
    with pytest.raises(UnavailableError) as caught:
        _against(service, lambda c: c.track_event(event, timeout_s=1), retry=FAST_RETRIES)
    assert caught.value.retry_delay_s == 5
    assert len(service.seen) == 1


def test_other_errors_are_not_retried() -> None:
    service = _FlakyService(failures=1, code=grpc.StatusCode.FAILED_PRECONDITION)
    event = builders.placed_order("a@example.com")
    with pytest.raises(FailedPreconditionError) as caught:
        _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert len(service.seen) == 1


def test_unreadable_error_details_still_give_the_status() -> None:
    service = _FlakyService(
        failures=1,
        code=grpc.StatusCode.FAILED_PRECONDITION,
        trailers=((STATUS_DETAILS_KEY, b"\xff\xff not a Status"),),
    )
    event = builders.placed_order("a@example.com")
    with pytest.raises(FailedPreconditionError) as caught:
        _against(service, lambda c: c.track_event(event), retry=FAST_RETRIES)
    assert caught.value.message == "not now"
    assert (caught.value.reason, caught.value.violations) == ("", ())


def test_the_deadline_covers_the_call() -> None:
    service = _FlakyService(failures=0, code=grpc.StatusCode.OK, delay_s=5.0)
    event = builders.placed_order("a@example.com")
    with pytest.raises(DeadlineExceededError):
        _against(service, lambda c: c.track_event(event, timeout_s=0.2))
