"""The consent stage of a full sync sends a batch's calls of every operation side by
side where the provider's calls of one person commute (Klaviyo), and one operation
after another where they may not: then a person's calls keep the plan's order."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import pytest
from marketing_runtime.clock import utc_now

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.sync_consent import SyncConsentWorker
from dispatcher.delivery.sync_stage import Chunk, Person, StageSettings
from dispatcher.providers.base import BulkCall, ConsentChange, ConsentState, Limits, Provider
from dispatcher.providers.klaviyo.consent_calls import SUBSCRIBE, UNSUBSCRIBE
from dispatcher.providers.klaviyo.limits import LIMITS


class _Planning:
    """A provider whose plan is one subscribe and one unsubscribe call, each telling
    `steps` when it goes (and, for the subscribe, when it is answered)."""

    def __init__(self, commute: bool) -> None:
        self.limits: Limits = dataclasses.replace(LIMITS, consent_calls_commute=commute)
        self.steps: list[str] = []
        self._unsubscribing = asyncio.Event()

    def plan_consent(self, states: Sequence[Any], list_id: str | None) -> list[BulkCall[Any]]:
        owners = [owner for owner, _ in states]
        return [
            BulkCall(SUBSCRIBE, owners, self._subscribe),
            BulkCall(UNSUBSCRIBE, owners, self._unsubscribe),
        ]

    async def _subscribe(self, owners: Sequence[Any]) -> None:
        self.steps.append("subscribe")
        if self.limits.consent_calls_commute:
            # Answered once the other operation's call went: never, were they in turn.
            await asyncio.wait_for(self._unsubscribing.wait(), 30)
        else:
            for _ in range(3):  # in flight a while: nothing else of the batch goes meanwhile
                await asyncio.sleep(0)
        self.steps.append("subscribed")

    async def _unsubscribe(self, owners: Sequence[Any]) -> None:
        self.steps.append("unsubscribe")
        self._unsubscribing.set()


class _Fences:
    async def applied_to(self, aspect: str, keys: Any) -> dict[str, int]:
        return {}


class _Held:
    def ensure_connected(self) -> None:
        pass


@pytest.mark.parametrize(
    ("commute", "expected"),
    [
        (True, ["subscribe", "unsubscribe", "subscribed"]),
        (False, ["subscribe", "subscribed", "unsubscribe"]),
    ],
)
def test_a_batchs_operations_go_side_by_side_only_where_a_persons_calls_commute(
    commute: bool, expected: list[str]
) -> None:
    provider = _Planning(commute)
    settings = StageSettings(
        connection_ended=asyncio.Event,
        max_attempts=1,
        backoff_base_s=0.05,
        keepalive_s=lambda: 30.0,
        clock=utc_now,
    )

    async def main() -> None:
        worker = SyncConsentWorker(
            cast(Provider, provider),
            cast(Any, None),  # the bus: the calls need none
            ProviderGate(),
            cast(Any, _Fences()),
            settings,
            newsletter_list_id=None,
        )
        chunk = Chunk(cast(Any, None), "sync", 1, 0)
        change = ConsentChange("ada@example.com", None, True, None)
        chunk.people.append(Person(chunk, change.email, consent=ConsentState(change, False, False)))
        await worker._work([chunk], cast(Holding, _Held()))

    asyncio.run(main())
    assert provider.steps == expected
