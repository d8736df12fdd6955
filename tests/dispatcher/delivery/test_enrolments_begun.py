"""Many enrolments' beginnings in one message (KIND_ENROLMENTS_BEGUN), as the service
publishes a decision's: the enrolments worker sends each beginning as if it had come
alone (one bulk call for all of them with Klaviyo, an automation enrolment each with
ActiveCampaign), reports one result for the message, and fences the message once rather
than each enrolment. Each beginning is still fenced by its enrolment: one whose end was
applied is not sent, and an end in the same batch supersedes only its own beginning. When
some beginnings fail, the message fails naming them, and the others are fenced one by
one, so that its re-drive sends only the failed ones. Real nats-server, each provider's
sandbox over HTTP (the worker and helpers of test_enrolments.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.person_keys import person_key

from dispatcher.delivery.enrolment_changes import CALLS_IN_FLIGHT
from dispatcher.delivery.enrolments import PART_ROUNDS, EnrolmentsWorker
from dispatcher.delivery.ordered import parts_of
from dispatcher.delivery.outcomes import Outcome
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.bus_helpers import delivery
from tests.dispatcher.delivery.test_enrolments import (
    DELIVERED,
    FAILED,
    SUPERSEDED,
    Recording,
    _publish,
    _pull,
    activecampaign,
    automation_enrolments,
    change,
    deliver,
    deliver_handed_out,
    fence,
    klaviyo,
    person,
    with_worker,
)
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.providers.under_test import AC_ACTID, AC_EVENT_KEY, AC_KEY
from tests.processes import NatsServer


def begun(sequence: int, *changes: bus_pb2.Delivery) -> bus_pb2.Delivery:
    """One message of these changes' beginnings, as the outbox relay publishes a
    KIND_ENROLMENTS_BEGUN row (no person's key of its own)."""
    message = bus_pb2.EnrolmentsBegun(begun=[c.enrolment_changed for c in changes])
    return delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_ENROLMENTS_BEGUN,
        contact_key="",
        sequence=sequence,
        payload=message,
        created=datetime.now(UTC),
    )


def starting(email: str, sequence: int = 1, **fields: Any) -> bus_pb2.Delivery:
    """A beginning of a new enrolment of `email` (as a change alone: its parts go in `begun`)."""
    return change(email, str(uuid.uuid4()), sequence, active=True, **fields)


def ending(start: bus_pb2.Delivery, sequence: int, **fields: Any) -> bus_pb2.Delivery:
    """The end of `start`'s enrolment, keyed by its person as the service keys it."""
    ended = change(
        start.enrolment_changed.email,
        start.enrolment_changed.enrolment_id,
        sequence,
        active=False,
        **fields,
    )
    ended.contact_key = person_key(start.enrolment_changed.email)
    return ended


def enrolment_of(c: bus_pb2.Delivery) -> str:
    return c.enrolment_changed.enrolment_id


def begun_fence(nats: NatsServer, message: bus_pb2.Delivery) -> int | None:
    return fence(nats, topology.ENROLMENT_FENCES_BUCKET, f"flow.begun.{message.id}")


def enrolment_fence(nats: NatsServer, c: bus_pb2.Delivery) -> int | None:
    key = f"flow.{enrolment_of(c)}.{person_key(c.enrolment_changed.email)}"
    return fence(nats, topology.ENROLMENT_FENCES_BUCKET, key)


def test_klaviyo_a_message_of_many_beginnings_is_one_call_one_result_and_one_fence(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    starts = [starting(person()) for _ in range(300)]
    message = begun(7, *starts)

    outcomes, seen = deliver(
        own_nats, klaviyo(sandbox), [[message], [message]], lambda: len(sandbox.requests())
    )

    assert seen == [1, 1], "one bulk call; the message again sends nothing"
    assert [r["path"] for r in sandbox.requests()] == ["/api/event-bulk-create-jobs"]
    assert sandbox.event_counts() == {enrolment_of(s): 1 for s in starts}
    assert list(outcomes) == [message.id]
    assert outcomes[message.id].outcome == SUPERSEDED  # the second time, reported last
    assert begun_fence(own_nats, message) == 7
    assert enrolment_fence(own_nats, starts[0]) is None, "no fence per enrolment"


def test_klaviyo_an_end_supersedes_only_its_own_beginning_of_a_message(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """In one batch: the message of two beginnings, then the first one's end. The first
    beginning never reached Klaviyo, so its end sends nothing either; the second goes."""
    first, second = starting(person()), starting(person())
    message = begun(3, first, second)
    ended = ending(first, 4)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[message, ended]])

    assert [outcomes[d.id].outcome for d in (message, ended)] == [DELIVERED, DELIVERED]
    assert sandbox.event_counts() == {enrolment_of(second): 1}
    assert begun_fence(own_nats, message) == 3
    assert enrolment_fence(own_nats, first) == 4


