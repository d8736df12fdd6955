"""The shared budget against a real nats-server, its replicas on one virtual clock:
together they never exceed a window however it is aligned, compliance work keeps
its share, a 429 pauses the bucket for every replica, a call costs few KV round
trips, and a window edge one replica's answer told serves them all."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import cast

import nats.errors
import pytest
from nats.js.kv import KeyValue
from prometheus_client import REGISTRY

from dispatcher.budget import SharedBudget, give_backs_settled
from dispatcher.budget.log import BucketLog, Edge
from dispatcher.providers.base import RateBucket, RateWindow, WindowReport
from tests.dispatcher.budget.helpers import (
    EPOCH0,
    WatchedKV,
    bucket,
    budget_kv,
    entry_stamps,
    limits,
    most_in_any_window,
    most_in_fixed_windows,
    new_account,
    replicas,
    run_on_clock,
)
from tests.dispatcher.helpers import given_back
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

TIE = 1e-4  # above log._TIE_S (1e-5), how far apart stamps of one instant may be
MARGIN_S = 0.1
BULK = limits({"events": bucket("event-bulk-create-jobs", (10, 1.0), (150, 60.0))})


async def _stamps(budget: SharedBudget, operation: str, count: int, **options: bool) -> list[float]:
    stamps: list[float] = []
    for _ in range(count):
        reservation = await budget.acquire(operation, **options)
        stamps.extend(stamp for _, stamp in reservation.stamps)
    return stamps


@pytest.mark.parametrize("count", [1, 2, 4])
def test_replicas_together_never_exceed_a_window_and_spend_it_all(
    own_nats: NatsServer, count: int
) -> None:
    clock = VirtualClock()

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            budgets = replicas(kv, BULK, clock, count, margin_s=MARGIN_S)
            tasks = [asyncio.create_task(_stamps(b, "events", 170 // count)) for b in budgets]
            await run_on_clock(clock, tasks)
            return sorted(s for task in tasks for s in task.result())

    stamps = asyncio.run(main())
    for calls, seconds in ((10, 1.0), (150, 60.0)):
        assert most_in_any_window(stamps, seconds + MARGIN_S) <= calls
        assert most_in_fixed_windows(stamps, seconds) <= calls
    # The whole budget is spent: the first minute's calls by bursts of 10 a second...
    assert stamps[149] - EPOCH0 < 150 / 10 * (1 + MARGIN_S) + 1
    # ...and the next one as soon as the first leaves the minute (and its margin).
    assert stamps[150] == pytest.approx(stamps[0] + 60 + MARGIN_S, abs=0.01)


def test_one_replica_reserves_with_one_round_trip(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            (budget,) = replicas(kv, BULK, clock, 1)
            await budget.acquire("events")  # the first creates the entry
            before = {op: _kv_ops(op) for op in ("get", "update", "conflict")}
            task = asyncio.create_task(_stamps(budget, "events", 20))
            await run_on_clock(clock, [task])
            used = {op: _kv_ops(op) - before[op] for op in before}
            assert used == {"get": 0, "update": 20, "conflict": 0}

    asyncio.run(main())


def _kv_ops(operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketing_dispatcher_budget_kv_operations_total", {"operation": operation}
    )
    return value or 0.0


SHARED = limits(
    {"sync": bucket("account", (5, 1.0)), "unsubscribe": bucket("account", (5, 1.0))},
    compliance=["unsubscribe"],
)


def test_compliance_work_keeps_its_share_of_a_shared_bucket(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def main() -> tuple[list[float], list[float]]:
        async with budget_kv(own_nats.url) as kv:
            bulk, compliance = replicas(kv, SHARED, clock, 2)
            syncing = asyncio.create_task(_stamps(bulk, "sync", 12))
            await _until_waiting(clock)  # the sync has taken what it may and waits
            unsubscribing = asyncio.create_task(_stamps(compliance, "unsubscribe", 1))
            await run_on_clock(clock, [syncing, unsubscribing])
            return syncing.result(), unsubscribing.result()

    sync, unsubscribe = asyncio.run(main())
    # (Calls reserved at one instant are stamped a hair apart: TIE.)
    assert [s - EPOCH0 for s in sync[:5]] == pytest.approx([0, 0, 0, 0, 1 + MARGIN_S], abs=TIE)
    assert unsubscribe == pytest.approx([EPOCH0], abs=TIE), "never waits behind the sync"
    assert most_in_any_window(sync, 1 + MARGIN_S) == 4, "bulk work leaves a call per second"
    assert most_in_any_window(sync + unsubscribe, 1 + MARGIN_S) <= 5


TWO = limits(
    {
        "events": bucket("event-bulk-create-jobs", (10, 1.0), (150, 60.0)),
        "unsubscribe": bucket("profile-subscription-bulk-delete-jobs", (75, 1.0)),
    }
)


def test_a_429_pauses_its_bucket_for_every_replica_and_no_other(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, float, float]:
        async with budget_kv(own_nats.url) as kv:
            throttled, other = replicas(kv, TWO, clock, 2)
            await throttled.throttled("events", 30)
            assert throttled.pause_left("events") == 30
            assert await other.fill_wait("events") == 30  # read afresh...
            assert other.pause_left("events") == 30  # ...and kept for the consume loop
            events = asyncio.create_task(_stamps(other, "events", 1))
            unsubscribe = asyncio.create_task(_stamps(other, "unsubscribe", 1))
            await run_on_clock(clock, [events, unsubscribe])
            return events.result()[0], unsubscribe.result()[0], other.pause_left("unsubscribe")

    events, unsubscribe, unsubscribe_pause = asyncio.run(main())
    assert (events - EPOCH0, unsubscribe - EPOCH0, unsubscribe_pause) == (30.0, 0.0, 0.0)


def test_a_batch_not_full_keeps_the_steady_pace(own_nats: NatsServer) -> None:
    """150 a minute: one call each 0.4 s for batches that are not full, while a
    full batch may use the burst window at once."""
    clock = VirtualClock()

    async def main() -> tuple[list[float], list[float], float]:
        async with budget_kv(own_nats.url) as kv:
            budget, other = replicas(kv, BULK, clock, 2)
            full = asyncio.create_task(_stamps(budget, "events", 3))
            await run_on_clock(clock, [full])
            fill_wait = await other.fill_wait("events")
            paced = asyncio.create_task(_stamps(other, "events", 3, paced=True))
            await run_on_clock(clock, [paced])
            return full.result(), paced.result(), fill_wait

    full, paced, fill_wait = asyncio.run(main())
    assert [s - EPOCH0 for s in full] == pytest.approx([0.0, 0.0, 0.0], abs=TIE)
    assert fill_wait == pytest.approx(0.4, abs=TIE)
    assert [s - EPOCH0 for s in paced] == pytest.approx([0.4, 0.8, 1.2], abs=TIE)


def test_a_reservation_given_back_frees_its_call(own_nats: NatsServer) -> None:
    clock = VirtualClock()
    one = limits({"erase": bucket("data-privacy-deletion-jobs", (1, 60.0))})

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            first, second = replicas(kv, one, clock, 2)
            await first.release(await first.acquire("erase"))
            task = asyncio.create_task(_stamps(second, "erase", 2))
            await run_on_clock(clock, [task])
            return task.result()

    assert [s - EPOCH0 for s in asyncio.run(main())] == pytest.approx([0.0, 60 + MARGIN_S])


def test_a_stale_stamp_is_exchanged_for_one_of_now_when_its_bucket_has_room(
    own_nats: NatsServer,
) -> None:
    """Where a request made late leaves (`restamped`): its stamp is taken out and one of
    now put in, and the request goes on that."""
    clock = VirtualClock()
    one = limits({"erase": bucket("data-privacy-deletion-jobs", (1, 60.0))})

    async def main() -> tuple[list[float], bool, list[float]]:
        async with budget_kv(own_nats.url) as kv:
            (budget,) = replicas(kv, one, clock, 1)
            reservation = await budget.acquire("erase")
            clock.now = 0.2  # stale: older than half the margin
            assert not budget.fresh(reservation)
            again, whole = await budget.restamped(reservation)
            assert budget.fresh(again)
            (key, _), (again_key, stamp) = reservation.stamps[0], again.stamps[0]
            assert again_key == key
            return [stamp - EPOCH0], whole, await entry_stamps(kv, key)

    new, whole, held = asyncio.run(main())
    assert whole and new == pytest.approx([0.2]) and held == new


# Counted sliding, a bucket still holding a stamp always has room for it again: each
# call admitted since counted it. So these tests take windows of the clock's seconds.


def test_a_stale_stamp_is_kept_when_its_bucket_has_no_room_now(own_nats: NatsServer) -> None:
    """The request's stamp (at 0) aged into the next second, which another replica
    took at 1.06: no room at once, so nothing changes (the request is called off, and
    reserved again waiting)."""
    clock = VirtualClock()
    one = limits({"erase": bucket("per-second", (1, 1.0), clock_aligned=True)})

    async def main() -> tuple[bool, list[float], list[float]]:
        async with budget_kv(own_nats.url) as kv:
            late, other = replicas(kv, one, clock, 2)
            reservation = await late.acquire("erase")
            clock.now = 1.06  # past the second's edge and the provider's skew
            await other.acquire("erase")
            again, whole = await late.restamped(reservation)
            assert again == reservation
            (key, _), *_ = reservation.stamps
            return whole, [s - EPOCH0 for _, s in again.stamps], await entry_stamps(kv, key)

    whole, held, entry = asyncio.run(main())
    assert not whole
    assert held == pytest.approx([0.0]) and entry == pytest.approx([0.0, 1.06])


def test_an_exchange_stopped_by_a_full_bucket_gives_back_the_new_stamps_it_took(
    own_nats: NatsServer,
) -> None:
    """`import` draws from the account (room) and bulk import (its next second taken): its
    account stamp was exchanged before bulk import was found full; the new one is given
    back, and only bulk import's old stamp is still held (the renewal gives it back)."""
    clock = VirtualClock()
    account = bucket("account", (5, 1.0))
    bulk_import = bucket("bulk_import", (1, 1.0), clock_aligned=True)
    rates = limits({"import": (*account, *bulk_import), "bulk": bulk_import})

    async def main() -> tuple[bool, list[str], dict[str, list[float]]]:
        async with budget_kv(own_nats.url) as kv:
            late, other = replicas(kv, rates, clock, 2)
            reservation = await late.acquire("import")
            # Young, but without a bucket's stamp: the request must not go on it.
            assert late.fresh(reservation)
            assert not late.fresh(replace(reservation, stamps=reservation.stamps[1:]))
            order = [key for key, _ in reservation.stamps]
            assert order[0].endswith(".bulk_import")  # the tightest first
            reservation = replace(reservation, plans=reservation.plans[::-1])
            clock.now = 1.06
            await other.acquire("bulk")
            again, whole = await late.restamped(reservation)
            assert not late.fresh(again)
            await give_backs_settled(30)
            entries = {key.rpartition(".")[2]: await entry_stamps(kv, key) for key in order}
            return whole, [key.rpartition(".")[2] for key, _ in again.stamps], entries

    whole, held, entries = asyncio.run(main())
    assert not whole and held == ["bulk_import"]
    assert entries["account"] == []
    assert entries["bulk_import"] == pytest.approx([0.0, 1.06])


