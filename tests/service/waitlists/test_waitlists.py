"""Back-in-stock waitlists against PostgreSQL with an injected clock: joining
(the contact created when missing), leaving, restocks picking whom they
answer, each subscription notified once through the back-in-stock flow, a
suppressed address skipped with why, and buyers taken off (Properties 33,
34)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy import text as sql

from service.consent.unsubscribing import unsubscribe
from service.errors import InvalidArgumentError, NotFoundError, Violations
from service.storage.database import Database
from service.storage.listening import LISTENING, listen
from service.storage.models import Enrolment
from service.waitlists import restocks, rules
from service.workers.flow_worker import FlowWorker, TimerSettings
from tests.harness import own_database, until_true
from tests.service.flows.engine import (
    BEGUN,
    Scenario,
    enrolments,
    log_event,
    outbox_kinds,
    outbox_rows,
    scenarios_on,
)

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
PRODUCT = {"product_id": "mug", "title": "Stoneware mug", "url": "https://shop.example/mug"}


@pytest.fixture(scope="module")
def waitlist_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "waitlists") as url:
        yield url


@pytest.fixture
def on_db(waitlist_db: str) -> Iterator[Callable[[Scenario], None]]:
    with scenarios_on(waitlist_db) as run:
        yield run


def _email(label: str = "w") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def _product() -> str:
    return f"prod-{uuid.uuid4().hex[:8]}"


async def _join(db: Database, email: str, product: str, variant: str = "", at: datetime = T0):
    return await rules.subscribe(
        db, email=email, product_id=product, variant_id=variant, source="product_page", now=at
    )


async def _notify(
    db: Database,
    product: str,
    variant: str = "",
    quantity: int | None = None,
    request_id: uuid.UUID | None = None,
):
    return await restocks.notify(
        db,
        product_id=product,
        variant_id=variant,
        quantity=quantity,
        product=PRODUCT | {"product_id": product},
        request_id=request_id,
        now=T0 + timedelta(days=1),
    )


async def _states(db: Database, product: str) -> dict[str, str]:
    page = await rules.list_subscriptions(
        db,
        _tokens(),
        product_id=product,
        variant_id="",
        contact_id=None,
        states=[],
        page_size=1000,
        page_token="",
        violations=Violations(),
    )
    return {s.email: s.state for s in page.subscriptions}


def _tokens():
    from service.common.pagination import PageTokens

    return PageTokens(b"waitlist-test-key")


def _worker(db: Database) -> FlowWorker:
    return FlowWorker(db, lambda: T0 + timedelta(days=1, minutes=1))


def test_joining_creates_the_contact_and_a_second_join_is_the_same(on_db) -> None:
    async def scenario(db: Database) -> None:
        email, product = _email(), _product()
        first, created = await _join(db, email, product)
        again, created_again = await _join(db, email.upper(), product)
        assert created and not created_again and again.id == first.id
        assert first.state == "WAITING" and first.email == email

    on_db(scenario)


def test_a_restock_notifies_each_waiting_person_once(on_db) -> None:
    async def scenario(db: Database) -> None:
        product = _product()
        emails = [_email() for _ in range(3)]
        for n, email in enumerate(emails):
            await _join(db, email, product, at=T0 + timedelta(seconds=n))
        restock = await _notify(db, product)
        assert restock.picked == 3
        assert await _worker(db).notify_all() == 3
        assert set((await _states(db, product)).values()) == {"NOTIFIED"}
        decided = []
        for email in emails:
            (enrolment,) = await enrolments(db, email, "back-in-stock")
            (begun,) = await outbox_rows(db, email, BEGUN)
            assert begun.payload.enrolment_id == str(enrolment.id)
            context = orjson.loads(begun.payload.context_json)
            assert context["purchase_url"] == PRODUCT["url"]
            assert context["product"]["title"] == "Stoneware mug"
            decided.append(enrolment)
        # Inserted in contact order (decisions are), with ids ascending in that order.
        in_order = sorted(decided, key=lambda e: e.contact_id.int)
        assert [e.id.int for e in in_order] == sorted(e.id.int for e in decided)
        assert (await _notify(db, product)).picked == 0, "a second restock notifies no one again"

    on_db(scenario)


def test_a_restock_that_answers_anyone_wakes_the_flow_worker(on_db) -> None:
    """Its transaction notifies the flow worker's channel (listened on by its
    waitlist loops) with its id, as a range or picking a quantity; one that
    answers no one does not."""

    async def scenario(db: Database) -> None:
        product = _product()
        seen: list[str] = []
        stopping = asyncio.Event()
        listening = asyncio.create_task(
            listen(db, restocks.RESTOCKED, seen.append, stopping, lambda _: 0.1)
        )
        try:
            await until_true(lambda: seen == [LISTENING])
            assert (await _notify(db, product)).picked == 0
            await _join(db, _email(), product)
            as_range = await _notify(db, product)
            await _join(db, _email(), product, at=T0 + timedelta(seconds=1))
            picking = await _notify(db, product, quantity=1)
            assert (as_range.picked, picking.picked) == (1, 1)
            # In commit order: once the last is here, the first would have come before it.
            await until_true(lambda: str(picking.id) in seen, timeout_s=10)
            assert seen == [LISTENING, str(as_range.id), str(picking.id)]
        finally:
            stopping.set()
            await asyncio.wait_for(listening, 20)
            await _worker(db).notify_all()  # nothing left for the tests after

    on_db(scenario)


def test_batches_notified_side_by_side_notify_each_person_once(on_db) -> None:
    """The flow worker's waitlist loops (MARKETING_WAITLIST_CONCURRENCY) take
    batches of the same restock at once: each takes rows the others skip, and
    everyone is notified once, with one enrolment and one provider message."""

    async def scenario(db: Database) -> None:
        product = _product()
        emails = [_email("side") for _ in range(40)]
        for n, email in enumerate(emails):
            await _join(db, email, product, at=T0 + timedelta(seconds=n))
        assert (await _notify(db, product)).picked == 40
        worker = FlowWorker(
            db,
            lambda: T0 + timedelta(days=1, minutes=1),
            TimerSettings(waitlist_batch=3, waitlist_concurrency=4),
        )
        taken = await asyncio.gather(*(worker.notify_all() for _ in range(4)))
        assert sum(taken) == 40
        assert set((await _states(db, product)).values()) == {"NOTIFIED"}
        for email in emails:
            assert len(await enrolments(db, email, "back-in-stock")) == 1
            assert (await outbox_kinds(db, email)).count("enrolments.begun") == 1

    on_db(scenario)


def test_quantity_and_variants_decide_whom_a_restock_answers(on_db) -> None:
    async def scenario(db: Database) -> None:
        product = _product()
        red, blue, any_ = _email("red"), _email("blue"), _email("any")
        await _join(db, red, product, "red", T0)
        await _join(db, blue, product, "blue", T0 + timedelta(seconds=1))
        await _join(db, any_, product, "", T0 + timedelta(seconds=2))
        assert (await _notify(db, product, "red")).picked == 2  # red and any variant
        await _worker(db).notify_all()
        states = await _states(db, product)
        assert states == {red: "NOTIFIED", blue: "WAITING", any_: "NOTIFIED"}
        other = _product()
        for n in range(3):
            await _join(db, _email(), other, at=T0 + timedelta(seconds=n))
        assert (await _notify(db, other, quantity=2)).picked == 2
        assert (await _notify(db, other)).picked == 1

    on_db(scenario)


def test_a_retried_restock_picks_no_one_else(on_db) -> None:
    async def scenario(db: Database) -> None:
        product, request_id = _product(), uuid.uuid4()
        for n in range(4):
            await _join(db, _email(), product, at=T0 + timedelta(seconds=n))
        first = await _notify(db, product, quantity=2, request_id=request_id)
        again = await _notify(db, product, quantity=2, request_id=request_id)
        assert again.id == first.id and again.picked == first.picked == 2
        await _worker(db).notify_all()
        states = list((await _states(db, product)).values())
        assert states.count("NOTIFIED") == states.count("WAITING") == 2

    on_db(scenario)


def test_a_suppressed_address_is_skipped_with_why(on_db) -> None:
    async def scenario(db: Database) -> None:
        email, product = _email("gone"), _product()
        await _join(db, email, product)
        await unsubscribe(db, email=email, reason="", clock=lambda: T0)
        await _notify(db, product)
        await _worker(db).notify_all()
        page = await rules.list_subscriptions(
            db,
            _tokens(),
            product_id=product,
            variant_id="",
            contact_id=None,
            states=["SKIPPED"],
            page_size=10,
            page_token="",
            violations=Violations(),
        )
        assert [(s.email, s.reason) for s in page.subscriptions] == [(email, "suppressed")]

    on_db(scenario)


def test_leaving_and_bad_input(on_db) -> None:
    async def scenario(db: Database) -> None:
        email, product = _email(), _product()
        await _join(db, email, product)
        left = await rules.unsubscribe(db, email=email, product_id=product, variant_id="", now=T0)
        assert (left.state, left.reason) == ("REMOVED", "unsubscribed")
        with pytest.raises(NotFoundError):
            await rules.unsubscribe(db, email=email, product_id=product, variant_id="", now=T0)
        with pytest.raises(InvalidArgumentError):
            await _join(db, "not an email", "has space")

    on_db(scenario)


# **Feature: marketing-automation, Property 33: Back-in-stock notification timing**
@settings(max_examples=100, deadline=None)
@given(waiting=st.integers(1, 12), quantity=st.one_of(st.none(), st.integers(1, 15)))
def test_property_33_every_picked_person_is_notified_within_the_hour_once(
    on_db, waiting, quantity
) -> None:
    async def scenario(db: Database) -> None:
        product = _product()
        for n in range(waiting):
            await _join(db, _email(), product, at=T0 + timedelta(seconds=n))
        restocked = T0 + timedelta(days=1)
        picked = (await _notify(db, product, quantity=quantity)).picked
        assert picked == min(waiting, quantity or waiting)
        await FlowWorker(db, lambda: restocked + timedelta(seconds=1)).notify_all()
        states = await _states(db, product)
        assert list(states.values()).count("NOTIFIED") == picked
        assert list(states.values()).count("WAITING") == waiting - picked
        async with db.transaction() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Enrolment)
                .where(
                    Enrolment.flow_id == "back-in-stock",
                    Enrolment.cause_ref.in_([str(s.id) for s in await _subscriptions(db, product)]),
                )
            )
        assert count == picked, "one enrolment per notified subscription"
        assert (await _notify(db, product, quantity=quantity)).picked == min(
            waiting - picked, quantity or waiting
        )

    on_db(scenario)


async def _subscriptions(db: Database, product: str):
    page = await rules.list_subscriptions(
        db,
        _tokens(),
        product_id=product,
        variant_id="",
        contact_id=None,
        states=[],
        page_size=1000,
        page_token="",
        violations=Violations(),
    )
    return page.subscriptions


# **Feature: marketing-automation, Property 34: Waitlist removal on purchase**
@settings(max_examples=100, deadline=None)
@given(
    waits_for=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
    buys=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3),
)
def test_property_34_a_purchase_takes_the_buyer_off_its_waitlist(on_db, waits_for, buys) -> None:
    async def scenario(db: Database) -> None:
        email = _email("buyer")
        prefix = uuid.uuid4().hex[:6]
        for product in waits_for:
            await _join(db, email, f"{prefix}-{product}")
        from tests.service.flows.engine import register

        await register(db, email, T0)
        lines = [{"product_id": f"{prefix}-{p}", "quantity": 1} for p in buys]
        await log_event(db, email, "placed_order", {"order": {"order_id": "o", "lines": lines}}, T0)
        for product in waits_for:
            (subscription,) = await _subscriptions(db, f"{prefix}-{product}")
            bought = product in buys
            assert subscription.state == ("REMOVED" if bought else "WAITING")
            assert subscription.reason == ("purchased" if bought else None)

    on_db(scenario)


@pytest.mark.parametrize("status", ["PENDING", "IN_FLIGHT"])
def test_an_erasure_takes_the_person_out_of_a_message_of_many_beginnings(
    on_db, status: str
) -> None:
    """A restock's notifications are one KIND_ENROLMENTS_BEGUN row for many people:
    erasing one of them takes their beginning out and keeps the others'. Once nobody
    is left, a row that has not left yet goes; one on the bus stays, for its result,
    without anyone's data."""
    from service.contacts.rules import delete_contact

    async def scenario(db: Database) -> None:
        product = _product()
        emails = [_email("erased") for _ in range(3)]
        for email in emails:
            await _join(db, email, product)
        await _notify(db, product)
        await _worker(db).notify_all()
        assert set((await _states(db, product)).values()) == {"NOTIFIED"}
        assert [(await outbox_kinds(db, e)).count("enrolments.begun") for e in emails] == [1] * 3
        assert await _begun_rows(db, product) == 1
        async with db.transaction() as session:
            row_id = await session.scalar(
                sql(
                    "UPDATE marketing_outbox SET status = CAST(:status AS outbox_status) "
                    "WHERE kind = 'enrolments.begun' AND position(:needle IN payload) > 0 "
                    "RETURNING id"
                ),
                {"status": status, "needle": product.encode()},
            )
        for n, email in enumerate(emails):
            (enrolment,) = await enrolments(db, email, "back-in-stock")
            await delete_contact(db, name=f"contacts/{enrolment.contact_id}", now=T0)
            assert "enrolments.begun" not in await outbox_kinds(db, email)
            for other in emails[n + 1 :]:
                assert (await outbox_kinds(db, other)).count("enrolments.begun") == 1
        assert await _begun_rows(db, product) == 0, "nobody's data is left in it"
        async with db.transaction() as session:
            left = await session.scalar(
                sql("SELECT payload FROM marketing_outbox WHERE id = :id"), {"id": row_id}
            )
        assert left == (b"" if status == "IN_FLIGHT" else None)

    on_db(scenario)


