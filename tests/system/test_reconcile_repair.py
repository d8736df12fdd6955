"""**Reconciling twice finds nothing once the repair is applied**: for any person the
provider holds (any drift, planted in the sandbox) and any state of ours, the
differences ReconcileContact reports, repaired by the very deliveries it queues (the
dispatcher's profile upsert and consent plan, run on the Klaviyo client), leave
nothing to repair (a withdrawal only the provider holds stays reported, never
re-granted). In-process against the sandbox over HTTP, its rate limits on (a fresh
API key per example, so each has the account's whole budget)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from hypothesis import given, note
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind

from dispatcher.delivery.read_person import person_read
from dispatcher.delivery.translate import consent_state, profile
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from service.reconcile.compare import Aspect, compare, held_back, repaired_aspects
from service.reconcile.rules import NOBODY
from tests.bus_helpers import delivery
from tests.contact_strategies import (
    TYPED_PROPERTY_NAMES,
    consent_states,
    contacts,
    json_values,
    text,
)

LIST = "NEWS01"
_numbers = itertools.count(1000)
planted_properties = st.dictionaries(
    st.sampled_from(sorted(TYPED_PROPERTY_NAMES)) | text,
    json_values | st.sampled_from(["2020-01-01T00:00:00+00:00", "EUR"]),
    max_size=5,
)
channel_consent = st.sampled_from(["NEVER_SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED"])


@st.composite
def provider_sides(draw: st.DrawFn) -> dict[str, Any] | None:
    """What the provider holds: nothing, or any profile, consent, suppression and lists."""
    if draw(st.integers(0, 9)) == 0:
        return None
    return {
        "first_name": draw(st.none() | text),
        "last_name": draw(st.none() | text),
        "properties": draw(planted_properties),
        "consent": {"email": draw(channel_consent), "sms": draw(channel_consent)},
        "suppression": draw(
            st.lists(
                st.sampled_from(["USER_SUPPRESSED", "UNSUBSCRIBE", "HARD_BOUNCE"]), unique=True
            )
        ),
        "lists": draw(st.lists(st.sampled_from([LIST, "OTHER"]), unique=True)),
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox() as running:
        yield running


def _delivery(kind: Kind, payload: Message) -> bus_pb2.Delivery:
    return delivery(
        id="d", kind=kind, contact_key="k", sequence=1, payload=payload, created=datetime.now(UTC)
    )


async def _reconcile(
    client: KlaviyoClient, ours: bus_pb2.ContactUpserted, consent: bus_pb2.ConsentState
) -> set[Aspect]:
    """Compare, and apply what the repair queues as the dispatcher would apply it."""
    found = await client.read_person(ours.email, LIST)
    differences = compare(ours, consent, NOBODY if found is None else person_read(found))
    note(f"differences: {differences}")
    held = held_back(differences, provider_holds=found is not None)
    aspects = repaired_aspects(differences, held)
    if Aspect.PROFILE in aspects:
        await client.upsert_profile(profile(_delivery(bus_pb2.KIND_CONTACT_UPSERTED, ours)))
    if Aspect.CONSENT in aspects:
        changed = _delivery(bus_pb2.KIND_CONSENT_CHANGED, bus_pb2.ConsentChanged(state=consent))
        for call in client.plan_consent([(0, consent_state(changed))], LIST):
            await call.send(call.owners)
    return aspects


@given(data=st.data(), provider_side=provider_sides())
def test_reconciling_after_the_repair_finds_nothing(
    sandbox: Sandbox, data: st.DataObject, provider_side: dict[str, Any] | None
) -> None:
    n = next(_numbers)
    email, phone = f"drift-{n}@example.com", f"+1500555{n:04d}"
    ours = data.draw(contacts(email, phone))
    if ours.HasField("user_id"):  # external ids identify a profile: one per person
        ours.user_id = f"{n}-{ours.user_id}"
    consent = data.draw(consent_states(email, ours.phone if ours.HasField("phone") else None))
    if provider_side is not None:
        planted = httpx.post(
            f"{sandbox.base_url}/_sandbox/profiles", json={"email": email, **provider_side}
        )
        assert planted.status_code == 200, planted.text

    async def twice() -> tuple[set[Aspect], set[Aspect]]:
        async with KlaviyoClient(f"pk_{uuid.uuid4().hex}", base_url=sandbox.base_url) as client:
            return await _reconcile(client, ours, consent), await _reconcile(client, ours, consent)

    first, second = asyncio.run(twice())
    assert second == set(), f"still differs after the repair of {first}"