def test_a_stamp_taken_at_the_steady_pace_is_exchanged_only_at_that_pace(
    own_nats: NatsServer,
) -> None:
    """A batch that was not full was reserved at the steady pace (a call every 0.4 s at
    150 a minute); another replica's call came after it: where the batch's request
    leaves, 0.1 s later, the pace has no room for it yet. Unpaced, it has."""
    clock = VirtualClock()

    async def main() -> tuple[bool, bool]:
        async with budget_kv(own_nats.url) as kv:
            late, other = replicas(kv, BULK, clock, 2)
            paced = await late.acquire("events", paced=True)
            unpaced = await late.acquire("events")
            clock.now = 0.05
            await other.acquire("events")
            clock.now = 0.1
            _, paced_went = await late.restamped(paced)
            _, unpaced_went = await late.restamped(unpaced)
            return paced_went, unpaced_went

    assert asyncio.run(main()) == (False, True)


class _SlowWrites(WatchedKV):
    """A replica's KV each of whose writes takes `seconds` of the virtual clock."""

    def __init__(self, kv: KeyValue, clock: VirtualClock, seconds: float) -> None:
        super().__init__(kv)
        self.clock, self.seconds = clock, seconds

    def before_write(self, key: str, value: bytes) -> None:
        self.clock.now += self.seconds


