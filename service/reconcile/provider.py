"""Asking the provider about one person, through a dispatcher: only the
dispatcher talks to the provider, and the service never imports it, so the
question goes over core NATS as a request (marketing_runtime.topology,
READ_PERSON_SUBJECT) that one dispatcher replica answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from nats.errors import NoRespondersError, TimeoutError

from service.errors import FailedPreconditionError, UnavailableError

DEFAULT_READ_TIMEOUT_S = 10.0
# Of the timeout, what the read itself and the way there and back may take: the
# dispatcher is asked to wait for the provider's room at most the rest.
READ_ALLOWANCE_S = 3.0


class PersonReader(Protocol):
    async def read_person(self, email: str) -> bus_pb2.ProviderPersonRead | None:
        """The person as the provider holds them; None when it holds no such person.
        Raises UnavailableError or FailedPreconditionError when it cannot say."""
        ...


class BusPersonReader:
    """Reads through whichever dispatcher replica answers first."""

    def __init__(self, bus: Bus | None, *, timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> None:
        self._bus = bus
        self._timeout_s = timeout_s

    async def read_person(self, email: str) -> bus_pb2.ProviderPersonRead | None:
        nc = None if self._bus is None else self._bus.nc
        if nc is None:
            raise UnavailableError(dependency="bus", detail="not connected to NATS")
        request = bus_pb2.ReadPersonRequest(email=email)
        request.wait_at_most.FromTimedelta(timedelta(seconds=wait_at_most(self._timeout_s)))
        try:
            msg = await nc.request(
                topology.READ_PERSON_SUBJECT, request.SerializeToString(), timeout=self._timeout_s
            )
        except NoRespondersError as exc:
            raise _no_dispatcher("no dispatcher answered (is one running?)") from exc
        except TimeoutError as exc:
            # A dispatcher that cannot read in time says so at once (wait_at_most):
            # silence means none is running, or the provider itself did not answer.
            raise _no_dispatcher(
                f"no dispatcher answered within {self._timeout_s:g} s (is one running,"
                " and is the provider answering?)"
            ) from exc
        try:
            reply = bus_pb2.ReadPersonReply.FromString(msg.data)
        except DecodeError as exc:
            raise UnavailableError(
                dependency="dispatcher", detail="its answer is not a ReadPersonReply"
            ) from exc
        return person_of(reply)


def person_of(reply: bus_pb2.ReadPersonReply) -> bus_pb2.ProviderPersonRead | None:
    """The person a reply carries; the provider's error as ours."""
    result = reply.WhichOneof("result")
    if result == "person":
        return reply.person
    if result == "not_found":
        return None
    if result == "error" and reply.error.retryable:
        raise _provider_unavailable(reply.error)
    message = reply.error.message if result == "error" else "the dispatcher's answer is empty"
    raise FailedPreconditionError(
        reason="PROVIDER_REFUSED",
        subject="provider",
        description=f"the provider refused to read the person: {message}",
    )


def wait_at_most(timeout_s: float) -> float:
    """How long the dispatcher may wait for the provider's room for a read: the
    timeout less what the read itself takes (half the timeout when that is short)."""
    return max(timeout_s - READ_ALLOWANCE_S, timeout_s / 2)


def _provider_unavailable(error: bus_pb2.ReadPersonError) -> UnavailableError:
    retry_after_s = None
    if error.HasField("retry_after"):
        retry_after_s = error.retry_after.ToTimedelta().total_seconds()
    return UnavailableError(
        dependency="provider", detail=error.message, retry_after_s=retry_after_s
    )


def _no_dispatcher(detail: str) -> UnavailableError:
    return UnavailableError(dependency="dispatcher", detail=detail)