def test_klaviyo_an_end_of_a_beginning_handed_out_before_sends_its_exit(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """The message was handed out before (a replica may have sent it and died before
    its fence moved), and comes again with its first beginning's end: that beginning
    is superseded, but its end's exit goes; the other beginning is sent."""
    first, second = starting(person()), starting(person())
    message = begun(3, first, second)
    ended = ending(first, 4)

    outcomes = deliver_handed_out(own_nats, klaviyo(sandbox), message, [ended])

    assert [outcomes[d.id].outcome for d in (message, ended)] == [DELIVERED, DELIVERED]
    assert sandbox.event_counts() == {
        enrolment_of(second): 1,
        f"{enrolment_of(first)}:exit": 1,
    }


def test_klaviyo_a_beginning_whose_end_was_applied_first_is_not_sent(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """The message comes after its first enrolment's end was applied (a redelivery after
    a failover, say): that beginning is dropped by its enrolment's fence, the other goes."""
    first, second = starting(person()), starting(person())
    message = begun(3, first, second)
    ended = ending(first, 4)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[ended], [message]])

    assert outcomes[message.id].outcome == DELIVERED
    assert sandbox.event_counts() == {
        f"{enrolment_of(first)}:exit": 1,
        enrolment_of(second): 1,
    }


def test_klaviyo_a_message_whose_beginnings_all_ended_is_superseded(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    start = starting(person())
    message = begun(3, start)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[message, ending(start, 4)]])

    assert outcomes[message.id].outcome == SUPERSEDED
    assert sandbox.requests() == []


def test_a_message_with_a_failed_beginning_fails_and_its_re_drive_sends_only_that_one(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """A beginning no provider could be sent (its context is no JSON object) fails the
    message, whose error names it; the others are delivered and fenced one by one, so the
    message re-driven by hand (a Nats-Msg-Id of its own) sends none of them again."""
    good = [starting(person()) for _ in range(2)]
    bad = starting(person(), context_json=b"[1, 2]")
    message = begun(5, good[0], bad, good[1])

    seen: list[Outcome] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, reporter: Recording) -> None:
        for msg_ids in ({}, {message.id: f"{message.id}.row.retry1"}):
            await _publish(bus, [message], msg_ids)
            await worker.handle(await _pull(bus, 1))
            seen.append(reporter.outcomes[message.id])

    with_worker(own_nats, klaviyo(sandbox), steps)
    first, again = seen

    assert first.outcome == again.outcome == FAILED
    assert first.error.startswith("1 of 3 beginnings failed: ")
    assert enrolment_of(bad) in first.error and "not a JSON object" in first.error
    assert sandbox.event_counts() == {enrolment_of(g): 1 for g in good}, "each good one once"
    assert begun_fence(own_nats, message) is None
    assert [enrolment_fence(own_nats, c) for c in (*good, bad)] == [5, 5, None]


def test_an_enrolments_message_without_beginnings_fails_at_once(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    message = begun(1)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[message]])

    assert outcomes[message.id].outcome == FAILED
    assert "without beginnings" in outcomes[message.id].error
    assert sandbox.requests() == []


