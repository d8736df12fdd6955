"""What holds for every provider, run against each one's sandbox: its limits name every
operation, a person has one id, events arrive once in calls the limits allow, consent plans
bring the provider to our state whatever it held, and throttling is retryable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from dispatcher.providers.base import (
    CREATE_EVENTS,
    IMPORT_STATUS,
    READ_PERSON,
    REQUEST_ERASURE,
    START_IMPORT,
    UPSERT_PROFILE,
    ConsentChange,
    ConsentState,
    Limits,
    Profile,
    Provider,
    TrackedEvent,
    stamped,
)
from dispatcher.providers.errors import RetryableProviderError
from tests.dispatcher.helpers import ScriptedStamp, expected_consent, stamp_ages_noted
from tests.dispatcher.providers.under_test import (
    PROVIDERS,
    ProviderUnderTest,
    provider_under_test,
)

T = TypeVar("T")
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
EMAIL = "ada@example.com"


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> Iterator[ProviderUnderTest]:
    with provider_under_test(request.param) as running:
        yield running


def run(under_test: ProviderUnderTest, operation: Callable[[Provider], Awaitable[T]]) -> T:
    async def scenario() -> T:
        client = under_test.client()
        try:
            return await operation(client)
        finally:
            await client.aclose()

    return asyncio.run(scenario())


def test_the_limits_give_every_operation_its_budget(provider: ProviderUnderTest) -> None:
    limits = run(provider, _limits)
    operations = {UPSERT_PROFILE, CREATE_EVENTS, REQUEST_ERASURE, START_IMPORT, IMPORT_STATUS}
    operations |= {READ_PERSON, *limits.consent, *limits.lists, *limits.enrolments}

    assert limits.enrolments, "every provider plans enrolment changes"
    assert operations <= set(limits.rates)
    assert set(limits.consent) | {REQUEST_ERASURE} <= limits.compliance <= set(limits.rates)
    assert limits.import_profiles is not None


async def _limits(client: Provider) -> Limits:
    return client.limits


def test_a_person_has_one_id_whatever_the_case_of_the_email(provider: ProviderUnderTest) -> None:
    async def upserts(client: Provider) -> list[str]:
        return [
            await client.upsert_profile(Profile(EMAIL, first_name="Ada")),
            await client.upsert_profile(Profile(EMAIL.upper())),
            await client.upsert_profile(Profile("bob@example.com")),
        ]

    first, again, other = run(provider, upserts)

    assert first == again != other


def test_events_arrive_once_in_calls_the_limits_allow(provider: ProviderUnderTest) -> None:
    events = [
        TrackedEvent(f"ev-{i}", EMAIL, "product_viewed", WHEN, {"product": {"sku": f"S{i}"}})
        for i in range(5)
    ]

    async def deliver(client: Provider) -> None:
        per_call = client.limits.create_events.max_items
        prepared = [client.prepare_event(event) for event in events]
        for start in range(0, len(prepared), per_call):
            await client.create_events(prepared[start : start + per_call])

    run(provider, deliver)

    assert provider.delivered() == {event.event_id: 1 for event in events}


def state(email: bool, sms: bool, suppressed: bool) -> ConsentState:
    change = ConsentChange(EMAIL, "+15550100", email, sms)
    return ConsentState(change, newsletter_member=True, suppressed=suppressed)


# From each state to each other, and back.
STATES = [(e, s, x) for e in (True, False) for s in (True, False) for x in (False, True)]


@pytest.mark.parametrize("start", STATES, ids=str)
def test_a_consent_plan_brings_the_provider_to_our_state(
    provider: ProviderUnderTest, start: tuple[bool, bool, bool]
) -> None:
    async def walk(client: Provider) -> list[tuple[tuple[bool, bool, bool], dict[str, bool]]]:
        seen = []
        for target in [start, *STATES, start]:
            await _apply(client, state(*target), provider.newsletter_list_id)
            seen.append((target, provider.consent(EMAIL)))
        return seen

    for (email, sms, suppressed), held in run(provider, walk):
        assert held == expected_consent(email=email, sms=sms, suppressed=suppressed)


async def _apply(client: Provider, target: ConsentState, newsletter: str | None) -> None:
    """The planned calls in order, each split by its operation's limit as the workers do."""
    for call in client.plan_consent([("owner", target)], newsletter):
        per_call = client.limits.consent[call.operation].max_items
        for start in range(0, len(call.owners), per_call):
            await call.send(call.owners[start : start + per_call])