async def _begun_rows(db: Database, needle: str) -> int:
    """KIND_ENROLMENTS_BEGUN rows whose payload holds `needle` (an email, a product id)."""
    async with db.transaction() as session:
        found = await session.scalar(
            sql(
                "SELECT count(*) FROM marketing_outbox "
                "WHERE kind = 'enrolments.begun' AND position(:needle IN payload) > 0"
            ),
            {"needle": needle.encode()},
        )
        return int(found or 0)


def test_a_restock_answers_those_waiting_when_it_was_made_and_finishes(on_db) -> None:
    """Its range is the waiting it picked: one who joins after it waits on for the
    next; one who leaves, or buys the product, before their batch is not notified;
    once nobody in its range waits, the restock is finished."""

    async def scenario(db: Database) -> None:
        product = _product()
        stays, leaves, buys, late = (_email(n) for n in ("stays", "leaves", "buys", "late"))
        for n, email in enumerate((stays, leaves, buys)):
            await _join(db, email, product, at=T0 + timedelta(seconds=n))
        restock = await _notify(db, product)
        assert restock.picked == 3
        await _join(db, late, product, at=T0 + timedelta(days=1, seconds=1))
        await rules.unsubscribe(db, email=leaves, product_id=product, variant_id="", now=T0)
        await log_event(db, buys, "placed_order", _purchase(product), T0 + timedelta(days=1))
        assert not await _finished(db, restock.id)
        await _worker(db).notify_all()
        assert await _states(db, product) == {
            stays: "NOTIFIED",
            leaves: "REMOVED",
            buys: "REMOVED",
            late: "WAITING",
        }
        assert await _finished(db, restock.id)

    on_db(scenario)


