"""Bulk work on a compliance endpoint (a full sync's consent calls, sent with
`bulk=True`) leaves that endpoint's compliance share to live compliance work:
a real nats-server, Klaviyo's own limits, one virtual clock."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from dispatcher.budget import SharedBudget
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.klaviyo.consent_calls import UNSUBSCRIBE
from dispatcher.providers.klaviyo.limits import LIMITS
from tests.dispatcher.budget.helpers import EPOCH0, budget_kv, most_in_fixed_windows, run_on_clock
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

MARGIN_S = 0.1
SYNC_CALLS = 800  # more than the endpoint's minute (750) holds
LIVE_AT_S = 20.0  # mid-minute: the sync has taken all the minute lets it


@pytest.mark.parametrize("bulk", [True, False], ids=["sync-as-bulk", "sync-as-compliance"])
def test_a_live_unsubscribe_gets_a_call_while_a_sync_saturates_the_endpoint(
    own_nats: NatsServer, bulk: bool
) -> None:
    """Sent as bulk work, the sync stops short of the reserved share and the live
    unsubscribe goes at once; sent as compliance work (the control), it takes
    the whole minute and the live one waits for the next."""
    clock = VirtualClock()
    sync_calls: list[float] = []
    live_calls: list[float] = []

    async def made(calls: list[float]) -> None:
        calls.append(clock.now)

    async def main() -> None:
        async with budget_kv(own_nats.url) as kv:
            account = f"test-{uuid.uuid4().hex[:12]}"

            def replica() -> ProviderGate:
                gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
                budget = SharedBudget(
                    kv,
                    account,
                    LIMITS,
                    margin_s=MARGIN_S,
                    epoch=lambda: EPOCH0 + clock.now,
                    sleep=clock.sleep,
                )
                gate.share(budget)
                return gate

            syncing, live = replica(), replica()

            async def sync() -> None:
                for _ in range(SYNC_CALLS):
                    await syncing.call(UNSUBSCRIBE, 100, lambda: made(sync_calls), bulk=bulk)

            async def unsubscribe() -> None:
                await clock.sleep(LIVE_AT_S)
                await live.call(UNSUBSCRIBE, 1, lambda: made(live_calls))

            tasks = [asyncio.create_task(sync()), asyncio.create_task(unsubscribe())]
            await run_on_clock(clock, tasks)

    asyncio.run(main())

    (live_at,) = live_calls
    assert len(sync_calls) == SYNC_CALLS
    in_first_minute = [t for t in sync_calls if t < 60]
    if bulk:
        assert live_at == pytest.approx(LIVE_AT_S), "the reserved share: no wait"
        # 750 a minute, of which 113 (15 %) are reserved; 75 a second, 12 reserved.
        assert len(in_first_minute) == 637
        assert most_in_fixed_windows(sync_calls, 1.0) <= 63  # Klaviyo's seconds: the clock's
    else:
        assert len(in_first_minute) == 750
        assert live_at > 60, "behind the sync until the minute frees a call"
