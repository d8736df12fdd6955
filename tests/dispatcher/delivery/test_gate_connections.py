"""The gate and the provider client's HTTP pool (real nats-server, virtual clock):
no more stamped requests are in flight than the pool has connections, so a request
never waits in the pool after its stamp; a call waiting for room in a spent window
holds no connection; a connection is let go whatever ends the request; a request
carries its stamp, whose age its client notes as it leaves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import cast

import nats.errors
import pytest
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget
from dispatcher.budget.log import BucketLog
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.base import Leaving, current_stamp, still_fresh
from dispatcher.providers.errors import RetryableProviderError
from tests.dispatcher.budget.helpers import (
    EPOCH0,
    WatchedKV,
    bucket,
    budget_kv,
    entry_stamps,
    limits,
    run_on_clock,
)
from tests.dispatcher.helpers import given_back, stale_reservations
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

MARGIN_S = 0.1
TIE_S = 1e-5  # calls of one instant are stamped a hair apart (`budget.log`)
CONNECTIONS = 2
RATES = limits(
    {
        "unsubscribe": bucket("unsubscribe", (75, 1.0)),
        "create_events": bucket("create_events", (1, 1.0)),
        # One call in each second of the clock: a stamp taken in one second may find
        # the next one taken.
        "erase": bucket("erase", (1, 1.0), clock_aligned=True),
    }
)


class Pooled:
    """A gate with a budget of its own, in front of a pool of `connections` connections
    as httpx keeps one: a request that finds every connection busy waits for one."""

    def __init__(self, kv: KeyValue, clock: VirtualClock, connections: int = CONNECTIONS) -> None:
        self.clock, self.kv = clock, kv
        self.account = f"test-{uuid.uuid4().hex[:8]}"
        self.gate = ProviderGate(
            monotonic=clock.monotonic,
            sleep=clock.sleep,
            wall=lambda: EPOCH0 + clock.now,
            connections=connections,
        )
        self.gate.share(
            SharedBudget(
                kv,
                self.account,
                RATES,
                margin_s=MARGIN_S,
                epoch=lambda: EPOCH0 + clock.now,
                sleep=clock.sleep,
            )
        )
        self.pool = asyncio.Semaphore(connections)
        self.answer = asyncio.Event()  # every request in flight is answered when set
        self.sent: list[float] = []  # when each request had its connection (virtual s)

    async def call(self, operation: str = "unsubscribe") -> None:
        await self.gate.call(operation, 1, self._request)

    async def _request(self) -> None:
        async with self.pool:
            self.sent.append(self.clock.now)
            await self.answer.wait()

    async def stamps(self, bucket_name: str) -> list[float]:
        """The stamps the shared log kept (those given back are gone), virtual s."""
        return sorted(await entry_stamps(self.kv, f"{self.account}.{bucket_name}"))


async def _answered_at_once() -> None:
    pass


async def _until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Until the tasks, whose KV round trips are real I/O, bring `condition` about."""
    for _ in range(5000):
        met = condition()
        if met if isinstance(met, bool) else await met:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the calls never got there")


def test_a_request_waits_for_a_connection_before_its_stamp(own_nats: NatsServer) -> None:
    """Three calls, two connections, the first two answered a second later: the third
    goes then, on a stamp of then (its first, aged while it waited, is given back)."""
    clock = VirtualClock()
    stale_before = stale_reservations("unsubscribe")

    async def main() -> tuple[list[float], list[float]]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            calls = [asyncio.create_task(pooled.call()) for _ in range(3)]
            await _until(lambda: len(pooled.sent) == 2)

            async def all_stamped() -> bool:
                return len(await pooled.stamps("unsubscribe")) == 3

            await _until(all_stamped)  # the third is reserved, and finds no connection
            clock.now = 1.0
            pooled.answer.set()
            await asyncio.gather(*calls)
            return pooled.sent, await pooled.stamps("unsubscribe")

    sent, stamps = asyncio.run(main())
    assert sent == [0.0, 0.0, 1.0]
    assert len(stamps) == len(sent)
    for went, stamped in zip(sent, stamps, strict=True):
        assert -TIE_S <= went - stamped <= MARGIN_S / 2, (sent, stamps)
    assert stale_reservations("unsubscribe") == stale_before + 1


