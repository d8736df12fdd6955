"""The catalogue refresher: the replica holding the catalogue lease (topology.CATALOGUE_LEASE)
reads the provider's campaigns and flows, with their figures, every `interval_s`
(MARKETING_CATALOGUE_REFRESH_S) and publishes them for the service (ProviderCatalogue on
topology.CATALOGUE_SUBJECT), which keeps them in its campaign cache.

When a refresh is due is kept in the leases bucket (topology.CATALOGUE_REFRESHED_KEY), so a
replica taking the lease over does not read again before then. Every call passes the
provider gate like the dispatcher's other calls: each endpoint's shared budget holds the
replicas together within the provider's windows (Klaviyo's reporting endpoints: 1/s, 2/min,
225/day), and a 429 pauses only the endpoint it answered. The steps that read figures
(dispatcher/providers/catalogue.py) are skipped when their endpoint could not take a call
within `figures_wait_s`, or fail: the catalogue goes out without those figures and the
service keeps the ones it had. A listing that fails fails the refresh: it is tried again
`RETRY_S` later (or sooner, at the interval).

One refresh at Klaviyo costs 2 + pages of get_campaigns, pages of get_flows, one report of
each kind (and, until found, pages of get_metrics): at the default 600 s, 144 reports of each
kind a day, within the 225.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from functools import partial

from marketing_runtime import topology
from marketing_runtime.clock import Clock, Sleep, pause
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from dispatcher import metrics
from dispatcher.catalogue.messages import catalogue_messages, counts, message_id
from dispatcher.delivery.gate import ProviderGate
from dispatcher.ordering.lease import Lease
from dispatcher.providers.catalogue import CatalogueDraft, CatalogueSource, CatalogueStep
from dispatcher.providers.errors import ProviderError

log = logging.getLogger(__name__)
DEFAULT_INTERVAL_S = 600.0
# The longest a figures step may wait for its endpoint's budget: Klaviyo's reports allow 2
# calls a minute, so a minute (and the budget's margin) when the minute is spent; beyond it
# (the day's 225 spent, a long Retry-After) the refresh goes without those figures.
DEFAULT_FIGURES_WAIT_S = 65.0
# How often the lease and the due time are looked at, at most (or the interval, when
# shorter); and the wait after a failure.
CHECK_S = 5.0
RETRY_S = 60.0
PUBLISH_TIMEOUT_S = 10.0


class LeaseLost(Exception):
    """The catalogue lease lapsed during a refresh: what was read is not published."""


class CatalogueRefresher:
    def __init__(
        self,
        source: CatalogueSource,
        gate: ProviderGate,
        lease: Lease,
        bus: Bus,
        leases: KeyValue,
        *,
        provider: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        figures_wait_s: float = DEFAULT_FIGURES_WAIT_S,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._source, self._gate, self._lease = source, gate, lease
        self._bus, self._leases = bus, leases
        self._provider = provider
        self._interval_s, self._figures_wait_s = interval_s, figures_wait_s
        self._clock, self._sleep = clock, sleep
        self._retry_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh whenever due while holding the lease, until `stop`. Never raises: a
        failure is logged and the refresh tried again later."""
        while not stop.is_set():
            await pause(stop, await self._tick(), self._sleep)

    async def _tick(self) -> float:
        """One look: refresh if ours and due; the seconds until the next look."""
        check_s = min(CHECK_S, self._interval_s)
        if not self._lease.held():
            return check_s
        try:
            left = await self._due_in()
            if left > 0:
                return min(left, check_s)
            await self.refresh()
        except Exception as exc:  # the loop must outlive any failure
            metrics.CATALOGUE_REFRESHES.labels("failed").inc()
            log.warning("catalogue refresh failed (%r); trying again later", exc)
            self._retry_at = self._clock()
            return min(RETRY_S, self._interval_s)
        return check_s

    async def _due_in(self) -> float:
        """Seconds until a refresh is due: the interval after the last one published, by
        any replica; after a failure of this one's, RETRY_S after it."""
        now = self._clock().timestamp()
        try:
            entry = await self._leases.get(topology.CATALOGUE_REFRESHED_KEY)
            last = float(json.loads(entry.value or b"{}").get("at", 0.0))
        except KeyNotFoundError:
            last = 0.0
        due = last + self._interval_s
        if self._retry_at is not None:
            due = min(due, self._retry_at.timestamp() + min(RETRY_S, self._interval_s))
        return due - now

    async def refresh(self) -> CatalogueDraft:
        """Read the catalogue, publish it, and note when; what was read."""
        started = self._clock()
        draft = CatalogueDraft()
        for step in self._source.catalogue_steps():
            if step.needed(draft):
                await (self._figures(step, draft) if step.figures else self._list(step, draft))
        self._guard()
        await self._publish(draft, started)
        await self._leases.put(
            topology.CATALOGUE_REFRESHED_KEY,
            json.dumps({"at": started.timestamp()}).encode(),
        )
        self._retry_at = None
        metrics.CATALOGUE_REFRESHES.labels("published").inc()
        return draft

    async def _list(self, step: CatalogueStep, draft: CatalogueDraft) -> None:
        await self._gate.call(step.operation, 1, partial(step.run, draft), guard=self._guard)

    async def _figures(self, step: CatalogueStep, draft: CatalogueDraft) -> None:
        """Run a figures step unless its endpoint is far off; a failure only skips it."""
        wait = await self._gate.room_wait(step.operation)
        if wait > self._figures_wait_s:
            self._skip(step, draft, f"the provider's limit allows it in {wait:.0f} s")
            return
        try:
            await self._list(step, draft)
        except ProviderError as exc:
            self._skip(step, draft, str(exc))

    def _skip(self, step: CatalogueStep, draft: CatalogueDraft, why: str) -> None:
        draft.skipped.append(step.operation)
        metrics.CATALOGUE_FIGURES_SKIPPED.labels(step.operation).inc()
        log.info("catalogue refresh: %s skipped: %s", step.operation, why)

    def _guard(self) -> None:
        if not self._lease.held():
            raise LeaseLost()

    async def _publish(self, draft: CatalogueDraft, started: datetime) -> None:
        nc, js = self._bus.nc, self._bus.js
        if nc is None or js is None:
            raise ConnectionError("NATS is not connected: cannot publish the catalogue")
        messages = catalogue_messages(self._provider, started, draft, nc.max_payload)
        for message in messages:
            headers = {MSG_ID_HEADER: message_id(message)}
            await js.publish(
                topology.CATALOGUE_SUBJECT,
                message.SerializeToString(),
                timeout=PUBLISH_TIMEOUT_S,
                headers=headers,
            )
        campaigns, flows = counts(messages)
        log.info(
            "catalogue published: %d campaigns, %d flows in %d message(s)%s",
            campaigns,
            flows,
            len(messages),
            f"; skipped {', '.join(draft.skipped)}" if draft.skipped else "",
        )