def test_an_exchange_gives_up_once_half_the_margin_has_gone_by(own_nats: NatsServer) -> None:
    """Each write takes 60 ms: after the first bucket's exchange, the second bucket is
    not tried (the first new stamp would be stale by then); the new stamp is given back
    and the request called off."""
    clock = VirtualClock()
    rates = limits({"import": (*bucket("account", (5, 1.0)), *bucket("bulk_import", (2, 1.0)))})
    given_back_before = given_back("import")

    async def main() -> tuple[bool, int]:
        async with budget_kv(own_nats.url) as kv:
            slow = _SlowWrites(kv, clock, 0.0)
            (budget,) = replicas(cast(KeyValue, slow), rates, clock, 1)
            reservation = await budget.acquire("import")
            clock.now, slow.seconds = 0.2, 0.06
            again, whole = await budget.restamped(reservation)
            await give_backs_settled(30)
            return whole, len(again.stamps)

    assert asyncio.run(main()) == (False, 1)
    assert given_back("import") == given_back_before + 1


def test_giving_back_a_stamp_the_bucket_no_longer_holds_writes_nothing(
    own_nats: NatsServer,
) -> None:
    """A give-back of a stamp already gone (given back, exchanged) looks once at the
    entry and writes nothing: a write would make the other replicas' next one a
    conflict. Another replica's write meanwhile does not change that."""
    clock = VirtualClock()
    one = limits({"erase": bucket("data-privacy-deletion-jobs", (5, 60.0))})

    async def main() -> dict[str, float]:
        async with budget_kv(own_nats.url) as kv:
            first, second = replicas(kv, one, clock, 2)
            reservation = await first.acquire("erase")
            await first.release(reservation)
            clock.now = 1.0  # (a stamp of the same instant would be the same number)
            await second.acquire("erase")
            before = {op: _kv_ops(op) for op in ("get", "update")}
            await first.release(reservation)
            return {op: _kv_ops(op) - before[op] for op in before}

    assert asyncio.run(main()) == {"get": 2, "update": 0}