def test_a_call_waiting_for_room_holds_no_connection(own_nats: NatsServer) -> None:
    """One connection; a call of an endpoint whose second is spent waits for the next
    one without it, and a call of another endpoint goes meanwhile."""
    clock = VirtualClock()

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock, connections=1)
            pooled.answer.set()
            await pooled.call("create_events")  # its second's one call
            waiting = asyncio.create_task(pooled.call("create_events"))
            await _until(lambda: clock.sleepers() == 1)  # waiting for room, not a connection
            other = asyncio.create_task(pooled.call("unsubscribe"))
            await _until(other.done)  # at once: the clock has not moved
            assert not waiting.done()
            assert pooled.sent == [0.0, 0.0]
            await run_on_clock(clock, [waiting])
            return pooled.sent

    assert asyncio.run(main()) == [0.0, 0.0, pytest.approx(1.0, abs=0.02)]


@pytest.mark.parametrize("ending", ["refused", "called off", "failed"])
def test_a_connection_is_let_go_however_the_request_ends(own_nats: NatsServer, ending: str) -> None:
    """Two connections, and three requests ended in this way: a fourth still goes."""
    clock = VirtualClock()

    def guard() -> None:
        if ending == "called off":
            raise LookupError("the lease was lost")

    async def request() -> None:
        if ending == "refused":
            raise RetryableProviderError("503", status=503)
        raise ValueError("the answer could not be read")

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            pooled.answer.set()
            for _ in range(CONNECTIONS + 1):
                with pytest.raises((RetryableProviderError, LookupError, ValueError)):
                    await pooled.gate.call("unsubscribe", 1, request, guard=guard)
            await asyncio.wait_for(pooled.call(), timeout=30)  # a leak: it never goes
            return pooled.sent

    assert asyncio.run(main()) == [0.0]


def test_a_request_carries_its_stamp_whose_age_its_client_notes(own_nats: NatsServer) -> None:
    """Inside a call the gate reserved (and inside a request it paced) the request's
    operation and the age of its stamp are at hand for the client's `note_leaving`;
    outside, nothing."""
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []

    def note() -> None:
        stamp = current_stamp()
        assert stamp is not None
        seen.append((stamp.operation, stamp.age()))

    async def request() -> None:
        note()
        clock.now += 0.02  # the body took a while: the stamp is older as it leaves
        note()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            await pooled.gate.call("unsubscribe", 1, request)
            async with pooled.gate.pace("create_events", RATES.rates["create_events"]):
                note()
        assert current_stamp() is None

    asyncio.run(main())
    assert [operation for operation, _ in seen] == ["unsubscribe", "unsubscribe", "create_events"]
    assert [age for _, age in seen] == pytest.approx([0.0, 0.02, 0.0], abs=TIE_S)


def test_a_stamp_taken_again_before_the_request_goes_is_the_one_noted(
    own_nats: NatsServer,
) -> None:
    """The body took longer than half the margin: the reservation is taken again when
    the client asks whether it is still fresh, and the age the request notes is the
    new stamp's."""
    clock = VirtualClock()
    ages: list[float] = []
    stale_before = stale_reservations("unsubscribe")

    def note() -> None:
        stamp = current_stamp()
        assert stamp is not None
        ages.append(stamp.age())

    async def request() -> None:
        clock.now += MARGIN_S  # built slowly
        note()
        await still_fresh()
        note()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            await Pooled(kv, clock).gate.call("unsubscribe", 1, request)

    asyncio.run(main())
    assert ages == pytest.approx([MARGIN_S, 0.0], abs=TIE_S)
    assert stale_reservations("unsubscribe") == stale_before + 1