def test_activecampaign_a_message_of_many_beginnings_enrols_each_with_one_result(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    automation = ac.add_automation("Back in stock")
    starts = [starting(person(), automation_id=automation) for _ in range(3)]
    message = begun(2, *starts)

    outcomes, _ = deliver(own_nats, activecampaign(ac), [[message]])

    assert outcomes[message.id].outcome == DELIVERED
    for s in starts:
        enrolled = automation_enrolments(ac, s.enrolment_changed.email)
        assert enrolled is not None and len(enrolled) == 1
    assert begun_fence(own_nats, message) == 2


def test_a_fetched_batch_is_handled_in_parts_of_what_the_calls_in_flight_carry() -> None:
    """Klaviyo's calls carry 1,000 beginnings, ActiveCampaign's one person: a fetch of
    thousands is handled (fenced, reported, acked) a part at a time, so an exit waits
    for one part, not the whole fetch; a message's beginnings stay in one part."""
    klaviyo_parts = PART_ROUNDS * CALLS_IN_FLIGHT * 1000
    assert _most_at_once(KlaviyoClient(API_KEY, base_url="http://unused")) == klaviyo_parts
    tracking = TrackingAccount(AC_ACTID, AC_EVENT_KEY, "http://unused")
    ac_parts = PART_ROUNDS * CALLS_IN_FLIGHT
    assert _most_at_once(ActiveCampaignClient("http://unused", AC_KEY, tracking)) == ac_parts
    messages = [["a"] * 3, ["b"] * 5, ["c"], ["d"] * 2]  # each message's pieces, as letters
    assert _parts(messages, 6) == [["a"] * 3, ["b"] * 5 + ["c"], ["d"] * 2]
    assert _parts(messages, None) == [["a"] * 3 + ["b"] * 5 + ["c"] + ["d"] * 2]
    assert _parts([["a"] * 7, ["b"]], 6) == [["a"] * 7, ["b"]]  # a message is never cut


def test_what_came_meanwhile_goes_on_in_the_same_parts_until_nothing_more_came() -> None:
    """`more()` is asked once the messages in hand are read (and again after each
    batch it gave), so a part left short by the batch fills from what came since."""
    later = [[["e"] * 2], [["c"], ["d"] * 4]]  # two batches came meanwhile (popped from the end)
    asked: list[int] = []

    async def more() -> list[list[str]]:
        asked.append(len(later))
        return later.pop() if later else []

    parts = _parts([["a"] * 3, ["b"] * 2], 6, more)

    assert parts == [["a"] * 3 + ["b"] * 2 + ["c"], ["d"] * 4 + ["e"] * 2]
    assert asked == [2, 1, 0], "asked again until it gave nothing"


def test_once_nothing_more_came_the_part_in_hand_goes_before_what_comes_is_awaited() -> None:
    """With nothing come meanwhile, the part in hand is given at once (its calls
    need not wait for what may come); asked for the next part, `awaited` waits
    for more, until it gives nothing."""
    order = _awaited_parts([["a"], ["b"]], [["c"] * 2, ["d"]], least=1)

    assert order == ["ab", "awaited", "cc", "awaited", "d", "awaited"]


def test_a_part_waited_for_goes_once_it_holds_a_calls_worth() -> None:
    """After the part in hand, what comes is gathered until it holds `least` pieces
    (a call's worth); short of it, it goes once `awaited` gives nothing."""
    order = _awaited_parts([["a"]], [["c"], ["d"] * 2, ["e"]], least=3)

    assert order == [
        *("a", "awaited", "awaited until", "cdd"),
        *("awaited", "awaited until", "e", "awaited"),
    ]


def test_a_part_waited_for_goes_short_once_its_time_is_up() -> None:
    """While the part before is still sent, a part short of `least` waits no longer
    than `gather_s` from its first piece (an exit waits no longer than a fetch's linger)."""
    order = _awaited_parts([["a"]], [["c"]], least=3, gather_s=0.05, calls_done=False)

    assert order == ["a", "awaited", "awaited until", "c", "awaited"]


def _awaited_parts(
    in_hand: list[list[str]],
    coming: list[list[str]],
    least: int,
    gather_s: float = 60.0,
    calls_done: bool = True,
) -> list[str]:
    """The parts of `in_hand` and of what comes, a message at each call of `awaited`
    (none comes meanwhile), in the order given and asked for ("awaited until": with
    a time to give up at). With nothing more to come, `awaited` gives none at once
    (the part before was sent) or, while `calls_done` is false, once its time is up."""
    order: list[str] = []
    still = list(reversed(coming))

    async def more() -> list[list[str]]:
        return []

    async def awaited(until: float | None) -> list[list[str]]:
        order.append("awaited" if until is None else "awaited until")
        if still:
            return [still.pop()]
        if until is not None and not calls_done:
            await asyncio.sleep(max(0.0, until - time.monotonic()))
        return []

    async def collect() -> None:
        async for part in parts_of(in_hand, list, 6, more, awaited, least, gather_s):
            order.append("".join(part))

    asyncio.run(collect())
    return order


def _parts(
    messages: list[list[str]],
    most: int | None,
    more: Callable[[], Awaitable[list[list[str]]]] | None = None,
) -> list[list[str]]:
    async def collect() -> list[list[str]]:
        return [part async for part in parts_of(messages, list, most, more)]

    return asyncio.run(collect())


def _most_at_once(provider: Provider) -> int | None:
    worker = EnrolmentsWorker.__new__(EnrolmentsWorker)
    worker._provider = provider
    return worker._most_at_once()