def _purchase(product: str) -> dict[str, object]:
    return {
        "order": {"order_id": f"o-{product}", "lines": [{"product_id": product, "quantity": 1}]}
    }


async def _finished(db: Database, restock_id: uuid.UUID) -> bool:
    from service.storage.models import Restock

    async with db.transaction() as session:
        restock = await session.get(Restock, restock_id)
        assert restock is not None
        return restock.finished_at is not None


def test_two_restocks_at_once_answer_each_person_once(on_db) -> None:
    """Restocks of one product are made one at a time: of two at once, the later
    answers nobody the earlier (still notifying) answers, with or without a
    quantity, and everyone is notified once."""

    async def scenario(db: Database) -> None:
        product = _product()
        emails = [_email("twice") for _ in range(6)]
        for n, email in enumerate(emails):
            await _join(db, email, product, at=T0 + timedelta(seconds=n))
        ranges = await asyncio.gather(_notify(db, product), _notify(db, product))
        assert sorted(r.picked for r in ranges) == [0, 6]
        more = _email("more")
        await _join(db, more, product, at=T0 + timedelta(days=1))
        quantity = await _notify(db, product, quantity=5)
        assert quantity.picked == 1, "the one who joined since: the others are answered"
        await _worker(db).notify_all()
        assert set((await _states(db, product)).values()) == {"NOTIFIED"}
        for email in [*emails, more]:
            assert len(await enrolments(db, email, "back-in-stock")) == 1

    on_db(scenario)