def test_a_request_stale_where_it_leaves_goes_on_a_stamp_taken_there(
    own_nats: NatsServer,
) -> None:
    """Where the request leaves (`http_pool.note_leaving`) its stamp had aged: with room
    at once, the gate exchanges it for one of now, keeping its connection. The budget
    then holds the new stamp alone, and the answer is noted on it."""
    clock = VirtualClock()
    stale_before = stale_reservations("unsubscribe")

    async def request() -> tuple[bool, float]:
        stamp = current_stamp()
        assert stamp is not None
        stamp.left(Leaving.NOT_SENT)  # its trace began: no byte of it went yet
        clock.now += MARGIN_S  # its connection took long to open
        assert not stamp.fresh()
        restamped = await stamp.restamp()
        stamp.left(Leaving.GONE)
        return restamped, stamp.age()

    async def main() -> tuple[tuple[bool, float], BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            went = await pooled.gate.call("unsubscribe", 1, request)
            await pooled.gate.call("unsubscribe", 1, _answered_at_once)  # its write
            # carries the first one's answer
            entry = await kv.get(f"{pooled.account}.unsubscribe")
            return went, BucketLog.decode(entry.value)

    (restamped, age), entry = asyncio.run(main())
    assert restamped and age == pytest.approx(0.0, abs=TIE_S)
    assert [s - EPOCH0 for s in entry.stamps] == pytest.approx([MARGIN_S] * 2, abs=TIE_S)
    assert entry.reached is not None and entry.reached[0] is not None  # answered
    assert stale_reservations("unsubscribe") == stale_before  # nothing renewed


def test_a_request_stale_where_it_leaves_with_no_room_then_is_reserved_again(
    own_nats: NatsServer,
) -> None:
    """Its stamp (at 0) aged into the next second, which another replica took: no room
    at once where it leaves, so nothing is exchanged; called off, its client's next look
    renews it: the old stamp is given back and a new one taken once a second has room."""
    clock = VirtualClock()
    stale_before = stale_reservations("erase")

    async def main() -> tuple[bool, list[float]]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            other = SharedBudget(
                kv, pooled.account, RATES, margin_s=MARGIN_S, epoch=lambda: EPOCH0 + clock.now
            )
            outcome: list[bool] = []

            async def request() -> None:
                stamp = current_stamp()
                assert stamp is not None
                stamp.left(Leaving.NOT_SENT)
                clock.now = 1.06  # past the next second's edge and the provider's skew
                await other.acquire("erase")
                outcome.append(await stamp.restamp())
                await still_fresh()  # as `http_pool.sent_in_time` does after a call-off
                stamp.left(Leaving.GONE)

            task = asyncio.create_task(pooled.gate.call("erase", 1, request))
            await run_on_clock(clock, [task])
            return outcome[0], await pooled.stamps("erase")

    restamped, stamps = asyncio.run(main())
    assert not restamped
    # The other replica's, and the renewed one in the second after (its edge and skew).
    assert stamps == pytest.approx([1.06, 2.05], abs=1e-3)
    assert stale_reservations("erase") == stale_before + 1


def test_a_request_stale_where_it_leaves_is_not_restamped_while_its_endpoint_is_paused(
    own_nats: NatsServer,
) -> None:
    """Its call was reserved; meanwhile another call of the endpoint was answered 503
    with a Retry-After, which pauses this replica's calls of it (a 429's pause is in the
    shared budget too). Where the request leaves, stale, its stamp is not taken again,
    though the budget has room: the pause holds."""
    clock = VirtualClock()

    async def main() -> list[bool]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            inside, throttled, outcome = asyncio.Event(), asyncio.Event(), []

            async def held() -> None:
                stamp = current_stamp()
                assert stamp is not None
                stamp.left(Leaving.NOT_SENT)
                inside.set()
                await throttled.wait()
                clock.now += MARGIN_S
                outcome.append(await stamp.restamp())

            async def refused() -> None:
                raise RetryableProviderError("unavailable", retry_after=5.0, status=503)

            holding = asyncio.create_task(pooled.gate.call("unsubscribe", 1, held))
            await inside.wait()  # reserved, its request under way
            with pytest.raises(RetryableProviderError):
                await pooled.gate.call("unsubscribe", 1, refused)
            throttled.set()
            await holding
            return outcome

    assert asyncio.run(main()) == [False]


def test_a_paced_request_whose_stamp_aged_is_reserved_again_in_its_buckets(
    own_nats: NatsServer,
) -> None:
    """A request the gate paced looks at its stamp before it goes, as a call's does:
    one that aged (the event loop was busy, say) is given back and taken again."""
    clock = VirtualClock()
    ages: list[float] = []
    stale_before = stale_reservations("create_events")

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            async with pooled.gate.pace("create_events", RATES.rates["create_events"]):
                clock.now += MARGIN_S
                stamp = current_stamp()
                assert stamp is not None and not stamp.fresh()
                await still_fresh()
                ages.append(stamp.age())
                assert stamp.fresh()

    asyncio.run(main())
    assert ages == pytest.approx([0.0], abs=TIE_S)
    assert stale_reservations("create_events") == stale_before + 1


def test_a_reservation_whose_request_went_is_never_given_back(own_nats: NatsServer) -> None:
    """Once a request has left on the call's stamp, a later look (a second request,
    which a reserved call does not make, or a task that inherited the stamp) finds it
    fresh however old: the budget keeps counting the request that went."""
    clock = VirtualClock()
    stale_before = stale_reservations("unsubscribe")
    looks: list[bool] = []

    async def request() -> None:
        stamp = current_stamp()
        assert stamp is not None
        stamp.left(Leaving.GONE)  # its first bytes are going (`http_pool.note_leaving`)
        clock.now += MARGIN_S
        looks.append(stamp.fresh())
        await still_fresh()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            await Pooled(kv, clock).gate.call("unsubscribe", 1, request)

    asyncio.run(main())
    assert looks == [True]
    assert stale_reservations("unsubscribe") == stale_before


# How a call ends: how far its request got (as its client's hook tells the stamp),
# the error it ends with (None: its guard calls it off), and whether its reservation
# still counts afterwards.
_ENDINGS: dict[str, tuple[tuple[Leaving, ...], Exception | None, bool]] = {
    "failed before any request": ((), ValueError("no body"), False),
    "called off by its guard": ((), None, False),
    "found no connection": (
        (Leaving.HANDED_OVER, Leaving.NOT_SENT),
        RetryableProviderError("connection refused"),
        False,
    ),
    "over a transport that traces nothing": (
        (Leaving.HANDED_OVER,),
        RetryableProviderError("no answer"),
        True,
    ),
    "left, then no answer": (
        (Leaving.HANDED_OVER, Leaving.NOT_SENT, Leaving.GONE),
        RetryableProviderError("no answer"),
        True,
    ),
    "answered with an error": ((), RetryableProviderError("503", status=503), True),
    "left, then told otherwise": (
        (Leaving.HANDED_OVER, Leaving.NOT_SENT, Leaving.GONE, Leaving.NOT_SENT),
        RetryableProviderError("no answer"),
        True,
    ),
}


@pytest.mark.parametrize("ending", list(_ENDINGS))
def test_a_reservation_whose_request_never_left_is_given_back(
    own_nats: NatsServer, ending: str
) -> None:
    """A call that ends before its request's first byte (its own error, its guard
    calling it off, no connection to be had) gives its places back to the budget at
    once; one whose request began to leave, may have, or was answered keeps
    counting."""
    clock = VirtualClock()
    leavings, error, kept = _ENDINGS[ending]

    def guard() -> None:
        if error is None:
            raise LookupError("the lease was lost")

    async def request() -> None:
        stamp = current_stamp()
        assert stamp is not None and error is not None
        for how in leavings:
            stamp.left(how)
        raise error

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            with pytest.raises(LookupError if error is None else type(error)):
                await pooled.gate.call("unsubscribe", 1, request, guard=guard)
            return await pooled.stamps("unsubscribe")

    assert asyncio.run(main()) == ([pytest.approx(0.0, abs=TIE_S)] if kept else [])


def test_a_call_cancelled_while_waiting_for_a_connection_gives_its_places_back(
    own_nats: NatsServer,
) -> None:
    """One connection, busy: a second call reserves, waits for it and is cancelled
    (its caller stopped): only the first call's request still counts."""
    clock = VirtualClock()
    given_back_before = given_back("unsubscribe")

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock, connections=1)
            first = asyncio.create_task(pooled.call())
            await _until(lambda: len(pooled.sent) == 1)
            second = asyncio.create_task(pooled.call())
            # Reserved, and waiting for the connection.
            await _until(lambda: bool(pooled.gate._connections._waiters))
            assert len(await pooled.stamps("unsubscribe")) == 2
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            pooled.answer.set()
            await first
            return await pooled.stamps("unsubscribe")

    assert asyncio.run(main()) == [pytest.approx(0.0, abs=TIE_S)]
    assert given_back("unsubscribe") == given_back_before + 1


