"""The enrolments worker delivers enrolment changes (KIND_ENROLMENT_CHANGED, on their own
subject) in order, fenced per enrolment, run in-process on a real nats-server against each
provider's sandbox over HTTP.

Klaviyo gets the start and exit events (by unique_id), many people's in one bulk job, each
with the flow's profile property for its profile; ActiveCampaign the contact's enrolment in
the change's automation. Within a batch an end supersedes its own enrolment's beginning (which
is never sent) and nobody else's, and sends nothing either when that beginning never reached
the provider (unless it may have: delivered or published before, or fenced); an end while
another enrolment of the person in the flow runs on leaves the flow's provider state; a change
redelivered after it was applied sends nothing; one made before its person's erasure is not
sent after it; an enrolment change no provider could be sent, or other work on its subject,
fails at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.pull import PullConsumer
from marketing_runtime.timestamps import epoch_seconds
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from dispatcher.delivery.enrolments import EnrolmentsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Outcome, Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
)
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import ACK_WAIT_S, API_KEY, held_lease
from tests.dispatcher.providers.under_test import AC_ACTID, AC_EVENT_KEY, AC_KEY
from tests.harness import eventually
from tests.processes import NatsServer

DELIVERED, FAILED = bus_pb2.OUTCOME_DELIVERED, bus_pb2.OUTCOME_FAILED
SUPERSEDED = bus_pb2.OUTCOME_SUPERSEDED
FLOW = "abandoned-cart"
START, EXIT, PROPERTY = "Cart Flow Started", "Cart Flow Exited", "flow_abandoned_cart"


def person() -> str:
    return f"enrolled-{uuid.uuid4().hex[:8]}@example.com"


def key_of(email: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, email).hex


def change(
    email: str,
    enrolment_id: str,
    sequence: int,
    /,
    *,
    active: bool,
    created: datetime | None = None,
    **fields: Any,
) -> bus_pb2.Delivery:
    """An enrolment change of `email` in FLOW, as the service's outbox publishes it."""
    values: dict[str, Any] = {
        "flow_id": FLOW,
        "enrolment_id": enrolment_id,
        "email": email,
        "active": active,
        "exit_reason": "" if active else "event:placed_order",
        "start_metric": START,
        "exit_metric": EXIT,
        "property": PROPERTY,
        "context_json": orjson.dumps({"cart_id": enrolment_id[:8]}),
        "entry_key": enrolment_id[:8],
    }
    return delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_ENROLMENT_CHANGED,
        contact_key=key_of(email),
        sequence=sequence,
        payload=bus_pb2.EnrolmentChanged(**(values | fields)),
        created=created or datetime.now(UTC),
    )


class Recording(Reporter):
    """Reports as the worker's reporter does, and keeps each outcome by delivery id."""

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus, utc_now)
        self.outcomes: dict[str, Outcome] = {}

    async def report(self, outcomes: Sequence[Outcome]) -> None:
        await super().report(outcomes)
        self.outcomes.update((o.delivery.id, o) for o in outcomes)


async def _on_bus(nats: NatsServer) -> Bus:
    bus = Bus(nats.url, name="test-enrolments")
    bus.start()
    assert await bus.wait_ready(30)
    return bus


async def _publish(
    bus: Bus, batch: Sequence[bus_pb2.Delivery], msg_ids: dict[str, str] | None = None
) -> None:
    """On the enrolments subject; with the Nats-Msg-Id `msg_ids` gives a delivery's id."""
    assert bus.js is not None
    for message in batch:
        msg_id = (msg_ids or {}).get(message.id)
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        await bus.js.publish(
            topology.ENROLMENTS_SUBJECT, message.SerializeToString(), headers=headers
        )


async def _pull(bus: Bus, count: int) -> list[Msg]:
    """The worker's next batch of `count` messages."""
    assert bus.nc is not None
    puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_ENROLMENTS)
    fetched: list[Msg] = await puller.fetch(count, wait_s=5, linger_s=1)
    await puller.close()
    assert len(fetched) == count
    return fetched


async def _fetch(bus: Bus, batch: Sequence[bus_pb2.Delivery]) -> list[Msg]:
    """The batch, published on the enrolments subject and fetched as the worker's next batch."""
    await _publish(bus, batch)
    return await _pull(bus, len(batch))


