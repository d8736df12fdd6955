"""A fetched batch in parts (OrderedWorker._handle_parts): the next part (of the batch, or
of what came meanwhile) read, checked against the fences and planned while a part's calls
are answered; sent before the part settles when the two share no person, else after it,
and checked again. Real nats-server and Klaviyo sandbox
(the worker and helpers of test_enrolments.py), parts of one message each."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from typing import Any

from marketing_runtime.connection import Bus
from marketing_runtime.person_keys import person_key
from nats.aio.msg import Msg

from dispatcher.delivery.enrolments import EnrolmentsWorker
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.ordered import Work
from dispatcher.providers.klaviyo.enrolments import EXIT_SUFFIX
from dispatcher.sandbox import Sandbox
from tests.dispatcher.delivery.test_enrolments import (
    DELIVERED,
    SUPERSEDED,
    Recording,
    _fetch,
    klaviyo,
    person,
    with_worker,
)
from tests.dispatcher.delivery.test_enrolments_begun import (
    ending,
    enrolment_fence,
    enrolment_of,
    starting,
)
from tests.processes import NatsServer

# Long enough for any loaded machine; only a worker that never reads ahead waits it out.
READ_AHEAD_WAIT_S = 30.0


def _one_message_a_part(worker: EnrolmentsWorker) -> None:
    worker._most_at_once = lambda: 1  # type: ignore[method-assign]


def test_the_next_part_is_read_while_a_parts_calls_are_answered(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    first, second = starting(person(), 1), starting(person(), 2)
    order: list[str] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        second_read = asyncio.Event()
        read, apply = worker._read, worker._apply

        def reading(msg: Msg) -> list[Work]:
            work = read(msg)
            if _carries(work, second):
                order.append("second part read")
                second_read.set()
            return work

        worker._read = reading  # type: ignore[method-assign]
        worker._apply = _first_held(apply, first, second_read, order, "part")  # type: ignore[method-assign, assignment]
        await worker.handle(await _fetch(bus, [first, second]))

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert order == ["first part's calls begin", "second part read", "first part's calls answered"]
    assert [outcomes[d.id].outcome for d in (first, second)] == [DELIVERED, DELIVERED]
    assert sandbox.event_counts() == {enrolment_of(first): 1, enrolment_of(second): 1}


def test_what_came_meanwhile_is_read_and_planned_while_a_parts_calls_are_answered(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """The consume loop's `more()` (what came for the next batch while this one
    was handled) goes on as the batch's next part: read, checked and its calls
    planned while the part before is sent, not after it settled; then sent, and
    each message settled once."""
    first, second = starting(person(), 1), starting(person(), 2)
    order: list[str] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        second_planned = asyncio.Event()
        plan, apply = worker._plan, worker._apply
        loop = asyncio.get_running_loop()

        def planning(segment: list[Work]) -> Any:  # in a thread of its own
            planned = plan(segment)
            if _carries(segment, second):
                order.append("second batch planned")
                loop.call_soon_threadsafe(second_planned.set)
            return planned

        worker._plan = planning  # type: ignore[method-assign]
        worker._apply = _first_held(apply, first, second_planned, order, "batch")  # type: ignore[method-assign, assignment]
        fetched = await _fetch(bus, [first, second])
        later = [fetched[1:]]

        async def more() -> list[Msg]:
            return later.pop() if later else []

        await worker.handle(fetched[:1], more)

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert order == [
        "first batch's calls begin",
        "second batch planned",
        "first batch's calls answered",
    ]
    assert [outcomes[d.id].outcome for d in (first, second)] == [DELIVERED, DELIVERED]
    assert sandbox.event_counts() == {enrolment_of(first): 1, enrolment_of(second): 1}


def test_what_comes_while_a_parts_calls_are_in_flight_is_the_next_part(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Nothing had come when the first part was read: `more()` is asked again
    while its calls are in flight, and what comes then is the batch's next part
    (sent in the same handling, not left to the next fetch)."""
    first, second = starting(person(), 1), starting(person(), 2)
    asked_in_flight: list[int] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        fetched = await _fetch(bus, [first, second])
        calls_began, second_came = asyncio.Event(), asyncio.Event()
        apply = worker._apply

        async def applying(segment: list[Work], held: Holding, plan: Any) -> None:
            if _carries(segment, first):  # unanswered until the second came, or for long
                calls_began.set()
                await _until_set(second_came)
            await apply(segment, held, plan)

        async def more() -> list[Msg]:
            if not calls_began.is_set() or second_came.is_set():
                return []
            asked_in_flight.append(1)
            if len(asked_in_flight) < 3:  # comes only at the third asking
                return []
            second_came.set()
            return fetched[1:]

        worker._apply = applying  # type: ignore[method-assign]
        await worker.handle(fetched[:1], more)

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert len(asked_in_flight) == 3
    assert [outcomes[d.id].outcome for d in (first, second)] == [DELIVERED, DELIVERED]
    assert sandbox.event_counts() == {enrolment_of(first): 1, enrolment_of(second): 1}