def test_erasing_a_person_the_provider_never_had_is_done(provider: ProviderUnderTest) -> None:
    run(provider, lambda client: client.request_erasure("nobody@example.com"))


def test_throttling_is_retryable_with_the_providers_retry_after(
    provider: ProviderUnderTest,
) -> None:
    provider.add_fault(path=provider.profile_path, status=429, retry_after=3)

    with pytest.raises(RetryableProviderError) as caught:
        run(provider, lambda client: client.upsert_profile(Profile(EMAIL)))

    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)


def test_a_server_error_on_events_is_retryable_and_the_retry_delivers_once(
    provider: ProviderUnderTest,
) -> None:
    event = TrackedEvent("ev-503", EMAIL, "product_viewed", WHEN, {})
    provider.add_fault(path=provider.event_path, status=503)

    async def twice(client: Provider) -> None:
        prepared = [client.prepare_event(event)]
        with pytest.raises(RetryableProviderError):
            await client.create_events(prepared)
        await client.create_events(prepared)

    run(provider, twice)

    assert provider.delivered() == {"ev-503": 1}


def test_a_stamped_request_notes_the_age_of_its_stamp_as_it_leaves(
    provider: ProviderUnderTest,
) -> None:
    """Every request a client makes inside a stamp of the gate (its API's, and
    ActiveCampaign's event tracking too) is noted as its headers are written, with the
    age the stamp has then; one made outside none is."""
    upsert, track = f"test-upsert-{provider.name}", f"test-track-{provider.name}"
    event = TrackedEvent("ev-stamped", EMAIL, "product_viewed", WHEN, {})
    made: dict[str, int] = {}

    async def stamped_then_not(client: Provider) -> dict[str, tuple[float, float]]:
        for operation, age, request in (
            (upsert, 0.03, client.upsert_profile(Profile(EMAIL))),
            (track, 0.02, client.create_events([client.prepare_event(event)])),
        ):
            before = len(provider.requests())
            with stamped(ScriptedStamp(operation, age).stamp()):
                await request
            made[operation] = len(provider.requests()) - before
        noted = {op: stamp_ages_noted(op) for op in (upsert, track)}
        await client.upsert_profile(Profile("bob@example.com"))
        return noted

    noted = run(provider, stamped_then_not)

    for operation, age in ((upsert, 0.03), (track, 0.02)):
        count, ages = noted[operation]
        assert count == made[operation]
        assert ages == pytest.approx(age * count)
    assert min(made.values()) >= 1
    assert {op: stamp_ages_noted(op) for op in (upsert, track)} == noted  # bob's: not stamped


def test_a_request_that_comes_to_leave_on_a_stale_stamp_goes_once_on_a_new_one(
    provider: ProviderUnderTest,
) -> None:
    """Each client sends every request through `http_pool.sent_in_time`: on a
    connection an earlier call opened, the first request of a call finds its stamp
    stale where it leaves (after the client's look once its body was built). It is
    called off before any byte goes, the stamp is renewed, and the request goes once:
    the provider sees each request once."""
    event = TrackedEvent("ev-late", EMAIL, "product_viewed", WHEN, {})
    warm_event = TrackedEvent("ev-warm", EMAIL, "product_viewed", WHEN, {})
    _sent_late_once(
        provider,
        "upsert",
        warm=lambda client: client.upsert_profile(Profile("bob@example.com")),
        call=lambda client: client.upsert_profile(Profile(EMAIL)),
    )
    _sent_late_once(
        provider,
        "track",
        warm=lambda client: client.create_events([client.prepare_event(warm_event)]),
        call=lambda client: client.create_events([client.prepare_event(event)]),
    )
    assert provider.delivered().get("ev-late") == 1


Call = Callable[[Provider], Awaitable[object]]


def _sent_late_once(provider: ProviderUnderTest, name: str, *, warm: Call, call: Call) -> None:
    """`warm` (unstamped) opens the connections `call` then uses, stamped."""
    scripted = ScriptedStamp(f"test-late-{name}-{provider.name}", stale_where_leaving=True)
    before: list[int] = []

    async def stamped_call(client: Provider) -> None:
        await warm(client)
        before.append(len(provider.requests()))
        with stamped(scripted.stamp()):
            await call(client)

    noted_before = stamp_ages_noted(scripted.operation)[0]
    run(provider, stamped_call)
    made = len(provider.requests()) - before[0]
    assert scripted.renewals == 1, name
    assert made >= 1 and stamp_ages_noted(scripted.operation)[0] - noted_before == made, name
    assert scripted.went == made, name  # each request that left marked the stamp used