async def _worker(
    bus: Bus, provider: Provider, reporter: Reporter, erasures: ErasureMarks | None = None
) -> EnrolmentsWorker:
    """An enrolments worker as main() builds one (which follows its erasure marks)."""
    assert bus.js is not None
    kv = await bus.js.key_value(topology.FENCES_BUCKET)
    return EnrolmentsWorker(
        provider,
        reporter,
        ProviderGate(),
        await held_lease(bus),
        ErasureMarks(kv) if erasures is None else erasures,  # (falsy while it marks nobody)
        # As main() reads them: a batch's fences in bulk, an absent one created in one request.
        enrolment_fences=Fences(
            await bus.js.key_value(topology.ENROLMENT_FENCES_BUCKET),
            nc=bus.nc,
            bucket=topology.ENROLMENT_FENCES_BUCKET,
        ),
        connection_ended=bus.connection_ended,
        max_attempts=1,
        backoff_base_s=1.0,
        keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
    )


Steps = Callable[[Bus, EnrolmentsWorker, "Recording"], Awaitable[None]]


def with_worker(
    nats: NatsServer, provider: Callable[[], Provider], steps: Steps
) -> dict[str, Outcome]:
    """`steps` run with one worker as main() builds it, on its own bus connection and
    provider client: the outcomes it reported, by delivery id."""

    async def scenario() -> dict[str, Outcome]:
        bus = await _on_bus(nats)
        client = provider()
        reporter = Recording(bus)
        try:
            await steps(bus, await _worker(bus, client, reporter), reporter)
        finally:
            await client.aclose()
            await bus.close()
        return reporter.outcomes

    return asyncio.run(scenario())


def deliver(
    nats: NatsServer,
    provider: Callable[[], Provider],
    batches: Sequence[Sequence[bus_pb2.Delivery]],
    look: Callable[[], Any] = lambda: None,
) -> tuple[dict[str, Outcome], list[Any]]:
    """Each batch handled in turn by one worker: the outcomes by delivery id, and what
    `look` saw after each batch."""
    seen: list[Any] = []

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        for batch in batches:
            await worker.handle(await _fetch(bus, batch))
            seen.append(look())

    return with_worker(nats, provider, steps), seen


def deliver_handed_out(
    nats: NatsServer,
    provider: Callable[[], Provider],
    handed_out: bus_pb2.Delivery,
    then: Sequence[bus_pb2.Delivery],
) -> dict[str, Outcome]:
    """`handed_out` fetched once and handed back (as a replica that died would, after
    ack_wait), then handled with `then` in one batch: the outcomes by delivery id."""

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        await _publish(bus, [handed_out])
        (fetched,) = await _pull(bus, 1)
        await fetched.nak()
        await _publish(bus, then)
        await worker.handle(await _pull(bus, 1 + len(then)))

    return with_worker(nats, provider, steps)


def outcomes_of(outcomes: dict[str, Outcome], *changes: bus_pb2.Delivery) -> list[tuple[int, str]]:
    return [(outcomes[c.id].outcome, outcomes[c.id].provider_id) for c in changes]


# --- Klaviyo -------------------------------------------------------------------------------


def klaviyo(sandbox: Sandbox) -> Callable[[], Provider]:
    return lambda: KlaviyoClient(API_KEY, base_url=sandbox.base_url)


def flow_property(sandbox: Sandbox, email: str) -> Any:
    """The property on the sandbox's profile (set there by a profile-import only: the
    sandbox does not apply the properties sent with events, see `property_sent`)."""
    profile = sandbox.state.profiles.find("email", email)
    return None if profile is None else profile["properties"].get(PROPERTY)


def property_sent(sandbox: Sandbox, email: str) -> Any:
    """The value the requests so far leave the flow's property at for `email`, as Klaviyo
    applies the profile properties of a profile-import or sent with an event; None: unset."""
    value = None
    for request in sandbox.requests():
        for profile in _profiles_sent(request):
            if profile.get("email") == email and PROPERTY in profile.get("properties", {}):
                value = profile["properties"][PROPERTY]
    return value


def _profiles_sent(request: dict[str, Any]) -> list[dict[str, Any]]:
    attributes = request["body"]["data"]["attributes"]
    if request["path"] == "/api/profile-import":
        return [attributes]
    if request["path"] == "/api/events":
        return [attributes["profile"]["data"]["attributes"]]
    if request["path"] == "/api/event-bulk-create-jobs":
        entries = attributes["events-bulk-create"]["data"]
        return [entry["attributes"]["profile"]["data"]["attributes"] for entry in entries]
    return []


