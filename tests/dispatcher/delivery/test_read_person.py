"""The dispatcher's answers to read_person requests (dispatcher/delivery/read_person.py):
through the provider gate to the sandbox, and over a real nats-server in a queue group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import nats
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.read_person import PersonReader
from dispatcher.providers.base import READ_PERSON
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

T = TypeVar("T")
LIST = "NEWS01"


def request(email: str) -> bytes:
    return bus_pb2.ReadPersonRequest(email=email).SerializeToString()


def with_reader(sandbox: Sandbox, use: Callable[[PersonReader, ProviderGate], Awaitable[T]]) -> T:
    clock = VirtualClock()

    async def run() -> T:
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as client:
            gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
            return await use(PersonReader(client, gate, LIST), gate)

    return asyncio.run(run())


def test_a_person_comes_back_in_the_service_s_terms(sandbox: Sandbox, http: httpx.Client) -> None:
    http.post(
        "/_sandbox/profiles",
        json={
            "email": "ada@example.com",
            "first_name": "Ada",
            "properties": {"order_count": 3, "vip": True},
            "consent": {"email": "SUBSCRIBED"},
            "lists": [LIST],
        },
    )
    reply = with_reader(sandbox, lambda reader, _: reader.answer(request("ada@example.com")))
    person = reply.person
    assert (person.email, person.profile.first_name, person.profile.order_count) == (
        "ada@example.com",
        "Ada",
        3,
    )
    assert person.profile.custom_properties_json == b'{"vip":true}'
    assert (person.email_marketing, person.suppressed, person.newsletter_member) == (
        True,
        False,
        True,
    )
    assert not person.HasField("sms_marketing") or person.sms_marketing is False


def test_an_unknown_person_is_not_found(sandbox: Sandbox) -> None:
    reply = with_reader(sandbox, lambda reader, _: reader.answer(request("nobody@example.com")))
    assert reply.WhichOneof("result") == "not_found"


def test_a_throttled_read_pauses_its_endpoint_and_says_retryable(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    http.post("/_sandbox/faults", json={"path": "/api/profiles", "status": 429, "retry_after": 7})

    async def read(
        reader: PersonReader, gate: ProviderGate
    ) -> tuple[bus_pb2.ReadPersonReply, float]:
        reply = await reader.answer(request("ada@example.com"))
        return reply, gate.pause_left(READ_PERSON)

    reply, paused = with_reader(sandbox, read)
    assert reply.error.retryable and "HTTP 429" in reply.error.message
    assert paused == 7


def test_while_reads_are_paused_the_answer_comes_at_once(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    http.post("/_sandbox/faults", json={"path": "/api/profiles", "status": 429, "retry_after": 30})

    async def read_twice(reader: PersonReader, _: ProviderGate) -> bus_pb2.ReadPersonReply:
        await reader.answer(request("ada@example.com"))
        return await reader.answer(request("ada@example.com"))

    reply = with_reader(sandbox, read_twice)
    assert reply.error.retryable and "try again in 30 s" in reply.error.message
    assert len(sandbox.requests("/api/profiles")) + len(sandbox.rejections()) == 1


@pytest.mark.parametrize("data", [b"\xff\xff", request("")])
def test_a_request_without_an_email_is_refused(sandbox: Sandbox, data: bytes) -> None:
    reply = with_reader(sandbox, lambda reader, _: reader.answer(data))
    assert reply.WhichOneof("result") == "error" and not reply.error.retryable
    assert sandbox.requests() == [], "nothing was asked of the provider"


def test_one_replica_of_the_queue_group_answers_over_nats(
    sandbox: Sandbox, own_nats: NatsServer
) -> None:
    async def run() -> list[bus_pb2.ReadPersonReply]:
        nc = await nats.connect(own_nats.url)
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as client:
            readers = [PersonReader(client, ProviderGate(), LIST) for _ in range(2)]
            serving = [asyncio.create_task(r.serve(nc)) for r in readers]
            await nc.flush()
            try:
                replies = []
                for _ in range(3):
                    inbox = nc.new_inbox()
                    answers = await nc.subscribe(inbox)
                    await nc.publish(
                        topology.READ_PERSON_SUBJECT, request("x@example.com"), reply=inbox
                    )
                    replies.append(
                        bus_pb2.ReadPersonReply.FromString((await answers.next_msg(10)).data)
                    )
                    with pytest.raises(nats.errors.TimeoutError):  # no second answer
                        await answers.next_msg(0.3)
                return replies
            finally:
                for task in serving:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await nc.close()

    replies = asyncio.run(run())
    assert [r.WhichOneof("result") for r in replies] == ["not_found"] * 3
