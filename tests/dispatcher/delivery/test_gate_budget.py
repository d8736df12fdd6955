"""The provider gate drawing from the shared budget (real nats-server, virtual
clock): calls wait for room, a 429 answered to one replica pauses that bucket for
every replica and no other, and a reservation that aged while another bucket of
the same call was full is given back and taken again."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget
from dispatcher.budget.log import BucketLog
from dispatcher.budget.shared import DEFAULT_SKEW_S
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.base import still_fresh
from dispatcher.providers.errors import RATE_LIMITED, RetryableProviderError
from tests.dispatcher.budget.helpers import EPOCH0, bucket, budget_kv, limits, run_on_clock
from tests.dispatcher.helpers import stale_reservations
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

MARGIN_S = 0.1
RATES = limits(
    {
        "create_events": bucket("event-bulk-create-jobs", (10, 1.0), (150, 60.0)),
        "unsubscribe": bucket("profile-subscription-bulk-delete-jobs", (75, 1.0)),
        "sync": bucket("account", (5, 1.0)),
        # As ActiveCampaign's bulk import: the account's calls and its own.
        "import": (*bucket("account", (5, 1.0)), *bucket("bulk_import", (1, 60.0))),
    }
)


class Replica:
    def __init__(self, kv: KeyValue, account: str, clock: VirtualClock) -> None:
        self.clock = clock
        self.gate = ProviderGate(
            monotonic=clock.monotonic, sleep=clock.sleep, wall=lambda: EPOCH0 + clock.now
        )
        self.budget = SharedBudget(
            kv,
            account,
            RATES,
            margin_s=MARGIN_S,
            epoch=lambda: EPOCH0 + clock.now,
            sleep=clock.sleep,
        )
        self.gate.share(self.budget)
        self.made: list[tuple[str, float]] = []

    async def call(self, operation: str, count: int = 1) -> None:
        for _ in range(count):
            await self.gate.call(operation, 1, lambda op=operation: self._made(op))  # type: ignore[misc]

    async def _made(self, operation: str) -> None:
        self.made.append((operation, self.clock.now))

    async def throttled(self, operation: str, retry_after: float) -> None:
        error = RetryableProviderError("429", status=429, retry_after=retry_after)
        await self.refused(operation, error)

    async def refused(self, operation: str, error: RetryableProviderError) -> None:
        async def refused() -> None:
            raise error

        with pytest.raises(RetryableProviderError):
            await self.gate.call(operation, 1, refused)


def test_calls_wait_for_the_budget_and_a_429_pauses_every_replica(own_nats: NatsServer) -> None:
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Replica, Replica]:
        async with budget_kv(own_nats.url) as kv:
            first, second = Replica(kv, account, clock), Replica(kv, account, clock)
            await first.call("create_events", 9)
            await first.throttled("create_events", 30)  # the 10th of the second
            calls = [
                asyncio.create_task(second.call("create_events")),
                asyncio.create_task(second.call("unsubscribe")),
            ]
            await run_on_clock(clock, calls)
            return first, second

    first, second = asyncio.run(main())
    assert first.made == [("create_events", 0.0)] * 9
    assert second.made == [("unsubscribe", 0.0), ("create_events", 30.0)]


def test_a_rate_limited_400_without_retry_after_pauses_every_replica_to_the_minute(
    own_nats: NatsServer,
) -> None:
    """As ActiveCampaign's bulk import answers its rate limit: 400, no Retry-After."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"
    limited = RetryableProviderError("Rate limit exceeded.", status=400, code=RATE_LIMITED)
    other = RetryableProviderError("HTTP 400", status=400, code="rate_limit")

    async def main() -> tuple[Replica, float | None]:
        async with budget_kv(own_nats.url) as kv:
            first, second = Replica(kv, account, clock), Replica(kv, account, clock)
            await first.refused("unsubscribe", other)  # another 400 pauses nothing
            clock.now = 15.0
            await first.refused("create_events", limited)
            task = asyncio.create_task(second.call("create_events"))
            await run_on_clock(clock, [task])
            return second, limited.retry_after

    second, retry_after = asyncio.run(main())
    assert retry_after == pytest.approx(45)
    [(operation, at)] = second.made
    assert operation == "create_events"
    assert at == pytest.approx(60.0)


def test_a_refusal_naming_its_buckets_pauses_only_those(own_nats: NatsServer) -> None:
    """Bulk import's rate limit stands for its own bucket, not the account's 5/s."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"
    account_bucket, import_bucket = RATES.rates["import"]
    limited = RetryableProviderError(
        "Rate limit exceeded.", status=400, code=RATE_LIMITED, buckets=(import_bucket,)
    )

    async def main() -> tuple[float, float]:
        async with budget_kv(own_nats.url) as kv:
            first, second = Replica(kv, account, clock), Replica(kv, account, clock)
            await first.refused("import", limited)
            await second.budget.fill_wait("import")  # reads the buckets afresh
            return (
                second.budget.pause_left("import", (account_bucket,)),
                second.budget.pause_left("import", (import_bucket,)),
            )

    account_pause, import_pause = asyncio.run(main())
    assert account_pause == 0.0
    assert import_pause == pytest.approx(60.0)


def test_a_call_waiting_for_one_bucket_holds_no_stamp_in_another(own_nats: NatsServer) -> None:
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"

    stale_before = stale_reservations("import")

    async def main() -> tuple[Replica, BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            replica = Replica(kv, account, clock)
            task = asyncio.create_task(replica.call("import", 2))
            await run_on_clock(clock, [task])
            entry = await kv.get(f"{account}.account")
            return replica, BucketLog.decode(entry.value)

    replica, account_log = asyncio.run(main())
    # The second import had the account's call at once but waited a minute for its
    # own bucket (from the first one's answer, and the skew): it took neither meanwhile
    # (a stamp held that long would have gone stale, given back), then both at once.
    resumed = pytest.approx(60 + DEFAULT_SKEW_S)
    assert replica.made == [("import", 0.0), ("import", resumed)]
    assert stale_reservations("import") == stale_before
    # (the first stamp has left the account's window: the log keeps no older one)
    assert [s - EPOCH0 for s in account_log.stamps] == [resumed]


def test_a_reservation_aged_while_the_body_was_built_is_taken_again(own_nats: NatsServer) -> None:
    """The provider client builds a large body (a job of 10,000 profiles) after the
    gate reserved the call: right before the request goes, a reservation that aged
    meanwhile is given back and taken again, so the request leaves on a fresh stamp."""
    clock = VirtualClock()
    account = f"test-{uuid.uuid4().hex[:8]}"
    stale_before = stale_reservations("unsubscribe")

    async def main() -> tuple[Replica, BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            replica = Replica(kv, account, clock)

            async def large_body() -> None:
                clock.now += 0.2  # building it took that long
                await still_fresh()
                await replica._made("unsubscribe")

            await replica.gate.call("unsubscribe", 1, large_body)
            entry = await kv.get(f"{account}.profile-subscription-bulk-delete-jobs")
            return replica, BucketLog.decode(entry.value)

    replica, log = asyncio.run(main())
    assert replica.made == [("unsubscribe", 0.2)]
    [stamp] = log.stamps
    assert 0.2 - (stamp - EPOCH0) == pytest.approx(0.0, abs=1e-5)
    assert stale_reservations("unsubscribe") == stale_before + 1