def fence(nats: NatsServer, bucket: str, key: str) -> int | None:
    async def read() -> int | None:
        bus = await _on_bus(nats)
        assert bus.js is not None
        try:
            entry = await (await bus.js.key_value(bucket)).get(key)
            return int(entry.value or b"0")
        except KeyNotFoundError:
            return None
        finally:
            await bus.close()

    return asyncio.run(read())


def test_klaviyo_an_enrolment_begun_then_ended_sets_the_property_and_sends_both_events(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    email, enrolment = person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True)
    ended = change(email, enrolment, 2, active=False)

    outcomes, seen = deliver(
        own_nats,
        klaviyo(sandbox),
        [[begun], [ended]],
        lambda: (property_sent(sandbox, email), sandbox.event_counts()),
    )

    assert outcomes_of(outcomes, begun, ended) == [(DELIVERED, ""), (DELIVERED, "")]
    assert seen == [
        ("active", {enrolment: 1}),
        ("exited", {enrolment: 1, f"{enrolment}:exit": 1}),
    ]
    # Each an event carrying the property: no profile-import.
    assert [r["path"] for r in sandbox.requests()] == ["/api/events"] * 2
    # Fenced per enrolment, in the enrolments' own bucket (kept for a while only).
    key = f"flow.{enrolment}.{key_of(email)}"
    assert fence(own_nats, topology.ENROLMENT_FENCES_BUCKET, key) == 2
    assert fence(own_nats, topology.FENCES_BUCKET, key) is None


def test_klaviyo_an_end_superseding_a_beginning_never_sent_sends_nothing(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Nothing was started at Klaviyo, so there is nothing to end: no exit event, no
    property. The end is delivered and fenced, so a late copy of the beginning is dropped."""
    email, enrolment = person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True)
    ended = change(email, enrolment, 2, active=False)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[begun, ended], [begun]])

    assert outcomes_of(outcomes, begun, ended) == [(SUPERSEDED, ""), (DELIVERED, "")]
    assert sandbox.requests() == []
    key = f"flow.{enrolment}.{key_of(email)}"
    assert fence(own_nats, topology.ENROLMENT_FENCES_BUCKET, key) == 2


def test_klaviyo_an_end_superseding_a_beginning_delivered_before_sends_its_exit(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """The beginning was handed out before (a replica may have sent it and died before its
    fence moved): the end's exit event and property go."""
    email, enrolment = person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True)
    ended = change(email, enrolment, 2, active=False)

    outcomes = deliver_handed_out(own_nats, klaviyo(sandbox), begun, [ended])

    assert outcomes_of(outcomes, begun, ended) == [(SUPERSEDED, ""), (DELIVERED, "")]
    assert sandbox.event_counts() == {f"{enrolment}:exit": 1}
    assert property_sent(sandbox, email) == "exited"