class _AnswerHeld(WatchedKV):
    """A replica's KV whose writes reach the server at once and whose answers wait
    for `answer`: a write in flight as its caller is cancelled."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv)
        self.written = asyncio.Event()
        self.answer = asyncio.Event()
        self.keys: list[str] = []

    async def after_write(self, key: str) -> None:
        self.keys.append(key)
        self.written.set()
        await self.answer.wait()


def test_a_call_reserved_as_its_caller_is_cancelled_is_given_back(own_nats: NatsServer) -> None:
    """The write that takes the call reaches the KV and its caller is cancelled before
    the answer comes: the call is given back once the answer does (`give_backs_settled`
    waits for it), and another replica takes it at once (else it would wait out the
    minute)."""
    clock = VirtualClock()
    one = limits({"erase": bucket("data-privacy-deletion-jobs", (1, 60.0))})
    given_back_before = given_back("erase")

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            held, account = _AnswerHeld(kv), new_account()
            (cancelled,) = replicas(cast(KeyValue, held), one, clock, 1, account=account)
            (other,) = replicas(kv, one, clock, 1, account=account)
            acquiring = asyncio.create_task(cancelled.acquire("erase"))
            await held.written.wait()
            (key,) = held.keys
            assert BucketLog.decode((await kv.get(key)).value).stamps  # taken
            acquiring.cancel()
            with pytest.raises(asyncio.CancelledError):
                await acquiring
            held.answer.set()
            # As a closing dispatcher does: the round trips end, then the give-back
            # they set off, begun after this wait began.
            await give_backs_settled(30)
            assert not BucketLog.decode((await kv.get(key)).value).stamps  # given back
            task = asyncio.create_task(_stamps(other, "erase", 1))
            await run_on_clock(clock, [task])
            return task.result()

    assert [s - EPOCH0 for s in asyncio.run(main())] == pytest.approx([0.0])
    assert given_back("erase") == given_back_before + 1


def test_a_closing_process_waits_for_the_give_backs_under_way(own_nats: NatsServer) -> None:
    """`give_backs_settled` waits for a give-back under way, up to its timeout: then
    the process may close its NATS connection."""
    clock = VirtualClock()
    one = limits({"erase": bucket("data-privacy-deletion-jobs", (1, 60.0))})

    async def main() -> tuple[bool, bool, list[float]]:
        async with budget_kv(own_nats.url) as kv:
            held = _AnswerHeld(kv)
            (budget,) = replicas(cast(KeyValue, held), one, clock, 1)
            held.answer.set()
            reservation = await budget.acquire("erase")
            held.answer.clear()
            giving_back = budget.give_back(reservation)
            await give_backs_settled(0.05)
            done_by_timeout = giving_back.done()
            held.answer.set()
            await give_backs_settled(30)
            entry = await kv.get(reservation.stamps[0][0])
            return done_by_timeout, giving_back.done(), list(BucketLog.decode(entry.value).stamps)

    assert asyncio.run(main()) == (False, True, [])


class _SecondBucketFails(WatchedKV):
    """A replica's KV on which every write to the second bucket a call writes fails."""

    def __init__(self, kv: KeyValue) -> None:
        super().__init__(kv)
        self.keys: list[str] = []  # in the order first written

    def before_write(self, key: str, value: bytes) -> None:
        if key not in self.keys:
            self.keys.append(key)
        if len(self.keys) > 1 and key == self.keys[1]:
            raise nats.errors.TimeoutError


