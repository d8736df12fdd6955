"""The dispatcher's answers to read_person requests (dispatcher/delivery/read_person.py):
through the provider gate to the sandbox, and over a real nats-server in a queue group."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import httpx
import nats
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology

from dispatcher.budget import SharedBudget
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.read_person import PersonReader
from dispatcher.providers.base import READ_PERSON
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.budget.helpers import EPOCH0, bucket, budget_kv, limits
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


def read_within(email: str, seconds: float) -> bytes:
    request = bus_pb2.ReadPersonRequest(email=email)
    request.wait_at_most.FromTimedelta(timedelta(seconds=seconds))
    return request.SerializeToString()


def test_a_read_the_budget_would_hold_past_its_caller_is_answered_at_once_unsent(
    sandbox: Sandbox, own_nats: NatsServer
) -> None:
    """Reads share a bucket of one call in 90 s here: the second read would wait 90 s, its
    caller five seconds. It is answered at once, retryable, with the wait, and the
    provider is not called; one whose caller waits longer than the budget does is read
    once there is room. (Not a minute: the sandbox's answers tell the budget where its
    minutes begin, on the wall clock, which this budget's virtual clock is not.)"""
    clock = VirtualClock()
    one_in_90_s = limits({READ_PERSON: bucket("profiles", (1, 90.0))})

    async def run() -> tuple[list[bus_pb2.ReadPersonReply], float]:
        async with (
            budget_kv(own_nats.url) as kv,
            KlaviyoClient(API_KEY, base_url=sandbox.base_url) as client,
        ):
            gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
            budget = SharedBudget(
                kv,
                f"test-{uuid.uuid4().hex[:12]}",
                one_in_90_s,
                epoch=lambda: EPOCH0 + clock.now,
                sleep=clock.sleep,
            )
            gate.share(budget)
            reader = PersonReader(client, gate, LIST, monotonic=clock.monotonic)
            first = await reader.answer(read_within("ada@example.com", 5))
            refused = await reader.answer(read_within("ada@example.com", 5))
            refused_at = clock.now
            patient = asyncio.create_task(reader.answer(read_within("ada@example.com", 120)))
            await clock.advance_until(patient.done, settle, limit_s=150)
            return [first, refused, await patient], refused_at

    async def settle() -> None:
        for _ in range(50):
            await asyncio.sleep(0.001)

    (first, refused, patient), refused_at = asyncio.run(run())
    assert first.WhichOneof("result") == "not_found"
    assert refused.error.retryable and refused_at == 0, "answered at once"
    assert 90 <= refused.error.retry_after.ToTimedelta().total_seconds() <= 90.5
    assert "try again in 90 s" in refused.error.message
    assert patient.WhichOneof("result") == "not_found"
    assert clock.now >= 90, "the patient read waited for room"
    assert len(sandbox.requests("/api/profiles")) == 2, "the refused read spent no call"


def test_a_read_whose_caller_stopped_waiting_meanwhile_is_not_sent(sandbox: Sandbox) -> None:
    """The room seen free was taken by the time the read's turn came, and the
    caller's wait ran out meanwhile: answered retryable, the provider not called."""
    clock = VirtualClock()

    async def run() -> bus_pb2.ReadPersonReply:
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as client:
            gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
            reader = PersonReader(client, gate, LIST, monotonic=clock.monotonic)

            async def throttled_meanwhile() -> None:  # a 429 to another read, say
                async def refused() -> None:
                    raise RetryableProviderError("429", status=429, retry_after=30)

                with contextlib.suppress(RetryableProviderError):
                    await gate.call(READ_PERSON, 1, refused)

            answering = asyncio.create_task(reader.answer(read_within("ada@example.com", 5)))
            await throttled_meanwhile()
            await clock.advance_until(answering.done, settle, limit_s=60)
            return await answering

    async def settle() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    reply = asyncio.run(run())
    assert reply.error.retryable and reply.error.HasField("retry_after")
    assert sandbox.requests("/api/profiles") == []
