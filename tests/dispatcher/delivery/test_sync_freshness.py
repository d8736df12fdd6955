"""A full sync never takes the provider back: a person's change applied through
the ordered path after their chunk was built (their fence past the chunk's
`outbox_sequence`) is not overwritten by the chunk's older state. The contacts
worker and the sync worker in-process, on a real nats-server, against the
Klaviyo sandbox (its rate limits on) through one shared budget."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from dispatcher.budget import SharedBudget
from dispatcher.delivery.contacts import ContactsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.main import SyncStages
from dispatcher.ordering.fences import person_key
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.delivery.test_sync import SUBSCRIBE, Scene, _worker, scene
from tests.dispatcher.helpers import (
    API_KEY,
    contacts_worker,
    expected_consent,
    held_lease,
    provider_consent,
)
from tests.dispatcher.providers.klaviyo.test_imports import stored_profile
from tests.processes import NatsServer


@dataclass(frozen=True)
class State:
    """One person's state of both aspects, as a chunk or a change carries it."""

    first_name: str
    email_opt_in: bool
    suppressed: bool


@dataclass(frozen=True)
class Change:
    """An outbox row: one aspect of one person's state after the change."""

    email: str
    sequence: int
    aspect: str  # "profile" or "consent"
    state: State


def _profile(email: str, state: State) -> bus_pb2.ContactUpserted:
    return bus_pb2.ContactUpserted(
        contact_id=str(uuid.uuid5(uuid.NAMESPACE_URL, email)),
        email=email,
        first_name=state.first_name,
    )


def _consent(email: str, state: State) -> bus_pb2.ConsentState:
    consent = bus_pb2.ConsentState(email=email, suppressed=state.suppressed)
    consent.opt_in.email = state.email_opt_in
    return consent


def _ordered(change: Change) -> bytes:
    """The change as the relay publishes it on `marketing.work.contacts`."""
    kind, payload = (
        (bus_pb2.KIND_CONTACT_UPSERTED, _profile(change.email, change.state))
        if change.aspect == "profile"
        else (
            bus_pb2.KIND_CONSENT_CHANGED,
            bus_pb2.ConsentChanged(state=_consent(change.email, change.state)),
        )
    )
    return delivery(
        id=str(uuid.uuid4()),
        kind=kind,
        contact_key=person_key(change.email),  # as the service computes it
        sequence=change.sequence,
        payload=payload,
        created=datetime.now(UTC),
    ).SerializeToString()


def _synced(email: str, state: State) -> bus_pb2.SyncedContact:
    return bus_pb2.SyncedContact(profile=_profile(email, state), consent=_consent(email, state))


@dataclass
class Stage:
    """The scene, both workers, and pullers on the two consumers."""

    scene: Scene
    contacts: ContactsWorker
    sync: SyncStages
    chunks: int = 0
    pullers: dict[str, PullConsumer] = field(default_factory=dict)

    async def apply_ordered(self, changes: list[Change]) -> None:
        """One batch of ordered changes, as the lease holder handles it."""
        for change in changes:
            await self.scene.js.publish(topology.CONTACTS_SUBJECT, _ordered(change))
        batch = await self._fetch(topology.WORK_STREAM, topology.DISPATCH_CONTACTS, len(changes))
        await self.contacts.handle(batch)

    async def apply_chunk(self, people: dict[str, State], outbox_sequence: int) -> None:
        """A chunk of `people` as the service read them at `outbox_sequence`,
        imported by the sync worker; its result is awaited."""
        self.chunks += 1
        contacts = [_synced(email, state) for email, state in people.items()]
        await self.scene.publish(self.chunks, contacts, outbox_sequence)
        batch = await self._fetch(topology.SYNC_STREAM, topology.DISPATCH_SYNC, 1)
        await self.sync.imports.handle(batch)
        # Its consent stage, if any of its people was imported with consent to send.
        stage = await self._fetch_up_to(topology.SYNC_STREAM, topology.DISPATCH_SYNC_CONSENT, 1)
        if stage:
            await self.sync.consent.handle(stage)
        await self.scene.results_for(self.chunks)

    async def _fetch(self, stream: str, durable: str, count: int) -> list[Msg]:
        batch = await self._fetch_up_to(stream, durable, count, wait_s=5)
        assert len(batch) == count, "a message another test left on the consumer"
        return batch

    async def _fetch_up_to(
        self, stream: str, durable: str, count: int, wait_s: float = 1.0
    ) -> list[Msg]:
        if durable not in self.pullers:
            assert self.scene.bus.nc is not None
            self.pullers[durable] = PullConsumer(self.scene.bus.nc, stream=stream, durable=durable)
        batch: list[Msg] = await self.pullers[durable].fetch(count, wait_s=wait_s, linger_s=0.2)
        return batch


