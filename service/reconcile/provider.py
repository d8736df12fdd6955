"""Asking the provider about one person, through a dispatcher: only the
dispatcher talks to the provider, and the service never imports it, so the
question goes over core NATS as a request (marketing_runtime.topology,
READ_PERSON_SUBJECT) that one dispatcher replica answers."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from nats.errors import NoRespondersError, TimeoutError

from service.errors import FailedPreconditionError, UnavailableError

DEFAULT_READ_TIMEOUT_S = 10.0


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
        request = bus_pb2.ReadPersonRequest(email=email).SerializeToString()
        try:
            msg = await nc.request(topology.READ_PERSON_SUBJECT, request, timeout=self._timeout_s)
        except (TimeoutError, NoRespondersError) as exc:
            raise _no_dispatcher(self._timeout_s) from exc
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
        raise UnavailableError(dependency="provider", detail=reply.error.message)
    message = reply.error.message if result == "error" else "the dispatcher's answer is empty"
    raise FailedPreconditionError(
        reason="PROVIDER_REFUSED",
        subject="provider",
        description=f"the provider refused to read the person: {message}",
    )


def _no_dispatcher(timeout_s: float) -> UnavailableError:
    return UnavailableError(
        dependency="dispatcher",
        detail=f"no dispatcher answered within {timeout_s:g} s (is one running?)",
    )
