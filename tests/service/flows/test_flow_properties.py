"""Correctness Properties 9 and 12-20 (flows, timers) as Hypothesis tests
against PostgreSQL, with the clock injected: every time is the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from service.flows.definitions import Entry, EntryRule, State
from service.flows.entry import Prior, refusal
from service.storage.database import Database
from service.storage.models import EventLog
from service.workers.flow_worker import FlowWorker
from tests.harness import own_database
from tests.service.flows.engine import (
    Scenario,
    enrolments,
    log_event,
    register,
    scenarios_on,
    welcomes,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EXAMPLES = settings(max_examples=100, deadline=None)


@pytest.fixture(scope="module")
def props_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "flowprops") as url:
        yield url


@pytest.fixture
def on_db(props_db: str) -> Iterator[Callable[[Scenario], None]]:
    with scenarios_on(props_db) as run:
        yield run


def _email() -> str:
    return f"p-{uuid.uuid4().hex[:12]}@example.com"


def _order(order_id: str) -> dict[str, Any]:
    return {"order": {"order_id": order_id, "lines": [{"product_id": "mug", "quantity": 1}]}}


def _cart(cart_id: str) -> dict[str, Any]:
    item = {"product_id": "mug", "quantity": 1}
    return {"item": item, "cart": {"cart_id": cart_id, "items": [item]}}


minutes = st.integers(min_value=0, max_value=24 * 60)
seconds = st.integers(min_value=1, max_value=3600)


# **Feature: marketing-automation, Property 9: Cart abandonment detected**
@EXAMPLES
@given(activity=st.lists(minutes, min_size=1, max_size=5), before=seconds)
def test_property_9_a_cart_inactive_for_an_hour_is_abandoned(on_db, activity, before) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for offset in activity:
            await log_event(db, email, "added_to_cart", _cart("c"), T0 + timedelta(minutes=offset))
        due = T0 + timedelta(minutes=max(activity)) + HOUR
        await FlowWorker(db, lambda: due - timedelta(seconds=before)).fire_all_due()
        assert await _abandoned(db, email) == []
        await FlowWorker(db, lambda: due).fire_all_due()
        await FlowWorker(db, lambda: due + HOUR).fire_all_due()
        assert await _abandoned(db, email) == [due]

    on_db(scenario)


async def _abandoned(db: Database, email: str) -> list[datetime]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(EventLog.occurred_at).where(
                EventLog.type == "cart_abandoned", EventLog.data["email"].astext == email
            )
        )
        return list(rows)


# **Feature: marketing-automation, Property 12: Flow enrollment on trigger**
@EXAMPLES
@given(
    orders=st.lists(st.text("abc123", min_size=1, max_size=6), min_size=1, max_size=4, unique=True)
)
def test_property_12_a_trigger_enrols_at_once(on_db, orders) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for n, order_id in enumerate(orders):
            await log_event(db, email, "placed_order", _order(order_id), T0 + timedelta(seconds=n))
            found = await enrolments(db, email, "post-purchase")
            assert [e.entry_key for e in found] == orders[: n + 1]
            assert all(e.state == State.ACTIVE for e in found)

    on_db(scenario)


# **Feature: marketing-automation, Property 13: Duplicate enrollment prevented**
@EXAMPLES
@given(keys=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=8))
def test_property_13_a_second_attempt_while_enrolled_is_rejected(on_db, keys) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for n, key in enumerate(keys):
            await log_event(db, email, "placed_order", _order(key), T0 + timedelta(seconds=n))
        found = await enrolments(db, email, "post-purchase")
        assert len(found) == len(keys), "every attempt is recorded"
        active = [e.entry_key for e in found if e.state == State.ACTIVE]
        assert sorted(active) == sorted(set(keys)), "one running enrolment per key"
        rejected = [e for e in found if e.state == State.REJECTED]
        assert len(rejected) == len(keys) - len(set(keys))
        assert {e.rejection_reason for e in rejected} <= {"already_enrolled"}

    on_db(scenario)


# The entry rules themselves, over every history (P13's rule, apart from SQL).
@EXAMPLES
@given(
    rule=st.sampled_from(list(EntryRule)),
    priors=st.lists(
        st.tuples(st.sampled_from(["", "k"]), st.sampled_from(list(State)[:3]), minutes),
        max_size=4,
    ),
    key=st.sampled_from(["", "k"]),
)
def test_property_13_no_rule_admits_a_second_running_enrolment(rule, priors, key) -> None:
    entry = Entry(rule, key_property="x", cooldown=timedelta(minutes=30))
    history = [Prior(k, s, T0 + timedelta(minutes=m)) for k, s, m in priors]
    now = T0 + timedelta(days=2)
    reason = refusal(entry, key, history, now, live=True, suppressed=False)
    per_key = rule is EntryRule.ONCE_PER_KEY
    running = [
        p for p in history if p.state is State.ACTIVE and (not per_key or p.entry_key == key)
    ]
    if running:
        assert reason == "already_enrolled"
    if rule is EntryRule.ONCE_PER_CONTACT and history:
        assert reason is not None
    if not history:
        assert reason is None


# **Feature: marketing-automation, Property 14: Flow exit on condition**
@EXAMPLES
@given(
    steps=st.lists(st.sampled_from(["cart", "order"]), min_size=1, max_size=6),
)
def test_property_14_an_exit_condition_ends_the_enrolment_at_once(on_db, steps) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for n, step in enumerate(steps):
            at = T0 + timedelta(minutes=n)
            if step == "cart":
                await log_event(db, email, "cart_abandoned", _cart(f"c{n}"), at)
            else:
                await log_event(db, email, "placed_order", _order(f"o{n}"), at)
                running = await enrolments(db, email, "cart-recovery")
                assert all(e.state != State.ACTIVE for e in running), "a purchase exits at once"
        last_order = max((n for n, s in enumerate(steps) if s == "order"), default=-1)
        for e in await enrolments(db, email, "cart-recovery"):
            set_off_after = int(e.entry_key.removeprefix("c")) > last_order
            assert (e.state == State.ACTIVE) == set_off_after

    on_db(scenario)


# **Feature: marketing-automation, Property 15: Welcome flow enrollment**
@EXAMPLES
@given(registered=st.one_of(st.none(), minutes))
def test_property_15_every_registration_enrols_in_welcome(on_db, registered) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        fields: dict[str, Any] = {}
        if registered is not None:
            fields["registration_time"] = T0 - timedelta(minutes=registered)
        await register(db, email, T0, **fields)
        (welcome,) = await welcomes(db, email)
        assert welcome.state == State.ACTIVE and welcome.created_at == T0
        await register(db, email, T0 + HOUR, last_name="Lovelace")
        assert len(await welcomes(db, email)) == 1, "a later upsert is no registration"

    on_db(scenario)


# **Feature: marketing-automation, Property 16: Welcome flow exit on purchase**
@EXAMPLES
@given(after=seconds)
def test_property_16_a_purchase_in_welcome_exits_it(on_db, after) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        await log_event(db, email, "placed_order", _order("o"), T0 + timedelta(seconds=after))
        (welcome,) = await welcomes(db, email)
        assert welcome.state == State.EXITED and welcome.exit_reason == "event:placed_order"

    on_db(scenario)


# **Feature: marketing-automation, Property 17: Cart recovery enrollment timing**
@EXAMPLES
@given(activity=st.lists(minutes, min_size=1, max_size=4), early=seconds)
def test_property_17_recovery_starts_after_exactly_an_hour(on_db, activity, early) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for offset in activity:
            await log_event(db, email, "added_to_cart", _cart("c"), T0 + timedelta(minutes=offset))
        due = T0 + timedelta(minutes=max(activity)) + HOUR
        await FlowWorker(db, lambda: due - timedelta(seconds=early)).fire_all_due()
        assert await enrolments(db, email, "cart-recovery") == []
        await FlowWorker(db, lambda: due).fire_all_due()
        (recovery,) = await enrolments(db, email, "cart-recovery")
        # Set off by the cart's last activity, an hour before (a purchase
        # after it ends the recovery, however late it is logged).
        assert recovery.state == State.ACTIVE and recovery.cause_time == due - HOUR

    on_db(scenario)


# **Feature: marketing-automation, Property 18: Cart recovery exit on purchase**
@EXAMPLES
@given(after=seconds)
def test_property_18_a_purchase_in_recovery_exits_it(on_db, after) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        await log_event(db, email, "added_to_cart", _cart("c"), T0)
        await FlowWorker(db, lambda: T0 + HOUR).fire_all_due()
        bought = T0 + HOUR + timedelta(seconds=after)
        await log_event(db, email, "placed_order", _order("o"), bought)
        (recovery,) = await enrolments(db, email, "cart-recovery")
        assert recovery.state == State.EXITED and recovery.ended_at == bought

    on_db(scenario)


# **Feature: marketing-automation, Property 19: Post-purchase enrollment**
@EXAMPLES
@given(order_id=st.text("xyz789-", min_size=1, max_size=12))
def test_property_19_every_purchase_enrols_in_post_purchase(on_db, order_id) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        await log_event(db, email, "placed_order", _order(order_id), T0)
        (post,) = await enrolments(db, email, "post-purchase")
        assert post.state == State.ACTIVE and post.entry_key == order_id

    on_db(scenario)


# **Feature: marketing-automation, Property 20: Win-back enrollment timing**
@EXAMPLES
@given(purchases=st.lists(st.integers(0, 200), min_size=1, max_size=3), early=seconds)
def test_property_20_ninety_days_without_a_purchase_enrol_in_win_back(
    on_db, purchases, early
) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0)
        for day in purchases:
            await log_event(db, email, "placed_order", _order(f"o{day}"), T0 + timedelta(days=day))
        due = T0 + timedelta(days=max(purchases) + 90)
        await FlowWorker(db, lambda: due - timedelta(seconds=early)).fire_all_due()
        assert await enrolments(db, email, "win-back") == []
        await FlowWorker(db, lambda: due).fire_all_due()
        (win_back,) = await enrolments(db, email, "win-back")
        assert win_back.cause_time == due - timedelta(days=90)

    on_db(scenario)


# Consent is never assumed: a marketing flow enrols only a person who granted
# email marketing; a back-in-stock notice is asked for and needs none.
@EXAMPLES
@given(consented=st.booleans())
def test_no_marketing_flow_enrols_without_email_consent(on_db, consented) -> None:
    async def scenario(db: Database) -> None:
        email = _email()
        await register(db, email, T0, consent=consented)
        await log_event(db, email, "placed_order", _order("o"), T0 + HOUR)
        (post,) = await enrolments(db, email, "post-purchase")
        if consented:
            assert post.state == State.ACTIVE
        else:
            assert (post.state, post.rejection_reason) == (State.REJECTED, "no_consent")
        assert bool(await welcomes(db, email)) == consented

    on_db(scenario)