@asynccontextmanager
async def stage(own_nats: NatsServer, sandbox: Sandbox) -> AsyncIterator[Stage]:
    async with (
        scene(own_nats) as current,
        KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider,
    ):
        await current.js.purge_stream(topology.WORK_STREAM, subject=topology.CONTACTS_SUBJECT)
        gate = ProviderGate()
        budgets = await current.js.key_value(topology.BUDGET_BUCKET)
        gate.share(SharedBudget(budgets, f"test-{uuid.uuid4().hex[:12]}", provider.limits))
        # Held for the whole example: one whose calls wait out the sandbox's minute (its
        # windows are the test's, shared by every example) would lose a shorter lease
        # and hand its batch back, which is not what this test is about.
        lease = await held_lease(current.bus, ttl_s=600)
        contacts = await contacts_worker(current.bus, provider, lease, gate=gate, max_attempts=5)
        result = Stage(current, contacts, _worker(current, provider, gate=gate, max_attempts=5))
        try:
            yield result
        finally:
            for puller in result.pullers.values():
                await puller.close()


def _email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def _provider_state(sandbox: Sandbox, email: str) -> tuple[str | None, dict[str, bool]]:
    profile = stored_profile(sandbox, email)
    first_name = None if profile is None else profile["first_name"]
    return first_name, provider_consent(sandbox.profiles(email))


def _expected(state: State) -> tuple[str, dict[str, bool]]:
    consent = expected_consent(email=state.email_opt_in, sms=False, suppressed=state.suppressed)
    return state.first_name, consent


def _skipped(aspect: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketing_dispatcher_sync_newer_at_provider_total", {"aspect": aspect}
    )
    return value or 0.0


GRANTED = State("Ada", email_opt_in=True, suppressed=False)
WITHDRAWN = State("Ada", email_opt_in=False, suppressed=False)


def test_a_consent_withdrawal_applied_after_the_chunk_was_built_is_not_undone(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """The chunk was read at outbox sequence 100, everyone granted. Then, through
    the ordered path: one person withdraws (101), another is renamed (102); a
    third withdrew before the chunk was read (90: the chunk's grant is newer)."""
    withdrawn, renamed, earlier, untouched = map(
        _email, ("withdrawn", "renamed", "earlier", "untouched")
    )
    skipped_before = {aspect: _skipped(aspect) for aspect in ("profile", "consent")}

    async def body() -> bus_pb2.ContactSyncChunkResult:
        async with stage(own_nats, sandbox) as current:
            await current.apply_ordered(
                [
                    Change(earlier, 90, "consent", WITHDRAWN),
                    Change(withdrawn, 101, "consent", WITHDRAWN),
                    Change(renamed, 102, "profile", State("Grace", True, False)),
                ]
            )
            people = dict.fromkeys((withdrawn, renamed, earlier, untouched), GRANTED)
            await current.apply_chunk(people, outbox_sequence=100)
            (result,) = current.scene.results
            return result

    result = asyncio.run(body())

    assert (result.imported, list(result.failures), result.error) == (4, [], "")
    assert _provider_state(sandbox, withdrawn)[1] == _expected(WITHDRAWN)[1], "not undone"
    assert _provider_state(sandbox, renamed)[0] == "Grace", "the newer profile kept"
    assert _provider_state(sandbox, earlier) == _expected(GRANTED), "the chunk is newer: sent"
    assert _provider_state(sandbox, untouched) == _expected(GRANTED)
    subscribed = {
        p["attributes"]["email"]
        for r in sandbox.requests(SUBSCRIBE)
        for p in r["body"]["data"]["attributes"]["profiles"]["data"]
    }
    assert withdrawn not in subscribed and {renamed, earlier, untouched} <= subscribed
    assert _skipped("consent") - skipped_before["consent"] == 1
    assert _skipped("profile") - skipped_before["profile"] == 1


# Each person's timeline: the outbox changes, in sequence order (global across
# people), each of one aspect; a sync chunk read at watermark W holds each
# person created by then in their state after their last change up to W.
Step = tuple[str, int]
STATES = st.builds(State, st.sampled_from(["Ada", "Grace", "Alan"]), st.booleans(), st.booleans())


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[tuple[int, State]], list[Step]]:
    """Changes (person index, state) in outbox order, the first of each person
    their creation; and a script of steps: ("ordered", how many of the next
    changes in one batch) or ("sync", W) in any order, with the ordered path
    draining what is left at the end."""
    people = draw(st.integers(1, 3))
    firsts = [(i, draw(STATES)) for i in range(people)]
    later = draw(st.lists(st.tuples(st.integers(0, people - 1), STATES), max_size=5))
    changes = [*firsts, *later]
    batches = draw(st.lists(st.integers(1, 3), max_size=4))
    # A watermark anywhere in the timeline (a creation writes two rows).
    chunks = draw(st.lists(st.integers(1, 2 * len(changes)), min_size=1, max_size=2))
    steps: list[Step] = [("ordered", n) for n in batches] + [("sync", w) for w in chunks]
    return changes, draw(st.permutations(steps))