def test_klaviyo_an_end_superseding_a_beginning_fenced_or_re_driven_sends_its_exit(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """A beginning applied before and published again (its fence says so), and one re-driven
    by hand (its Nats-Msg-Id says so: an earlier delivery may have reached Klaviyo), each with
    its end in one batch: both exits go."""
    email = person()
    fenced, re_driven = str(uuid.uuid4()), str(uuid.uuid4())
    fenced_begun = change(email, fenced, 1, active=True)
    fenced_ended = change(email, fenced, 2, active=False)
    re_driven_begun = change(email, re_driven, 3, active=True)
    re_driven_ended = change(email, re_driven, 4, active=False)
    msg_ids = {re_driven_begun.id: f"{re_driven_begun.id}.row.retry1"}

    async def steps(bus: Bus, worker: EnrolmentsWorker, _: Recording) -> None:
        await worker.handle(await _fetch(bus, [fenced_begun]))
        batch = [fenced_begun, fenced_ended, re_driven_begun, re_driven_ended]
        await _publish(bus, batch, msg_ids)
        await worker.handle(await _pull(bus, len(batch)))

    outcomes = with_worker(own_nats, klaviyo(sandbox), steps)

    assert [outcomes[c.id].outcome for c in (fenced_ended, re_driven_ended)] == [DELIVERED] * 2
    assert sandbox.event_counts() == {fenced: 1, f"{fenced}:exit": 1, f"{re_driven}:exit": 1}


def test_klaviyo_two_enrolments_of_one_person_in_one_flow_are_fenced_apart(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Two carts: the first cart's end supersedes its own beginning, not the second's."""
    email, first, second = person(), str(uuid.uuid4()), str(uuid.uuid4())
    first_begun = change(email, first, 1, active=True)
    second_begun = change(email, second, 2, active=True)
    first_ended = change(email, first, 3, active=False)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[first_begun, second_begun, first_ended]])

    assert [outcomes[c.id].outcome for c in (first_begun, second_begun, first_ended)] == [
        SUPERSEDED,
        DELIVERED,
        DELIVERED,
    ]
    # The first cart's end stops nothing: its beginning never reached Klaviyo.
    assert sandbox.event_counts() == {second: 1}
    (start,) = [r["body"]["data"]["attributes"] for r in sandbox.requests("/api/events")]
    assert start["properties"]["entry_key"] == second[:8]
    assert property_sent(sandbox, email) == "active"


def test_klaviyo_an_end_while_another_enrolment_runs_on_leaves_the_property_active(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Two carts; the first's end while the second's recovery runs on: its exit event goes,
    the flow's property stays "active" (the second cart's flow must not be filtered out)."""
    email, first, second = person(), str(uuid.uuid4()), str(uuid.uuid4())
    first_begun = change(email, first, 1, active=True)
    second_begun = change(email, second, 2, active=True)
    first_ended = change(email, first, 3, active=False, others_active=True)

    outcomes, seen = deliver(
        own_nats,
        klaviyo(sandbox),
        [[first_begun, second_begun], [first_ended]],
        lambda: (property_sent(sandbox, email), len(sandbox.requests())),
    )

    assert outcomes_of(outcomes, first_begun, second_begun, first_ended) == [(DELIVERED, "")] * 3
    assert seen == [("active", 1), ("active", 2)], "one bulk job, then the exit event"
    assert sandbox.event_counts() == {first: 1, second: 1, f"{first}:exit": 1}
    (exit_event,) = sandbox.requests("/api/events")
    assert exit_event["body"]["data"]["attributes"]["profile"]["data"]["attributes"] == {
        "email": email
    }


def test_klaviyo_a_batch_of_many_peoples_beginnings_is_one_bulk_call(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """A restock notifying 1,000 waiting people (a batch as large as the worker fetches):
    one POST /api/event-bulk-create-jobs carries every start and every property; nobody
    waits for anybody else."""
    people = [person() for _ in range(1000)]
    changes = [change(email, str(uuid.uuid4()), 1, active=True) for email in people]

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [changes])

    assert {outcomes[c.id].outcome for c in changes} == {DELIVERED}
    assert [r["path"] for r in sandbox.requests()] == ["/api/event-bulk-create-jobs"]
    assert sandbox.event_counts() == {c.enrolment_changed.enrolment_id: 1 for c in changes}
    (job,) = sandbox.requests()
    entries = job["body"]["data"]["attributes"]["events-bulk-create"]["data"]
    assert [e["attributes"]["profile"]["data"]["attributes"] for e in entries] == [
        {"email": email, "properties": {PROPERTY: "active"}} for email in people
    ]
    key = f"flow.{changes[-1].enrolment_changed.enrolment_id}.{key_of(people[-1])}"
    assert fence(own_nats, topology.ENROLMENT_FENCES_BUCKET, key) == 1


def test_klaviyo_a_change_redelivered_after_it_was_applied_sends_nothing(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    email, enrolment = person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True)

    outcomes, seen = deliver(
        own_nats, klaviyo(sandbox), [[begun], [begun]], lambda: len(sandbox.requests())
    )

    assert outcomes[begun.id].outcome == SUPERSEDED  # the redelivery, reported last
    assert seen == [1, 1], "the event (carrying the property), once"
    assert sandbox.event_counts() == {enrolment: 1}


@pytest.mark.parametrize("active", [True, False], ids=["begun", "ended"])
def test_klaviyo_without_a_metric_only_the_property_is_set(
    own_nats: NatsServer, sandbox: Sandbox, active: bool
) -> None:
    email = person()
    quiet = change(email, str(uuid.uuid4()), 1, active=active, start_metric="", exit_metric="")

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[quiet]])

    assert outcomes_of(outcomes, quiet) == [(DELIVERED, "")]
    assert [r["path"] for r in sandbox.requests()] == ["/api/profile-import"]
    assert flow_property(sandbox, email) == ("active" if active else "exited")


