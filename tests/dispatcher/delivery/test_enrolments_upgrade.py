"""An enrolment change a release before the enrolments subject published on the contacts
subject (during an upgrade) is still applied, by the contacts worker, through the same code
and the same enrolment fences as the enrolments worker's: its end, published by the new
release on the enrolments subject, goes; a late copy of the old beginning does not. In-process
on a real nats-server against the Klaviyo sandbox over HTTP."""

from __future__ import annotations

import asyncio
import uuid

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg

from dispatcher.delivery.outcomes import Outcome
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.delivery.test_enrolments import (
    DELIVERED,
    SUPERSEDED,
    Recording,
    change,
    fence,
    key_of,
    person,
    property_sent,
)
from tests.dispatcher.helpers import API_KEY, contacts_worker, enrolments_worker, held_lease
from tests.processes import NatsServer


async def _fetch(bus: Bus, subject: str, durable: str, d: bus_pb2.Delivery) -> list[Msg]:
    """`d` published on `subject` and fetched from `durable` as its worker's next batch."""
    assert bus.js is not None and bus.nc is not None
    await bus.js.publish(subject, d.SerializeToString())
    puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=durable)
    fetched: list[Msg] = await puller.fetch(1, wait_s=5, linger_s=0)
    await puller.close()
    assert len(fetched) == 1
    return fetched


def test_an_older_releases_change_on_the_contacts_subject_is_applied_and_fenced_for_both(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    email, enrolment = person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True)  # by the release before
    ended = change(email, enrolment, 2, active=False)  # by this one

    async def scenario() -> tuple[Outcome, dict[str, Outcome]]:
        bus = Bus(own_nats.url, name="test-enrolments-upgrade")
        bus.start()
        assert await bus.wait_ready(30)
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        contacts_reporter, enrolments_reporter = Recording(bus), Recording(bus)
        contacts = await contacts_worker(
            bus, provider, await held_lease(bus), reporter=contacts_reporter
        )
        enrolments = await enrolments_worker(
            bus, provider, await held_lease(bus), reporter=enrolments_reporter
        )
        contacts_subject = (topology.CONTACTS_SUBJECT, topology.DISPATCH_CONTACTS)
        try:
            await contacts.handle(await _fetch(bus, *contacts_subject, begun))
            first = contacts_reporter.outcomes.pop(begun.id)
            await enrolments.handle(
                await _fetch(bus, topology.ENROLMENTS_SUBJECT, topology.DISPATCH_ENROLMENTS, ended)
            )
            # A copy of the old beginning, published again (say, by a relay that died
            # before marking it), after its end was applied.
            await contacts.handle(await _fetch(bus, *contacts_subject, begun))
        finally:
            await provider.aclose()
            await bus.close()
        return first, contacts_reporter.outcomes | enrolments_reporter.outcomes

    first, outcomes = asyncio.run(scenario())

    assert first.outcome == DELIVERED
    assert [outcomes[d.id].outcome for d in (ended, begun)] == [DELIVERED, SUPERSEDED]
    assert sandbox.event_counts() == {enrolment: 1, f"{enrolment}:exit": 1}
    assert property_sent(sandbox, email) == "exited"
    key = f"flow.{enrolment}.{key_of(email)}"
    assert fence(own_nats, topology.ENROLMENT_FENCES_BUCKET, key) == 2