def _aspects(before: State | None, after: State) -> list[str]:
    """The outbox rows a change writes: its creation writes both aspects."""
    if before is None:
        return ["profile", "consent"]
    profile = before.first_name != after.first_name
    return ["profile"] if profile else ["consent"]


def _timeline(emails: list[str], drawn: list[tuple[int, State]]) -> list[Change]:
    changes: list[Change] = []
    current: dict[str, State] = {}
    for person, state in drawn:
        email = emails[person]
        before = current.get(email)
        for aspect in _aspects(before, state):
            merged = _merged(before, state, aspect)
            changes.append(Change(email, len(changes) + 1, aspect, merged))
            before = current[email] = merged
    return changes


def _merged(before: State | None, after: State, aspect: str) -> State:
    """The state after changing one aspect of `before` to `after`'s."""
    if before is None:
        return after
    if aspect == "profile":
        return State(after.first_name, before.email_opt_in, before.suppressed)
    return State(before.first_name, after.email_opt_in, after.suppressed)


def _as_of(changes: list[Change], watermark: int) -> dict[str, State]:
    """Each person created by `watermark` in their state then (what the service reads)."""
    states: dict[str, State] = {}
    for change in changes:
        if change.sequence <= watermark:
            states[change.email] = change.state
    return states


@settings(max_examples=25)
@given(interleavings())
def test_the_provider_ends_in_each_persons_newest_state_whatever_the_interleaving(
    own_nats: NatsServer, sandbox: Sandbox, drawn: tuple[list[tuple[int, State]], list[Step]]
) -> None:
    """Ordered batches and sync chunks in any order, chunks read at any point of the
    outbox (so older or newer than what the ordered path has applied): once the
    ordered path has caught up, the provider holds each person's newest state."""
    picked, steps = drawn
    emails = [_email(f"p{i}") for i in range(3)]
    changes = _timeline(emails, picked)

    async def body() -> None:
        async with stage(own_nats, sandbox) as current:
            applied = 0
            for kind, amount in steps:
                if kind == "ordered" and applied < len(changes):
                    await current.apply_ordered(changes[applied : applied + amount])
                    applied += len(changes[applied : applied + amount])
                elif kind == "sync":
                    watermark = changes[min(amount, len(changes)) - 1].sequence
                    await current.apply_chunk(_as_of(changes, watermark), watermark)
            if applied < len(changes):
                await current.apply_ordered(changes[applied:])

    asyncio.run(body())

    newest = _as_of(changes, len(changes))
    assert {e: _provider_state(sandbox, e) for e in newest} == {
        e: _expected(s) for e, s in newest.items()
    }
