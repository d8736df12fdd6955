"""Answers the service's requests to read one person back from the provider
(ReconcileContact): core NATS request/reply on `marketing.provider.read_person`,
in a queue group so one replica answers each request. The read passes the
provider gate like every other call, so it counts against the provider's budget
and waits out a Retry-After of its endpoint.

The caller waits a few seconds (`wait_at_most`), while a Retry-After or a full
budget (Klaviyo's profile lists endpoint: 3/s, 60/min) may ask for a minute: a read
that would wait longer than its caller is answered at once, retryable, with the
wait, and does not spend a call the caller would no longer hear about."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from nats.aio.client import Client
from nats.aio.msg import Msg

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.translate import contact_of
from dispatcher.providers.base import READ_PERSON, Provider, ProviderPerson
from dispatcher.providers.errors import ProviderError

log = logging.getLogger(__name__)


# How long a request that does not say (`wait_at_most` unset) may wait for its turn.
DEFAULT_WAIT_AT_MOST_S = 5.0
# The shortest retry_after a "too late" answer suggests: the read's turn came just late.
MIN_RETRY_AFTER_S = 1.0


class TooLate(Exception):
    """The caller's wait ran out before the read's turn came: it is not sent."""


class PersonReader:
    def __init__(
        self,
        provider: Provider,
        gate: ProviderGate,
        newsletter_list_id: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._gate = gate
        self._list_id = newsletter_list_id or None
        self._monotonic = monotonic
        self._answering: set[asyncio.Task[None]] = set()

    async def answer(self, data: bytes) -> bus_pb2.ReadPersonReply:
        """The reply to one serialized ReadPersonRequest."""
        try:
            request = bus_pb2.ReadPersonRequest.FromString(data)
        except DecodeError:
            return _error(False, "the request is not a ReadPersonRequest")
        if not request.email:
            return _error(False, "the request names no email")
        wait_at_most = _wait_at_most(request)
        deadline = self._monotonic() + wait_at_most
        wait = await self._gate.room_wait(READ_PERSON)
        if wait > wait_at_most:
            return _too_late(wait)
        try:
            found = await self._gate.call(
                READ_PERSON,
                1,
                lambda: self._provider.read_person(request.email, self._list_id),
                guard=lambda: self._in_time(deadline),
            )
        except TooLate:
            return _too_late(await self._gate.room_wait(READ_PERSON))
        except ProviderError as exc:
            return _error(exc.retryable, str(exc), retry_after=getattr(exc, "retry_after", None))
        if found is None:
            return bus_pb2.ReadPersonReply(not_found=True)
        try:
            return bus_pb2.ReadPersonReply(person=person_read(found))
        except ValueError as exc:  # e.g. text that is not valid UTF-8 for protobuf
            return _error(False, f"the provider's person cannot be read back: {exc}")

    def _in_time(self, deadline: float) -> None:
        """The gate's guard: another read may have taken the room this one saw."""
        if self._monotonic() > deadline:
            raise TooLate()

    async def serve(self, nc: Client) -> None:
        """Answer requests until cancelled. Each is answered in a task of its own:
        nats-py runs one subscription's callbacks one after the other, and a read
        waiting for the provider must not hold up the next."""
        try:
            subscription = await nc.subscribe(
                topology.READ_PERSON_SUBJECT, queue=topology.READ_PERSON_QUEUE, cb=self._on_request
            )
        except Exception as exc:  # the connection broke: the next one subscribes again
            log.warning("cannot answer read_person requests on this connection: %r", exc)
            return
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await subscription.unsubscribe()
            for task in list(self._answering):
                task.cancel()

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._respond(msg))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _respond(self, msg: Msg) -> None:
        reply = await self.answer(msg.data)
        try:
            await msg.respond(reply.SerializeToString())
        except Exception as exc:  # the connection broke: the service times out and says so
            log.warning("could not answer a read_person request: %r", exc)


def person_read(found: ProviderPerson) -> bus_pb2.ProviderPersonRead:
    read = bus_pb2.ProviderPersonRead(
        email=found.email,
        provider_id=found.provider_id,
        profile=contact_of(found.profile),
        suppressed=found.suppressed,
    )
    for name in ("email_marketing", "sms_marketing", "newsletter_member"):
        value = getattr(found, name)
        if value is not None:
            setattr(read, name, value)
    return read


def _wait_at_most(request: bus_pb2.ReadPersonRequest) -> float:
    if not request.HasField("wait_at_most"):
        return DEFAULT_WAIT_AT_MOST_S
    return max(0.0, request.wait_at_most.ToTimedelta().total_seconds())


def _too_late(wait_s: float) -> bus_pb2.ReadPersonReply:
    wait_s = max(wait_s, MIN_RETRY_AFTER_S)
    message = f"the provider's read limit is reached: try again in {wait_s:.0f} s"
    return _error(True, message, retry_after=wait_s)


def _error(
    retryable: bool, message: str, *, retry_after: float | None = None
) -> bus_pb2.ReadPersonReply:
    error = bus_pb2.ReadPersonError(retryable=retryable, message=message)
    if retryable and retry_after:
        error.retry_after.FromTimedelta(timedelta(seconds=retry_after))
    return bus_pb2.ReadPersonReply(error=error)