@pytest.mark.parametrize("handed_over", [False, True])
def test_a_reservation_taken_again_is_given_back_once_and_only_if_unsent(
    own_nats: NatsServer, handed_over: bool
) -> None:
    """The request aged before it went and its reservation was taken again, then the
    call failed before the new one's request: the new one is given back. The first
    was given back as it was taken again, unless a request had been handed over on it
    that nothing traced (it may have gone): that one keeps counting."""
    clock = VirtualClock()

    async def request() -> None:
        stamp = current_stamp()
        assert stamp is not None
        if handed_over:
            stamp.left(Leaving.HANDED_OVER)
        clock.now += MARGIN_S  # built slowly
        await still_fresh()
        raise ValueError("no body")

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)
            with pytest.raises(ValueError):
                await pooled.gate.call("unsubscribe", 1, request)
            return await pooled.stamps("unsubscribe")

    assert asyncio.run(main()) == ([pytest.approx(0.0, abs=TIE_S)] if handed_over else [])


def test_a_paced_request_inside_a_reserved_call_is_refused(own_nats: NatsServer) -> None:
    """Its stamp would hide the call's: the call's request would go uncounted."""
    clock = VirtualClock()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            pooled = Pooled(kv, clock)

            async def request() -> None:
                async with pooled.gate.pace("create_events", RATES.rates["create_events"]):
                    pass

            with pytest.raises(AssertionError, match="a paced request in a reserved call"):
                await pooled.gate.call("unsubscribe", 1, request)

    asyncio.run(main())


