"""A dispatcher replica (`dispatcher.main.Dispatcher`, as `marketing-dispatcher` runs it)
works flow enrolment changes on a consumer and a lease of their own: while a batch of them
waits out a 429 on Klaviyo's bulk event jobs (the budget it shares with bulk events), an
unsubscribe on the contacts subject goes at once: with the virtual clock (of test_replica)
standing still, so that the enrolments' Retry-After never passes meanwhile."""

from __future__ import annotations

import json
import uuid

from marketing_runtime import topology
from nats.js import JetStreamContext

from dispatcher.providers.klaviyo.client import EVENTS_BULK, SUPPRESS, UNSUBSCRIBE
from dispatcher.sandbox import Sandbox
from tests.dispatcher.budget.provider_site import contact_work
from tests.dispatcher.delivery.test_enrolments import change, person
from tests.dispatcher.test_replica import Site, _all_acked, _run, _settle
from tests.harness import eventually
from tests.processes import NatsServer

RETRY_AFTER_S = 60.0


def test_an_unsubscribe_goes_while_enrolments_wait_out_a_throttled_bulk_job(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=EVENTS_BULK, status=429, retry_after=int(RETRY_AFTER_S), times=1)
    site = Site(own_nats.url, sandbox)
    starts = [change(person(), str(uuid.uuid4()), 1, active=True) for _ in range(2)]
    leaving = f"leaving-{uuid.uuid4().hex[:8]}@example.com"

    async def scenario(js: JetStreamContext) -> None:
        replica = site.replica().serve()
        calls = replica.transport
        for start in starts:
            await js.publish(topology.ENROLMENTS_SUBJECT, start.SerializeToString())
        await site.clock.advance_until(
            lambda: bool(calls.to(EVENTS_BULK)), _settle, limit_s=RETRY_AFTER_S
        )
        (throttled_at,) = calls.to(EVENTS_BULK)
        await js.publish(topology.CONTACTS_SUBJECT, contact_work("unsubscribe", leaving, 1))

        async def unsubscribed() -> bool:
            return bool(calls.to(UNSUBSCRIBE) or calls.to(SUPPRESS))

        # With virtual time standing still: the enrolments' Retry-After never passes.
        await eventually(unsubscribed)
        await eventually(lambda: _all_acked(js, topology.DISPATCH_CONTACTS))
        assert site.clock.now - throttled_at < RETRY_AFTER_S
        assert sandbox.event_counts() == {}, "the enrolments did not wait"

        def enrolled() -> bool:
            return len(sandbox.event_counts()) == len(starts)

        await site.clock.advance_until(enrolled, _settle, limit_s=3 * RETRY_AFTER_S)
        assert calls.to(EVENTS_BULK)[-1] - throttled_at >= RETRY_AFTER_S
        await eventually(lambda: _all_acked(js, topology.DISPATCH_ENROLMENTS))
        leases = await js.key_value(topology.LEASES_BUCKET)
        for key in (topology.CONTACTS_LEASE, topology.ENROLMENTS_LEASE):
            assert json.loads((await leases.get(key)).value or b"{}")["owner"] == replica.name
        assert await replica.stop() == 0

    _run(own_nats.url, scenario)
