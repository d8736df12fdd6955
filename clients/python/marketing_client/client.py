"""An async client of marketing.v1 with typed methods, deadlines and safe retries.

Every call has a deadline (the client's `timeout_s` unless the call passes its
own) that covers all its attempts. UNAVAILABLE (and RESOURCE_EXHAUSTED, the
service's "too busy, back off") are retried with exponential backoff and
jitter, waiting at least what the service's RetryInfo asks, always with the
very same request. Calls that would otherwise act twice carry an id the
service deduplicates by, filled in before the first attempt when the caller
left it empty (the event id of TrackEvent/TrackEvents, the request id of
RecordConsent/SubscribeNewsletter); the others are retried only where a second
application ends in the same state (see `_NEVER_RETRIED`).
Failures are raised as `MarketingError` subclasses carrying the bad fields.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from marketing.v1 import (
    consent_pb2,
    contact_pb2,
    contact_sync_pb2,
    event_pb2,
    service_pb2,
    service_pb2_grpc,
)

from marketing_client.errors import DeadlineExceededError, MarketingError, from_rpc_error
from marketing_client.plaintext import warn_if_token_in_clear

DEFAULT_TIMEOUT_S = 10.0
# Calls that a retry could apply twice with a different outcome: re-driving
# "all failed deliveries" again may re-drive ones that failed since the first.
_NEVER_RETRIED = frozenset({"RetryFailedDeliveries"})
# RESOURCE_EXHAUSTED also reports a message over the size limit: no retry helps.
_TOO_LARGE = "larger than max"

# Large enough for a TrackEvents batch of 1,000 events (the service's own limit is 32 MB).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = field(
        default=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
    )

    def backoff_s(self, retry: int) -> float:
        """Full jitter: a random wait up to the exponential bound of this retry."""
        bound = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return random.uniform(0, bound)


@dataclass(frozen=True)
class Tls:
    """TLS to the service: `ca` (PEM) to trust instead of the system's roots; a
    client certificate chain and its key (PEM) where the service asks for one
    (mutual TLS)."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    @classmethod
    def from_files(
        cls,
        *,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> Tls:
        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


class MarketingClient:
    """Use as `async with MarketingClient("host:50051", token=...) as client: ...`.
    `token` is sent as `authorization: Bearer <token>` with every call; `tls`
    speaks TLS (or pass your own `credentials`). A token sent without either to
    a host other than this one raises a `PlaintextTokenWarning`."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: Tls | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy = RetryPolicy(),
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        if tls is not None and credentials is not None:
            raise ValueError("pass tls or credentials, not both")
        if tls is not None:
            credentials = tls.credentials()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if credentials is None:
            if token is not None:
                warn_if_token_in_clear(target)
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub = service_pb2_grpc.MarketingServiceStub(self._channel)
        self._timeout_s = timeout_s
        self._retry = retry
        # Plain metadata rather than call credentials: these work on plaintext too.
        bearer = () if token is None else (("authorization", f"Bearer {token}"),)
        self._metadata = (*bearer, *metadata)

    async def __aenter__(self) -> MarketingClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    # Contacts

    async def upsert_contact(
        self, contact: contact_pb2.Contact, *, timeout_s: float | None = None
    ) -> service_pb2.UpsertContactResponse:
        """Create or update by email. (`created` reports the last attempt's view.)"""
        request = service_pb2.UpsertContactRequest(contact=contact)
        return await self._call("UpsertContact", request, timeout_s)  # type: ignore[no-any-return]

    async def get_contact(
        self, *, name: str = "", email: str = "", timeout_s: float | None = None
    ) -> contact_pb2.Contact:
        """By resource name (`contacts/{id}`) or email; NotFoundError if there is none."""
        if bool(name) == bool(email):
            raise ValueError("pass exactly one of name and email")
        request = (
            service_pb2.GetContactRequest(name=name)
            if name
            else service_pb2.GetContactRequest(email=email)
        )
        response = await self._call("GetContact", request, timeout_s)
        return response.contact  # type: ignore[no-any-return]

    async def list_contacts(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> service_pb2.ListContactsResponse:
        request = service_pb2.ListContactsRequest(page_size=page_size, page_token=page_token)
        return await self._call("ListContacts", request, timeout_s)  # type: ignore[no-any-return]

    async def iter_contacts(self, *, page_size: int = 100) -> AsyncIterator[contact_pb2.Contact]:
        """Every contact, page after page (each page a call with its own deadline)."""
        token = ""
        while True:
            page = await self.list_contacts(page_size=page_size, page_token=token)
            for contact in page.contacts:
                yield contact
            token = page.next_page_token
            if not token:
                return

    async def delete_contact(self, name: str, *, timeout_s: float | None = None) -> None:
        """Erase a contact. A retry after a lost answer may raise NotFoundError: it is gone."""
        await self._call("DeleteContact", service_pb2.DeleteContactRequest(name=name), timeout_s)

    async def reconcile_contact(
        self, *, name: str = "", email: str = "", timeout_s: float | None = None
    ) -> service_pb2.ReconcileContactResponse:
        """Compare the contact with the person the provider holds and queue the repair of any
        difference (ours wins). Safe to retry: the repair brings the provider to our state."""
        if bool(name) == bool(email):
            raise ValueError("pass exactly one of name and email")
        request = (
            service_pb2.ReconcileContactRequest(name=name)
            if name
            else service_pb2.ReconcileContactRequest(email=email)
        )
        return await self._call("ReconcileContact", request, timeout_s)  # type: ignore[no-any-return]

    # Consent

    async def record_consent(
        self,
        parent: str,
        consent: consent_pb2.Consent,
        *,
        request_id: str = "",
        timeout_s: float | None = None,
    ) -> consent_pb2.Consent:
        request = service_pb2.RecordConsentRequest(
            parent=parent, consent=consent, request_id=request_id or str(uuid.uuid4())
        )
        response = await self._call("RecordConsent", request, timeout_s)
        return response.consent  # type: ignore[no-any-return]

    async def list_consents(
        self,
        parent: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout_s: float | None = None,
    ) -> service_pb2.ListConsentsResponse:
        request = service_pb2.ListConsentsRequest(
            parent=parent, page_size=page_size, page_token=page_token
        )
        return await self._call("ListConsents", request, timeout_s)  # type: ignore[no-any-return]

    async def subscribe_newsletter(
        self,
        email: str,
        source: str,
        *,
        ip_address: str = "",
        user_agent: str = "",
        request_id: str = "",
        timeout_s: float | None = None,
    ) -> service_pb2.SubscribeNewsletterResponse:
        request = service_pb2.SubscribeNewsletterRequest(
            email=email,
            source=source,
            ip_address=ip_address,
            user_agent=user_agent,
            request_id=request_id or str(uuid.uuid4()),
        )
        return await self._call("SubscribeNewsletter", request, timeout_s)  # type: ignore[no-any-return]

    async def unsubscribe(
        self, email: str, *, reason: str = "", timeout_s: float | None = None
    ) -> bool:
        """True if this changed anything (a retry after a lost answer reports False)."""
        request = service_pb2.UnsubscribeRequest(email=email, reason=reason)
        response = await self._call("Unsubscribe", request, timeout_s)
        return bool(response.changed)

    # Events

    async def track_event(
        self, event: event_pb2.Event, *, timeout_s: float | None = None
    ) -> service_pb2.TrackEventResponse:
        """Track one event; an empty event id is filled in (the response says which)."""
        request = service_pb2.TrackEventRequest(event=_with_event_id(event))
        return await self._call("TrackEvent", request, timeout_s)  # type: ignore[no-any-return]

    async def track_events(
        self, events: Iterable[event_pb2.Event], *, timeout_s: float | None = None
    ) -> list[service_pb2.TrackEventResponse]:
        """Up to 1,000 events, all or nothing; one result per event, in order."""
        request = service_pb2.TrackEventsRequest(events=[_with_event_id(e) for e in events])
        response = await self._call("TrackEvents", request, timeout_s)
        return list(response.results)

    # The delivery queue

    async def get_queue_stats(
        self, *, timeout_s: float | None = None
    ) -> service_pb2.GetQueueStatsResponse:
        return await self._call("GetQueueStats", service_pb2.GetQueueStatsRequest(), timeout_s)  # type: ignore[no-any-return]

    async def list_failed_deliveries(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> service_pb2.ListFailedDeliveriesResponse:
        request = service_pb2.ListFailedDeliveriesRequest(
            page_size=page_size, page_token=page_token
        )
        return await self._call("ListFailedDeliveries", request, timeout_s)  # type: ignore[no-any-return]

    async def retry_failed_deliveries(
        self, names: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> int:
        """Queue failed deliveries again (all of them when `names` is empty); how many.
        Never retried: after UnavailableError, list them to see whether it happened."""
        request = service_pb2.RetryFailedDeliveriesRequest(names=list(names))
        response = await self._call("RetryFailedDeliveries", request, timeout_s)
        return int(response.retried)

    # The full contact sync

    async def start_contact_sync(
        self, *, request_id: str = "", timeout_s: float | None = None
    ) -> contact_sync_pb2.ContactSync:
        """Start a full sync; FailedPreconditionError (reason CONTACT_SYNC_RUNNING)
        while one runs. A retry after a lost answer returns the sync it started."""
        request = service_pb2.StartContactSyncRequest(request_id=request_id or str(uuid.uuid4()))
        response = await self._call("StartContactSync", request, timeout_s)
        return response.contact_sync  # type: ignore[no-any-return]

    async def get_contact_sync(
        self, name: str, *, timeout_s: float | None = None
    ) -> contact_sync_pb2.ContactSync:
        request = service_pb2.GetContactSyncRequest(name=name)
        response = await self._call("GetContactSync", request, timeout_s)
        return response.contact_sync  # type: ignore[no-any-return]

    async def list_contact_syncs(
        self, *, page_size: int = 0, page_token: str = "", timeout_s: float | None = None
    ) -> service_pb2.ListContactSyncsResponse:
        """Newest first."""
        request = service_pb2.ListContactSyncsRequest(page_size=page_size, page_token=page_token)
        return await self._call("ListContactSyncs", request, timeout_s)  # type: ignore[no-any-return]

    async def cancel_contact_sync(
        self, name: str, *, timeout_s: float | None = None
    ) -> contact_sync_pb2.ContactSync:
        request = service_pb2.CancelContactSyncRequest(name=name)
        response = await self._call("CancelContactSync", request, timeout_s)
        return response.contact_sync  # type: ignore[no-any-return]

    async def list_contact_sync_errors(
        self,
        parent: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout_s: float | None = None,
    ) -> service_pb2.ListContactSyncErrorsResponse:
        request = service_pb2.ListContactSyncErrorsRequest(
            parent=parent, page_size=page_size, page_token=page_token
        )
        return await self._call("ListContactSyncErrors", request, timeout_s)  # type: ignore[no-any-return]

    async def _call(self, method: str, request: Any, timeout_s: float | None) -> Any:
        loop = asyncio.get_running_loop()
        budget = self._timeout_s if timeout_s is None else timeout_s
        deadline = loop.time() + budget
        rpc = getattr(self._stub, method)
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DeadlineExceededError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, f"{method}: no answer within {budget} s"
                )
            try:
                return await rpc(request, timeout=remaining, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                if not self._retryable(method, error) or attempt >= self._retry.max_attempts:
                    raise error from exc
                wait_s = max(self._retry.backoff_s(attempt), error.retry_delay_s or 0.0)
                if loop.time() + wait_s >= deadline:
                    raise error from exc  # no time for another attempt: say why the last failed
                await asyncio.sleep(wait_s)

    def _retryable(self, method: str, error: MarketingError) -> bool:
        if method in _NEVER_RETRIED or error.code not in self._retry.codes:
            return False
        return not (
            error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in error.message
        )


def _with_event_id(event: event_pb2.Event) -> event_pb2.Event:
    """The event with an id, so that a retried call cannot track it twice
    (the caller's message is left as it was)."""
    if event.event_id:
        return event
    copy = event_pb2.Event()
    copy.CopyFrom(event)
    copy.event_id = str(uuid.uuid4())
    return copy