class _GiveBacksFail(WatchedKV):
    """A KV that refuses every write taking a stamp out of an entry (a give-back), as
    one out of reach would be; reservations go through."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv)
        self._stamps: dict[str, int] = {}  # per key, in the last write let through
        self.refused = 0

    def before_write(self, key: str, value: bytes) -> None:
        stamps = len(BucketLog.decode(value).stamps)
        if stamps < self._stamps.get(key, 0):
            self.refused += 1
            raise nats.errors.TimeoutError
        self._stamps[key] = stamps


@pytest.mark.parametrize("aged", ["waiting for a connection", "building its body"])
def test_a_give_back_the_budget_refuses_leaves_the_call_to_go_on(
    own_nats: NatsServer, aged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reservation that aged before its request went is given back and taken again;
    should the budget be out of reach for the give-back, that is logged, the old one
    counts until its windows end (safe), and the call goes on the new one: the KV's
    error is not the call's."""
    clock = VirtualClock()

    async def request() -> str:
        if aged == "building its body":
            clock.now += MARGIN_S
            await still_fresh()
        return "sent"

    async def main() -> tuple[list[str], list[float], int]:
        async with budget_kv(own_nats.url) as kv:
            refusing = _GiveBacksFail(kv)
            pooled = Pooled(cast(KeyValue, refusing), clock, connections=1)
            if aged == "waiting for a connection":
                first = asyncio.create_task(pooled.call())
                await _until(lambda: len(pooled.sent) == 1)
                second = asyncio.create_task(pooled.gate.call("unsubscribe", 1, request))
                await _until(lambda: bool(pooled.gate._connections._waiters))
                clock.now += MARGIN_S  # the first request's answer is slow
                pooled.answer.set()
                await first
                result = await second
            else:
                result = await pooled.gate.call("unsubscribe", 1, request)
            return [result], await pooled.stamps("unsubscribe"), refusing.refused

    results, stamps, refused = asyncio.run(main())
    assert results == ["sent"]
    assert refused == 1
    assert len(stamps) == (3 if aged == "waiting for a connection" else 2)  # none given back
    assert "cannot give back a reservation not used" in caplog.text