def test_an_enrolment_change_no_provider_could_be_sent_fails_at_once(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    email = person()
    not_an_object = change(email, str(uuid.uuid4()), 1, active=True, context_json=b"[1, 2]")
    not_json = change(email, str(uuid.uuid4()), 2, active=True, context_json=b"{cart")
    no_email = change(email, str(uuid.uuid4()), 3, active=True, email="")
    bad_id = change(email, "a.b", 4, active=True)
    # Other work on the enrolments subject: this worker makes no consent call.
    not_enrolment_work = delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
        contact_key=key_of(email),
        sequence=5,
        payload=bus_pb2.ContactUnsubscribed(state=bus_pb2.ConsentState(email=email)),
        created=datetime.now(UTC),
    )
    good = change(email, str(uuid.uuid4()), 6, active=True)
    unreadable = (not_an_object, not_json, no_email, bad_id, not_enrolment_work)

    outcomes, _ = deliver(own_nats, klaviyo(sandbox), [[*unreadable, good]])

    for failed in unreadable:
        assert outcomes[failed.id].outcome == FAILED
        assert outcomes[failed.id].error.startswith("unreadable delivery"), outcomes[failed.id]
    assert "'a.b'" in outcomes[bad_id.id].error
    assert "contact.unsubscribed (type 5) is not enrolment work" in (
        outcomes[not_enrolment_work.id].error
    )
    assert outcomes[good.id].outcome == DELIVERED
    assert list(sandbox.event_counts()) == [good.enrolment_changed.enrolment_id]
    assert [r["path"] for r in sandbox.requests()] == ["/api/events"]