def _carries(segment: list[Work], delivery: Any) -> bool:
    return any(w.enrolment and w.enrolment.enrolment_id == enrolment_of(delivery) for w in segment)


def _first_held(
    apply: Any, first: Any, until: asyncio.Event, order: list[str], unit: str
) -> Callable[[list[Work], Holding, Any], Coroutine[Any, Any, None]]:
    """`apply`, but the calls of the segment carrying `first` stay unanswered until
    `until` is set (or for long), noted in `order` as they begin and are answered."""

    async def applying(segment: list[Work], held: Holding, plan: Any) -> None:
        if not _carries(segment, first):
            await apply(segment, held, plan)
            return
        order.append(f"first {unit}'s calls begin")
        await _until_set(until)
        await apply(segment, held, plan)
        order.append(f"first {unit}'s calls answered")

    return applying


async def _until_set(event: asyncio.Event) -> None:
    """Until `event` is set, or READ_AHEAD_WAIT_S passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), READ_AHEAD_WAIT_S)


def test_a_part_of_other_people_is_sent_before_the_part_before_settles(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Parts of different people: the second part's calls begin while the first
    part's are still in flight (not once it settled); the first settles beside
    them, and a third part begins only once the first has settled (two parts in
    flight at most). Each message settles once, delivered."""
    starts = [starting(person(), n) for n in (1, 2, 3)]
    order: list[str] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        second_began = asyncio.Event()
        apply, finish = worker._apply, worker._finish

        async def applying(segment: list[Work], held: Holding, plan: Any) -> None:
            (n,) = [n for n, s in enumerate(starts, 1) if _carries(segment, s)]
            order.append(f"part {n}'s calls begin")
            if n == 2:
                second_began.set()
            if n == 1:  # its calls stay unanswered until the second part's began, or for long
                await _until_set(second_began)
            await apply(segment, held, plan)

        async def finishing(live: list[Work], superseded: list[Work], held: Holding) -> None:
            (n,) = [n for n, s in enumerate(starts, 1) if _carries(live, s)]
            order.append(f"part {n} settled")
            await finish(live, superseded, held)

        worker._apply = applying  # type: ignore[method-assign]
        worker._finish = finishing  # type: ignore[method-assign]
        await worker.handle(await _fetch(bus, starts))

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    at = order.index
    assert at("part 1's calls begin") < at("part 2's calls begin") < at("part 1 settled")
    assert at("part 1 settled") < at("part 3's calls begin")
    assert sorted(order) == sorted(
        [f"part {n}'s calls begin" for n in (1, 2, 3)] + [f"part {n} settled" for n in (1, 2, 3)]
    )
    assert [outcomes[d.id].outcome for d in starts] == [DELIVERED] * 3
    assert sandbox.event_counts() == {enrolment_of(s): 1 for s in starts}


def test_no_part_begins_after_a_part_that_failed(own_nats: NatsServer, sandbox: Sandbox) -> None:
    """Parts of different people, the second failing at once (a bug, say): the
    third never begins, the first settles, and the batch goes back (raised)."""
    starts = [starting(person(), n) for n in (1, 2, 3)]
    began: list[int] = []
    raised: list[BaseException] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        apply = worker._apply

        async def applying(segment: list[Work], held: Holding, plan: Any) -> None:
            (n,) = [n for n, s in enumerate(starts, 1) if _carries(segment, s)]
            began.append(n)
            if n == 2:
                raise RuntimeError("part 2 fell over")
            await apply(segment, held, plan)

        worker._apply = applying  # type: ignore[method-assign]
        try:
            await worker.handle(await _fetch(bus, starts))
        except RuntimeError as exc:
            raised.append(exc)

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert began == [1, 2]
    assert [str(e) for e in raised] == ["part 2 fell over"]
    assert outcomes[starts[0].id].outcome == DELIVERED
    assert starts[2].id not in outcomes and starts[1].id not in outcomes


