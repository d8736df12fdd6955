"""The flow decisions against PostgreSQL, with an injected clock: each trigger
enrols (or records why not), each exit ends what it should, timers fire once
at their time, and the provider is told through the outbox."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from marketing_runtime.timestamps import epoch_micros
from sqlalchemy import insert, select

from service.consent.unsubscribing import unsubscribe
from service.flows import firing, timers
from service.flows.enrolments import exit_where
from service.flows.triggers import load_flows
from service.segments.rules import NewSegment, change_members, create_segment
from service.storage.database import Database
from service.storage.models import Enrolment, Flow, SegmentKind, Timer
from service.workers.flow_worker import FlowWorker, TimerSettings
from tests.harness import own_database
from tests.service.flows.engine import (
    enrolments,
    log_event,
    outbox_kinds,
    outbox_rows,
    register,
    timers_of,
    welcomes,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ENROLMENT = "enrolment.changed"
BEGUN = "enrolments.begun"


@pytest.fixture(scope="module")
def flows_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "flows") as url:
        yield url


def _email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def run(url: str, scenario) -> None:
    async def go() -> None:
        db = Database(url)
        try:
            await scenario(db)
        finally:
            await db.close()

    asyncio.run(go())


def _order(order_id: str) -> dict[str, object]:
    return {"order": {"order_id": order_id, "lines": [{"product_id": "mug", "quantity": 1}]}}


def _cart(cart_id: str, product: str = "mug") -> dict[str, object]:
    item = {"product_id": product, "quantity": 1, "url": f"https://shop.example/{product}"}
    return {"item": item, "cart": {"cart_id": cart_id, "items": [item]}}


def test_a_registration_enrols_in_welcome_and_a_purchase_exits_it(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("welcome")
        await register(db, email, T0)
        (welcome,) = await welcomes(db, email)
        assert welcome.state == "ACTIVE" and welcome.cause_kind == "REGISTRATION"
        await log_event(db, email, "placed_order", _order("o-1"), T0 + timedelta(hours=2))
        (welcome,) = await welcomes(db, email)
        assert welcome.state == "EXITED" and welcome.exit_reason == "event:placed_order"
        (post,) = await enrolments(db, email, "post-purchase")
        assert post.state == "ACTIVE" and post.entry_key == "o-1"
        kinds = await outbox_kinds(db, email)
        assert kinds.count(BEGUN) == 2  # welcome in, post-purchase in
        assert kinds.count(ENROLMENT) == 1  # welcome out

    run(flows_db, scenario)


def test_an_event_seen_twice_decides_once(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("twice")
        await register(db, email, T0)
        event_id = await log_event(db, email, "placed_order", _order("o-2"), T0)
        await log_event(db, email, "placed_order", _order("o-2"), T0, event_id=event_id)
        assert len(await enrolments(db, email, "post-purchase")) == 1

    run(flows_db, scenario)


def test_a_second_order_is_its_own_key_and_a_repeat_of_one_is_rejected(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("orders")
        await register(db, email, T0)
        await log_event(db, email, "placed_order", _order("o-3"), T0)
        await log_event(db, email, "placed_order", _order("o-4"), T0 + timedelta(minutes=1))
        await log_event(db, email, "placed_order", _order("o-3"), T0 + timedelta(minutes=2))
        states = [
            (e.entry_key, e.state, e.rejection_reason)
            for e in await enrolments(db, email, "post-purchase")
        ]
        assert states == [
            ("o-3", "ACTIVE", None),
            ("o-4", "ACTIVE", None),
            ("o-3", "REJECTED", "already_enrolled"),
        ]

    run(flows_db, scenario)


def test_a_cart_left_an_hour_is_abandoned_and_recovered(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("cart")
        contact = await register(db, email, T0)
        await log_event(db, email, "added_to_cart", _cart("c-1"), T0)
        await log_event(db, email, "added_to_cart", _cart("c-1", "tea"), T0 + timedelta(minutes=20))
        (timer,) = await timers_of(db, contact, timers.CART)
        assert timer.due_at == T0 + timedelta(minutes=80), "activity resets the hour"
        early = FlowWorker(db, lambda: T0 + timedelta(minutes=79))
        assert await early.fire_all_due() == 0
        on_time = FlowWorker(db, lambda: T0 + timedelta(minutes=80))
        assert await on_time.fire_all_due() >= 1
        (recovery,) = await enrolments(db, email, "cart-recovery")
        assert recovery.state == "ACTIVE" and recovery.entry_key == "c-1"
        (begun,) = [
            r.payload
            for r in await outbox_rows(db, email, BEGUN)
            if r.payload.flow_id == "cart-recovery"
        ]
        assert begun.enrolment_id == str(recovery.id)
        assert orjson.loads(begun.context_json)["cart"]["cart_id"] == "c-1"
        assert await timers_of(db, contact, timers.CART) == []
        await log_event(db, email, "placed_order", _order("o-5"), T0 + timedelta(hours=3))
        (recovery,) = await enrolments(db, email, "cart-recovery")
        assert recovery.state == "EXITED"

    run(flows_db, scenario)


def test_a_purchase_cancels_the_cart_timer(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("bought")
        contact = await register(db, email, T0)
        await log_event(db, email, "added_to_cart", _cart("c-2"), T0)
        await log_event(db, email, "placed_order", _order("o-6"), T0 + timedelta(minutes=10))
        assert await timers_of(db, contact, timers.CART) == []

    run(flows_db, scenario)


def test_no_purchase_for_90_days_enrols_in_win_back(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("lapsed")
        contact = await register(db, email, T0)
        await log_event(db, email, "placed_order", _order("o-7"), T0)
        (timer,) = await timers_of(db, contact, timers.NO_PURCHASE)
        assert timer.due_at == T0 + timedelta(days=90)
        await FlowWorker(db, lambda: T0 + timedelta(days=90)).fire_all_due()
        (win_back,) = await enrolments(db, email, "win-back")
        assert win_back.state == "ACTIVE" and win_back.cause_time == T0

    run(flows_db, scenario)


def test_unsubscribing_exits_every_flow(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("leaving")
        await register(db, email, T0)
        await unsubscribe(db, email=email, reason="", clock=lambda: T0 + timedelta(minutes=5))
        (welcome,) = await welcomes(db, email)
        assert welcome.state == "EXITED" and welcome.exit_reason == "unsubscribed"

    run(flows_db, scenario)


def test_joining_a_segment_enrols_and_leaving_it_exits(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        segment_id = f"vip-{uuid.uuid4().hex[:6]}"
        await create_segment(
            db, NewSegment(segment_id, segment_id, "", SegmentKind.MANUAL, None), now=T0
        )
        flow_id = f"vip-{uuid.uuid4().hex[:6]}"
        async with db.transaction() as session:
            await session.execute(
                insert(Flow).values(
                    id=flow_id,
                    display_name="VIP welcome",
                    trigger_kind="SEGMENT_ENTERED",
                    trigger_segment=segment_id,
                    entry_rule="REENTER_AFTER_EXIT",
                    exit_segments=[segment_id],
                    live=True,
                    completes_after_s=86_400,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        email = _email("vip")
        contact = await register(db, email, T0)
        worker = FlowWorker(db, lambda: T0 + timedelta(minutes=1))
        name = f"segments/{segment_id}"
        members = [f"contacts/{contact}"]
        await change_members(
            db, segment_id=segment_id, name=name, contact_names=members, join=True, now=T0
        )
        assert await worker.drain_all_signals() == 1
        (vip,) = await enrolments(db, email, flow_id)
        assert vip.state == "ACTIVE" and vip.cause_ref == segment_id
        later = T0 + timedelta(minutes=2)
        await change_members(
            db, segment_id=segment_id, name=name, contact_names=members, join=False, now=later
        )
        await worker.drain_all_signals()
        (vip,) = await enrolments(db, email, flow_id)
        assert vip.state == "EXITED" and vip.exit_reason == f"segment_left:{segment_id}"

    run(flows_db, scenario)


def test_an_exit_says_whether_another_enrolment_of_the_flow_runs_on(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        email = _email("two-carts")
        await register(db, email, T0)
        await log_event(db, email, "cart_abandoned", _cart("c-a"), T0)
        await log_event(db, email, "cart_abandoned", _cart("c-b"), T0)
        first, second = await enrolments(db, email, "cart-recovery")
        async with db.transaction() as session:
            await exit_where(session, Enrolment.id == first.id, "manual", T0)
        async with db.transaction() as session:
            await exit_where(session, Enrolment.id == second.id, "manual", T0)
        exits = [
            row.payload
            for row in await outbox_rows(db, email, "enrolment.changed")
            if not row.payload.active
        ]
        assert [e.others_active for e in exits] == [True, False]

    run(flows_db, scenario)


def test_overdue_timers_fire_oldest_first(flows_db: str) -> None:
    async def scenario(db: Database) -> None:
        emails = [_email(f"late{n}") for n in range(3)]
        for n, email in enumerate(emails):
            await register(db, email, T0)
            # Activity later for the earlier addresses: due times in reverse order.
            at = T0 + timedelta(minutes=10 * (len(emails) - n))
            await log_event(db, email, "added_to_cart", _cart(f"c-late-{n}"), at)
        ticks = itertools.count()  # each batch a second after the last

        def clock() -> datetime:
            return T0 + timedelta(hours=5, seconds=next(ticks))

        one_at_a_time = FlowWorker(db, clock, TimerSettings(batch=1))
        await one_at_a_time.fire_all_due()
        firing_order: list[tuple[datetime, datetime, str]] = []
        for email in emails:
            (recovery,) = await enrolments(db, email, "cart-recovery")
            assert recovery.cause_time is not None
            firing_order.append((recovery.created_at, recovery.cause_time, email))
        by_due = sorted(firing_order, key=lambda f: f[1])
        assert [f[2] for f in by_due] == list(reversed(emails))
        fired_at = [f[0] for f in by_due]
        assert fired_at == sorted(fired_at) and len(set(fired_at)) == 3

    run(flows_db, scenario)


def test_a_firing_that_fails_leaves_its_timer_to_fire_once_later(
    flows_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(db: Database) -> None:
        email = _email("crash")
        contact = await register(db, email, T0)
        await log_event(db, email, "added_to_cart", _cart("c-crash"), T0)
        due = T0 + timedelta(hours=1)

        async def crash(*_: object) -> None:
            raise RuntimeError("the process died mid-batch")

        with monkeypatch.context() as patched:
            patched.setattr(firing, "fire", crash)
            with pytest.raises(RuntimeError):
                await FlowWorker(db, lambda: due).fire_due_once()
        assert len(await timers_of(db, contact, timers.CART)) == 1, "rolled back with it"
        await FlowWorker(db, lambda: due).fire_all_due()
        await FlowWorker(db, lambda: due + timedelta(hours=1)).fire_all_due()
        assert len(await enrolments(db, email, "cart-recovery")) == 1

    run(flows_db, scenario)


def test_an_abandonment_and_a_purchase_taken_at_once_end_in_an_exit(flows_db: str) -> None:
    """Two batches deciding for one person at the same moment (two event-log
    writers): whichever commits first, the purchase ends the recovery."""

    async def scenario(db: Database) -> None:
        for n in range(10):
            email = _email(f"race{n}")
            await register(db, email, T0)
            item = {"product_id": "mug", "quantity": 1}
            cart = {
                "item": item,
                "cart": {
                    "cart_id": f"c-race-{n}",
                    "items": [item],
                    "last_activity_time": "2026-06-01T09:00:00Z",  # T0
                },
            }
            await asyncio.gather(
                log_event(db, email, "cart_abandoned", cart, T0 + timedelta(hours=1)),
                log_event(
                    db, email, "placed_order", _order(f"o-race-{n}"), T0 + timedelta(minutes=30)
                ),
            )
            (recovery,) = await enrolments(db, email, "cart-recovery")
            assert recovery.state == "EXITED", f"round {n}"

    run(flows_db, scenario)


def test_enrolments_complete_when_their_flows_time_is_up_one_timer_per_instant(
    flows_db: str,
) -> None:
    """The enrolments begun at one instant share one completion timer (of no one
    person); when it fires, those still running are COMPLETED, an exited one stays
    EXITED, and one begun later runs on until its own time."""

    async def scenario(db: Database) -> None:
        first, exited, later = _email("done-a"), _email("done-b"), _email("done-c")
        await register(db, first, T0)
        await register(db, exited, T0)
        await register(db, later, T0 + timedelta(hours=1))
        await log_event(db, exited, "placed_order", _order("o-done"), T0 + timedelta(hours=2))
        async with db.transaction() as session:
            (welcome,) = [f for f in await load_flows(session) if f.id == "welcome"]
            pending = await session.scalars(
                select(Timer.key).where(
                    Timer.kind == timers.ENROLMENTS_END, Timer.key.like("welcome@%")
                )
            )
            keys = set(pending)
        assert {f"welcome@{epoch_micros(T0 + timedelta(hours=h))}" for h in (0, 1)} <= keys
        up = T0 + welcome.completes_after
        await FlowWorker(db, lambda: up).fire_all_due()
        states = [(await welcomes(db, e))[0].state for e in (first, exited, later)]
        assert states == ["COMPLETED", "EXITED", "ACTIVE"]
        await FlowWorker(db, lambda: up + timedelta(hours=1)).fire_all_due()
        assert (await welcomes(db, later))[0].state == "COMPLETED"

    run(flows_db, scenario)