def test_a_change_made_before_its_persons_erasure_is_not_sent_after_it(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Redelivered after the erasure was applied: it would make the person again."""
    email, made = person(), datetime.now(UTC) - timedelta(minutes=5)
    before = change(email, str(uuid.uuid4()), 1, active=False, created=made)
    since = change(email, str(uuid.uuid4()), 3, active=True)  # the person came back

    async def scenario() -> dict[str, Outcome]:
        bus = await _on_bus(own_nats)
        client = klaviyo(sandbox)()
        reporter = Recording(bus)
        assert bus.js is not None
        marks = ErasureMarks(await bus.js.key_value(topology.FENCES_BUCKET))
        following = asyncio.create_task(marks.follow())
        try:
            worker = await _worker(bus, client, reporter, marks)
            await marks.mark(key_of(email), epoch_seconds(before.create_time) + 60)
            await eventually(_erased(marks, before), timeout_s=10)
            await worker.handle(await _fetch(bus, [before, since]))
        finally:
            following.cancel()
            await client.aclose()
            await bus.close()
        return reporter.outcomes

    outcomes = asyncio.run(scenario())

    assert [outcomes[c.id].outcome for c in (before, since)] == [SUPERSEDED, DELIVERED]
    assert list(sandbox.event_counts()) == [since.enrolment_changed.enrolment_id]


def _erased(marks: ErasureMarks, d: bus_pb2.Delivery) -> Callable[[], Any]:
    async def check() -> bool:
        return marks.erased_since(d.contact_key, epoch_seconds(d.create_time))

    return check


# --- ActiveCampaign ------------------------------------------------------------------------


def activecampaign(ac: ActiveCampaignSandbox) -> Callable[[], Provider]:
    tracking = TrackingAccount(AC_ACTID, AC_EVENT_KEY, ac.tracking_url)
    return lambda: ActiveCampaignClient(ac.base_url, AC_KEY, tracking)


def automation_enrolments(ac: ActiveCampaignSandbox, email: str) -> list[str] | None:
    """The ids of the contact's enrolments; None when there is no contact."""
    contacts = ac.contacts(email)
    return [e["id"] for e in contacts[0]["automations"]] if contacts else None


def test_activecampaign_an_enrolment_begun_then_ended_enrols_and_removes(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    automation, email, enrolment = ac.add_automation("Cart"), person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True, automation_id=automation)
    ended = change(email, enrolment, 2, active=False, automation_id=automation)

    outcomes, seen = deliver(
        own_nats, activecampaign(ac), [[begun], [ended]], lambda: automation_enrolments(ac, email)
    )

    ((held,), after) = seen
    assert outcomes_of(outcomes, begun, ended) == [(DELIVERED, held), (DELIVERED, "")]
    assert after == []


def test_activecampaign_an_end_supersedes_its_beginning_in_one_batch_and_nobody_is_enrolled(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    automation, email, enrolment = ac.add_automation("Cart"), person(), str(uuid.uuid4())
    begun = change(email, enrolment, 1, active=True, automation_id=automation)
    ended = change(email, enrolment, 2, active=False, automation_id=automation)

    outcomes, _ = deliver(own_nats, activecampaign(ac), [[begun, ended]])

    assert outcomes_of(outcomes, begun, ended) == [(SUPERSEDED, ""), (DELIVERED, "")]
    assert ac.requests() == [], "the beginning never reached ActiveCampaign"


def test_activecampaign_two_enrolments_of_one_person_in_one_flow_are_both_delivered(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    """Neither supersedes the other; ActiveCampaign keeps one running enrolment per contact
    and automation, which the second finds (its id is both's provider id)."""
    automation, email = ac.add_automation("Cart"), person()
    first = change(email, str(uuid.uuid4()), 1, active=True, automation_id=automation)
    second = change(email, str(uuid.uuid4()), 2, active=True, automation_id=automation)

    outcomes, _ = deliver(own_nats, activecampaign(ac), [[first, second]])

    (held,) = automation_enrolments(ac, email) or []
    assert outcomes_of(outcomes, first, second) == [(DELIVERED, held), (DELIVERED, held)]


def test_activecampaign_an_end_while_another_enrolment_runs_on_keeps_the_automation(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    """Two carts share ActiveCampaign's one enrolment: the first's end while the second's
    runs on sends nothing (delivered); the second's end removes it."""
    automation, email = ac.add_automation("Cart"), person()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    first_begun = change(email, first, 1, active=True, automation_id=automation)
    second_begun = change(email, second, 2, active=True, automation_id=automation)
    first_ended = change(
        email, first, 3, active=False, others_active=True, automation_id=automation
    )
    second_ended = change(email, second, 4, active=False, automation_id=automation)

    outcomes, seen = deliver(
        own_nats,
        activecampaign(ac),
        [[first_begun, second_begun], [first_ended], [second_ended]],
        lambda: (automation_enrolments(ac, email), len(ac.requests())),
    )

    ((held,), began), (kept, after_first), (gone, _) = seen
    assert outcomes_of(outcomes, first_ended, second_ended) == [(DELIVERED, ""), (DELIVERED, "")]
    assert (kept, after_first) == ([held], began), "nothing sent"
    assert gone == []


def test_activecampaign_a_change_redelivered_after_it_was_applied_sends_nothing(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    automation, email = ac.add_automation("Cart"), person()
    begun = change(email, str(uuid.uuid4()), 1, active=True, automation_id=automation)

    outcomes, seen = deliver(
        own_nats, activecampaign(ac), [[begun], [begun]], lambda: len(ac.requests())
    )

    assert outcomes[begun.id].outcome == SUPERSEDED  # the redelivery, reported last
    assert seen[0] == seen[1]
    assert len(ac.requests("/api/3/contactAutomations")) == 1
    assert len(automation_enrolments(ac, email) or []) == 1


def test_activecampaign_without_an_automation_nothing_is_sent(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    email = person()
    begun = change(email, str(uuid.uuid4()), 1, active=True, automation_id="")
    ended = change(email, str(uuid.uuid4()), 2, active=False, automation_id="")

    outcomes, _ = deliver(own_nats, activecampaign(ac), [[begun, ended]])

    assert outcomes_of(outcomes, begun, ended) == [(DELIVERED, ""), (DELIVERED, "")]
    assert ac.requests() == []


def test_activecampaign_an_enrolment_in_an_automation_it_lacks_fails_and_others_go(
    own_nats: NatsServer, ac: ActiveCampaignSandbox
) -> None:
    """Refused for good (403): FAILED with ActiveCampaign's reason, and its fence is left
    where it was, so the service's re-drive (once the automation exists) is sent."""
    automation, email, other = ac.add_automation("Cart"), person(), person()
    missing = change(email, str(uuid.uuid4()), 1, active=True, automation_id="999")
    fine = change(other, str(uuid.uuid4()), 1, active=True, automation_id=automation)

    outcomes, _ = deliver(own_nats, activecampaign(ac), [[missing, fine]])

    assert outcomes[missing.id].outcome == FAILED
    assert "SubscriberSeries" in outcomes[missing.id].error
    assert outcomes[fine.id].outcome == DELIVERED
    key = f"flow.{missing.enrolment_changed.enrolment_id}.{key_of(email)}"
    assert fence(own_nats, topology.ENROLMENT_FENCES_BUCKET, key) is None