def test_a_shutdown_leaves_no_parts_calls_running(own_nats: NatsServer, sandbox: Sandbox) -> None:
    """Cancelled while two parts of other people have calls in flight (the first's
    unanswered), the handling stops them both: no part's calls run on unowned."""
    starts = [starting(person(), n) for n in (1, 2)]
    left: list[asyncio.Task[Any]] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        second_began, never = asyncio.Event(), asyncio.Event()

        async def applying(segment: list[Work], held: Holding, plan: Any) -> None:
            if _carries(segment, starts[1]):
                second_began.set()
            await never.wait()  # calls that are never answered

        worker._apply = applying  # type: ignore[method-assign]
        handling = asyncio.create_task(worker.handle(await _fetch(bus, starts)))
        await _until_set(second_began)
        assert second_began.is_set(), "the two parts were in flight together"
        handling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handling
        await asyncio.sleep(0)
        left.extend(t for t in asyncio.all_tasks() if t.get_name() == "apply-part" and not t.done())

    with_worker(own_nats, klaviyo(sandbox), steps)

    assert left == []


def test_a_part_is_checked_again_when_the_part_before_moved_its_persons_fence(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """An enrolment's end, then its beginning again (redelivered behind it), in parts of
    their own: the beginning, read while the end's calls were answered, found no fence;
    once the end settled its fence supersedes the beginning, which is never sent (it
    would enter the person at the provider after their exit)."""
    email = person()
    start = starting(email, 3)
    start.contact_key = person_key(email)  # the person's, as the end is
    end = ending(start, 5)

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        await worker.handle(await _fetch(bus, [end, start]))

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert [outcomes[d.id].outcome for d in (end, start)] == [DELIVERED, SUPERSEDED]
    assert sandbox.event_counts() == {enrolment_of(start) + EXIT_SUFFIX: 1}
    assert enrolment_fence(own_nats, start) == 5


def test_a_part_read_while_the_part_two_before_settled_is_checked_again(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """An end, another person's beginning, then the end's own beginning again
    (redelivered behind it), a part each: the third's fences are read while the
    first still settles (its fence not yet moved); once it has, the third is
    checked again and superseded, never sent."""
    email = person()
    start = starting(email, 3)
    start.contact_key = person_key(email)  # the person's, as the end is
    end, other = ending(start, 5), starting(person(), 6)

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        third_checked = asyncio.Event()
        applied, finish = worker._applied, worker._finish

        async def fences(work: list[Work]) -> list[int]:
            found = await applied(work)
            if any(w.enrolment and w.enrolment.active and _carries([w], start) for w in work):
                third_checked.set()  # the beginning's fence read (before the end's moved)
            return found

        async def finishing(live: list[Work], superseded: list[Work], held: Holding) -> None:
            if any(w.enrolment and not w.enrolment.active for w in live):  # the end's part
                await _until_set(third_checked)
            await finish(live, superseded, held)

        worker._applied = fences  # type: ignore[method-assign]
        worker._finish = finishing  # type: ignore[method-assign]
        await worker.handle(await _fetch(bus, [end, other, start]))

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert [outcomes[d.id].outcome for d in (end, other, start)] == [
        DELIVERED,
        DELIVERED,
        SUPERSEDED,
    ]
    assert sandbox.event_counts() == {
        enrolment_of(start) + EXIT_SUFFIX: 1,
        enrolment_of(other): 1,
    }


def test_parts_of_different_people_are_each_delivered_once_in_order(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    starts = [starting(person(), n) for n in range(1, 6)]
    end = ending(starts[0], 6)
    sent: list[Any] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        _one_message_a_part(worker)
        await worker.handle(await _fetch(bus, [*starts, end]))
        sent.extend(sandbox.requests())

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert [outcomes[d.id].outcome for d in (*starts, end)] == [DELIVERED] * 6
    assert sandbox.event_counts() == {
        **{enrolment_of(s): 1 for s in starts},
        enrolment_of(starts[0]) + EXIT_SUFFIX: 1,
    }
    begun_at = _request_carrying(sent, enrolment_of(starts[0]))
    ended_at = _request_carrying(sent, enrolment_of(starts[0]) + EXIT_SUFFIX)
    assert begun_at < ended_at, "the end went after its beginning"


def _request_carrying(requests: list[Any], unique_id: str) -> int:
    """The index of the request whose body carries the event `unique_id`."""
    (index,) = [i for i, r in enumerate(requests) if f'"{unique_id}"' in json.dumps(r["body"])]
    return index
