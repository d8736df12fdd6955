"""A provider that paces its own requests (ActiveCampaign's `Limits`, real nats-server,
virtual clock): the gate reserves each HTTP request, not each call, in the buckets that
request names; tracked events leave the account's budget to other work; a 429 pauses
the bucket of the request it answered; the call's guard runs before every request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget
from dispatcher.budget.log import BucketLog
from dispatcher.budget.shared import DEFAULT_SKEW_S
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.activecampaign.limits import (
    API_BUCKETS,
    LIMITS,
    SUPPRESS,
    TRACKING_BUCKETS,
)
from dispatcher.providers.base import CREATE_EVENTS, UPSERT_PROFILE, RateBucket
from dispatcher.providers.errors import RetryableProviderError
from tests.dispatcher.budget.helpers import (
    EPOCH0,
    budget_kv,
    most_in_any_window,
    most_in_fixed_windows,
    run_on_clock,
)
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

MARGIN_S = 0.1
Request = tuple[str, tuple[RateBucket, ...]]  # (operation, buckets) of one HTTP request


class Replica:
    """A gate on the shared budget of `account`, and the requests its calls made."""

    def __init__(self, kv: KeyValue, account: str, clock: VirtualClock) -> None:
        self.clock = clock
        self.gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        self.budget = SharedBudget(
            kv,
            account,
            LIMITS,
            margin_s=MARGIN_S,
            epoch=lambda: EPOCH0 + clock.now,
            sleep=clock.sleep,
        )
        self.gate.share(self.budget)
        self.account = account
        self.sent: list[tuple[str, str, float]] = []  # (operation, first bucket, time)

    async def call(self, operation: str, requests: Sequence[tuple[RateBucket, ...]]) -> None:
        """One provider call of `operation` making these requests, as the client does:
        it sends each inside the pacer."""

        async def provider_call() -> None:
            for buckets in requests:
                async with self.gate.pace(operation, buckets):
                    self.sent.append((operation, buckets[0].name, self.clock.now))

        await self.gate.call(operation, 1, provider_call)

    def times(self, bucket: str) -> list[float]:
        return [EPOCH0 + t for _, name, t in self.sent if name == bucket]


async def _log(kv: KeyValue, account: str, bucket: str) -> BucketLog:
    entry = await kv.get(f"{account}.{bucket}")
    return BucketLog.decode(entry.value)


# Each call makes 1-3 requests to the account (an order: look, write; a first use of
# a field adds two), or a tracked event's one.
calls = st.lists(
    st.sampled_from([(UPSERT_PROFILE, 1), (UPSERT_PROFILE, 3), (CREATE_EVENTS, 2), (SUPPRESS, 2)]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=10, deadline=None)
@given(work=st.lists(calls, min_size=2, max_size=3))
def test_every_request_is_counted_and_replicas_keep_the_account_window(
    own_nats: NatsServer, work: list[list[tuple[str, int]]]
) -> None:
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[list[Replica], BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            replicas = [Replica(kv, account, clock) for _ in work]
            tasks = [
                asyncio.create_task(_calls(replica, its_calls))
                for replica, its_calls in zip(replicas, work, strict=True)
            ]
            await run_on_clock(clock, tasks)
            return replicas, await _log(kv, account, "account")

    replicas, account_log = asyncio.run(main())
    sent = sorted(t for replica in replicas for t in replica.times("account"))
    assert len(sent) == sum(n for its_calls in work for _, n in its_calls)
    # Every request has its own stamp, no call one more (the log keeps the last second's).
    recent = [t for t in sent if t > sent[-1] - (1 + MARGIN_S)]
    assert len(account_log.stamps) >= len(recent)
    assert most_in_any_window(sent, 1.0) <= 5  # whatever the alignment
    assert most_in_fixed_windows(sent, 1.0) <= 5


async def _calls(replica: Replica, its_calls: list[tuple[str, int]]) -> None:
    for operation, requests in its_calls:
        await replica.call(operation, [API_BUCKETS] * requests)


def test_tracked_events_leave_the_account_budget_to_other_work(own_nats: NatsServer) -> None:
    """Fifty tracked events (event tracking's 5/s: ten seconds) while another replica
    upserts twenty profiles: the upserts go at the account's pace open to them (4 of 5
    a second, one left to compliance work) as if no event were tracked."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Replica, Replica, BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            events, upserts = Replica(kv, account, clock), Replica(kv, account, clock)
            tasks = [
                asyncio.create_task(_repeat(events, CREATE_EVENTS, TRACKING_BUCKETS, 50)),
                asyncio.create_task(_repeat(upserts, UPSERT_PROFILE, API_BUCKETS, 20)),
            ]
            await run_on_clock(clock, tasks)
            return events, upserts, await _log(kv, account, "account")

    events, upserts, account_log = asyncio.run(main())
    tracked = events.times("event_tracking")
    assert len(tracked) == 50 and events.times("account") == []
    assert most_in_any_window(tracked, 1.0) <= 5  # whatever the alignment
    upserted = upserts.times("account")
    # 4 a second: the 20th in the fifth second (each second, and the skew allowed for
    # after each call's answer).
    assert upserted[-1] - EPOCH0 == pytest.approx(4 * (1 + DEFAULT_SKEW_S), abs=0.005)
    assert len(account_log.stamps) <= 20