def test_a_call_whose_second_bucket_cannot_be_written_gives_the_first_back(
    own_nats: NatsServer,
) -> None:
    """The KV fails a round trip midway through a call of two buckets: the call fails,
    and the stamp already taken in the first bucket is given back, not left counted."""
    clock = VirtualClock()
    rates = limits({"import": (*bucket("account", (1, 1.0)), *bucket("bulk_import", (1, 60.0)))})

    async def main() -> list[int]:
        async with budget_kv(own_nats.url) as kv:
            failing = _SecondBucketFails(kv)
            (budget,) = replicas(cast(KeyValue, failing), rates, clock, 1)
            with pytest.raises(nats.errors.TimeoutError):
                await budget.acquire("import")
            first, _ = failing.keys
            return [len(BucketLog.decode((await kv.get(first)).value).stamps)]

    assert asyncio.run(main()) == [0]


def test_a_call_of_two_buckets_holds_no_stamp_while_it_waits_for_the_other(
    own_nats: NatsServer,
) -> None:
    """`import` draws from the account (1 a second) and bulk import (1 a minute, full):
    it waits a minute without holding the account's call, which `upsert` takes at
    once; then it is stamped in both at once."""
    clock = VirtualClock()
    account = bucket("account", (1, 1.0))
    bulk_import = bucket("bulk_import", (1, 60.0))
    rates = limits({"import": (*account, *bulk_import), "upsert": account})

    async def main() -> tuple[list[float], list[float]]:
        async with budget_kv(own_nats.url) as kv:
            first, second = replicas(kv, rates, clock, 2)
            await first.acquire("import")  # at 0: bulk import's minute is spent
            clock.now = 1.5  # the account's second (and its margin) is over
            importing = asyncio.create_task(_stamps(second, "import", 1))
            await _until_waiting(clock)  # it looked at both buckets and waits
            upserting = asyncio.create_task(_stamps(first, "upsert", 1))
            await run_on_clock(clock, [importing, upserting])
            return importing.result(), upserting.result()

    imported, upserted = asyncio.run(main())
    assert [s - EPOCH0 for s in upserted] == pytest.approx([1.5])
    assert [s - EPOCH0 for s in imported] == pytest.approx([60 + MARGIN_S] * 2, abs=1e-3)


async def _until_waiting(clock: VirtualClock) -> None:
    """Until a task sleeps on the virtual clock (it waits for the budget, not on I/O)."""

    async def waiting() -> bool:
        return clock.sleepers() > 0

    await eventually(waiting)