async def _repeat(
    replica: Replica, operation: str, buckets: tuple[RateBucket, ...], count: int
) -> None:
    for _ in range(count):
        await replica.call(operation, [buckets])


def test_a_429_pauses_the_bucket_of_the_request_it_answered(own_nats: NatsServer) -> None:
    """An order's write refused with 429 pauses the account, for every replica, and
    not event tracking, though both are `create_events` buckets."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> Replica:
        async with budget_kv(own_nats.url) as kv:
            first, second = Replica(kv, account, clock), Replica(kv, account, clock)

            async def order_refused() -> None:
                async with first.gate.pace(CREATE_EVENTS, API_BUCKETS):
                    raise RetryableProviderError("429", status=429, retry_after=30)

            with pytest.raises(RetryableProviderError):
                await first.gate.call(CREATE_EVENTS, 1, order_refused)
            tasks = [
                asyncio.create_task(_repeat(second, CREATE_EVENTS, TRACKING_BUCKETS, 1)),
                asyncio.create_task(_repeat(second, UPSERT_PROFILE, API_BUCKETS, 1)),
            ]
            await run_on_clock(clock, tasks)
            return second

    second = asyncio.run(main())
    assert sorted(second.sent) == [
        (CREATE_EVENTS, "event_tracking", 0.0),
        (UPSERT_PROFILE, "account", pytest.approx(30.0)),
    ]


def test_the_guard_runs_before_every_request_of_a_call(own_nats: NatsServer) -> None:
    """A replica that lost its lease after an order's look does not write it."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"
    leases = iter([True, True, False])  # before the call, before the look, before the write

    def guard() -> None:
        if not next(leases):
            raise LookupError("the lease is lost")

    async def main() -> Replica:
        async with budget_kv(own_nats.url) as kv:
            replica = Replica(kv, account, clock)

            async def order() -> None:
                for step in ("look", "write"):
                    async with replica.gate.pace(CREATE_EVENTS, API_BUCKETS):
                        replica.sent.append((step, "account", clock.now))

            with pytest.raises(LookupError):
                await replica.gate.call(CREATE_EVENTS, 1, order, guard=guard)
            return replica

    assert [step for step, _, _ in asyncio.run(main()).sent] == ["look"]


def test_a_paced_provider_has_no_call_reserved_as_a_whole(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            replica = Replica(kv, f"test-{uuid.uuid4().hex[:8]}", clock)
            assert not replica.budget.covers(UPSERT_PROFILE)
            await replica.call(UPSERT_PROFILE, [])  # a call that needed no request
            with pytest.raises(KeyNotFoundError):  # nothing was reserved for it
                await kv.get(f"{replica.account}.account")
            await replica.call(UPSERT_PROFILE, [API_BUCKETS])
            assert len((await _log(kv, replica.account, "account")).stamps) == 1

    asyncio.run(main())