def test_an_edge_one_replica_was_told_lets_every_replica_begin_the_next_minute(
    own_nats: NatsServer,
) -> None:
    """One replica's first answer says the provider's minute ends in 20 s: once it
    has written the bucket, the other replica (reading it afresh) spends the next
    minute from the edge, instead of a minute after the first call."""
    clock = VirtualClock()

    async def main() -> list[float]:
        async with budget_kv(own_nats.url) as kv:
            told, other = replicas(kv, BULK, clock, 2)
            first = await told.acquire("events")
            told.answered(first)
            told.told(first, WindowReport(reset_s=20.0, seconds=60.0))
            task = asyncio.create_task(_stamps(told, "events", 149))
            await run_on_clock(clock, [task])
            later = asyncio.create_task(_stamps(other, "events", 10))
            await run_on_clock(clock, [later])
            return later.result()

    stamps = asyncio.run(main())
    # The edge lies within [19, 21] s (a second either way of the reset) and the skew:
    # the next minute's calls may go from 21 s on, at the burst rate of 10 a second.
    assert stamps[0] - EPOCH0 == pytest.approx(21.0, abs=0.05)
    assert most_in_any_window(stamps, 1.0 + MARGIN_S) <= 10
    width = REGISTRY.get_sample_value(
        "marketing_dispatcher_budget_window_edge_seconds", {"bucket": "event-bulk-create-jobs"}
    )
    assert width == pytest.approx(2.02, abs=0.01)  # a second either way, and the skew


def test_a_429_or_a_disagreeing_answer_leaves_no_edge_in_the_entry(own_nats: NatsServer) -> None:
    """An edge told, then a 429: the entry is paused without it, and this replica's next
    reservation does not write it back. Told again, then an answer that cannot be the
    same windows: dropped too."""
    clock = VirtualClock()

    async def main() -> tuple[Edge | None, Edge | None, Edge | None]:
        async with budget_kv(own_nats.url) as kv:
            (budget,) = replicas(kv, BULK, clock, 1)
            first = await budget.acquire("events")
            ((key, _),) = first.stamps
            budget.told(first, WindowReport(reset_s=20.0, seconds=60.0))
            await budget.throttled("events", 1.0)
            clock.now = 2.0
            budget.answered(await budget.acquire("events"))
            after_429 = await _edge_in_kv(kv, key)
            told = await budget.acquire("events")
            budget.told(told, WindowReport(reset_s=20.0, seconds=60.0))
            budget.answered(await budget.acquire("events"))
            learnt = await _edge_in_kv(kv, key)
            disagreeing = await budget.acquire("events")
            budget.told(disagreeing, WindowReport(reset_s=50.0, seconds=60.0))
            budget.answered(await budget.acquire("events"))
            dropped = await _edge_in_kv(kv, key)
            budget.answered(await budget.acquire("events"))  # and not written back later
            assert await _edge_in_kv(kv, key) is None
            return after_429, learnt, dropped

    after_429, learnt, after_disagreeing = asyncio.run(main())
    assert after_429 is None
    assert learnt is not None and learnt.lo <= EPOCH0 + 22.0 <= learnt.hi
    assert after_disagreeing is None


async def _edge_in_kv(kv: KeyValue, key: str) -> Edge | None:
    return BucketLog.decode((await kv.get(key)).value).edge


# Klaviyo's burst window, counted as beginning at whole seconds of the clock.
CLOCKED = limits(
    {
        "events": (
            RateBucket(
                "event-bulk-create-jobs",
                (RateWindow(10, 1.0, clock_aligned=True), RateWindow(150, 60.0)),
            ),
        )
    }
)


def test_a_429_has_every_replica_count_the_clocks_seconds_sliding(own_nats: NatsServer) -> None:
    """Ten calls half a second into a second: on the clock the 11th goes as the next
    second begins (its skew and the margin after), counted sliding a second after the
    first (and the margin). After one replica's 429 (a 1.5 s pause), the other counts
    the second sliding."""

    async def eleventh(throttle: bool) -> float:
        clock = VirtualClock()  # at a whole second
        async with budget_kv(own_nats.url) as kv:
            refused, other = replicas(kv, CLOCKED, clock, 2, margin_s=MARGIN_S)
            if throttle:
                await refused.throttled("events", 1.5)

            async def calls() -> list[float]:
                await clock.sleep(1.5)
                return await _stamps(other, "events", 11)

            task = asyncio.create_task(calls())
            await run_on_clock(clock, [task])
            return task.result()[-1] - EPOCH0

    assert asyncio.run(eleventh(throttle=False)) == pytest.approx(2.05, abs=0.01)
    assert asyncio.run(eleventh(throttle=True)) == pytest.approx(2.6, abs=0.01)
