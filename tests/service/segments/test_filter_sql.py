"""Filters compile to parameterised SQL only: hostile values (quotes, comments,
`%`, `_`, backslashes, NUL, unicode look-alikes, very long strings) in every
kind of condition either are refused by validation or select exactly the
contacts the Python evaluator (evaluator.py) selects over the same rows, and
nothing else in the database changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.common.validation import email_key
from service.errors import Violations
from service.segments import filters as f
from service.segments.sql import compile_filter
from service.storage.models import Contact
from tests.harness import own_database
from tests.service.segments.evaluator import Event, Person, matches

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOSTILE = [
    "'",
    "''; DROP TABLE marketing_contact; --",
    "%",
    "_",
    "\\",
    "a%b",
    "a_b",
    "50%_off\\",
    "O'Brien",
    "-- comment",
    "/* x */",
    "\uff21dmin",  # fullwidth A
    "\u0430dmin",  # Cyrillic a
    "admin",
    "e\u0301",
    "\u00e9",
    "\u202eevil",
    "x" * 500,
    "gold",
    "",
]
REFUSED = ["nul\x00byte", "y" * 501]
TEXTS = st.sampled_from(HOSTILE + REFUSED)
NUMBERS = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 100.0, 199.5, -1.0, 1e12])
TIMES = st.sampled_from([NOW - timedelta(days=d) for d in (0, 1, 30, 89, 91, 400)])
WINDOWS = st.sampled_from([timedelta(days=d) for d in (1, 7, 30, 90, 365)])
EVENT_TYPES = st.sampled_from(["placed_order", "product_viewed", "review_submitted"])
TEXT_FIELDS = [k for k, kind in f.FIELD_KINDS.items() if kind is f.Kind.TEXT]
NUMBER_FIELDS = [k for k, kind in f.FIELD_KINDS.items() if kind is f.Kind.NUMBER]
TIME_FIELDS = [k for k, kind in f.FIELD_KINDS.items() if kind is f.Kind.TIME]
PROPERTY_KEYS = st.sampled_from(["color", "size", "vip", "co'lor", "%"])


def _text_condition(subject: f.Subject) -> st.SearchStrategy[tuple[f.Op, f.Value]]:
    return st.one_of(
        st.tuples(st.sampled_from([f.Op.EQUALS, f.Op.NOT_EQUALS, f.Op.CONTAINS]), TEXTS),
        st.tuples(
            st.sampled_from([f.Op.IN, f.Op.NOT_IN]),
            st.lists(TEXTS, min_size=1, max_size=3).map(tuple),
        ),
        st.tuples(st.just(f.Op.EXISTS), st.sampled_from([None, True, False])),
    )


def _number_condition() -> st.SearchStrategy[tuple[f.Op, f.Value]]:
    ordered = [
        f.Op.EQUALS,
        f.Op.NOT_EQUALS,
        f.Op.GREATER_THAN,
        f.Op.GREATER_THAN_OR_EQUAL,
        f.Op.LESS_THAN,
        f.Op.LESS_THAN_OR_EQUAL,
    ]
    return st.one_of(
        st.tuples(st.sampled_from(ordered), NUMBERS),
        st.tuples(
            st.sampled_from([f.Op.IN, f.Op.NOT_IN]),
            st.lists(NUMBERS, min_size=1, max_size=3).map(tuple),
        ),
    )


def _time_condition() -> st.SearchStrategy[tuple[f.Op, f.Value]]:
    return st.one_of(
        st.tuples(st.sampled_from([f.Op.GREATER_THAN, f.Op.LESS_THAN]), TIMES),
        st.tuples(st.sampled_from([f.Op.WITHIN_LAST, f.Op.BEFORE_LAST]), WINDOWS),
        st.tuples(st.just(f.Op.EXISTS), st.sampled_from([None, False])),
    )


def _bool_condition() -> st.SearchStrategy[tuple[f.Op, f.Value]]:
    return st.tuples(st.sampled_from([f.Op.EQUALS, f.Op.NOT_EQUALS]), st.booleans())


@st.composite
def conditions(draw: st.DrawFn) -> f.Condition:
    kind = draw(st.sampled_from(["text", "number", "time", "property", "bool", "event"]))
    if kind == "text":
        subject: f.Subject = f.FieldSubject(draw(st.sampled_from(TEXT_FIELDS)))
        op, value = draw(_text_condition(subject))
    elif kind == "number":
        subject = f.FieldSubject(draw(st.sampled_from(NUMBER_FIELDS)))
        op, value = draw(st.one_of(_number_condition(), st.just((f.Op.EXISTS, None))))
    elif kind == "time":
        subject = f.FieldSubject(draw(st.sampled_from(TIME_FIELDS)))
        op, value = draw(_time_condition())
    elif kind == "property":
        subject = f.PropertySubject(draw(PROPERTY_KEYS))
        op, value = draw(
            st.one_of(_text_condition(subject), _number_condition(), _bool_condition())
        )
    elif kind == "bool":
        bools: list[f.Subject] = [
            f.ConsentSubject(f.ConsentKind.EMAIL),
            f.ConsentSubject(f.ConsentKind.SMS),
            f.ConsentSubject(f.ConsentKind.MARKETING),
            f.FlagSubject(f.Flag.SUPPRESSED),
            f.SegmentSubject("hostile-manual"),
        ]
        subject = draw(st.sampled_from(bools))
        op, value = draw(_bool_condition())
    else:
        subject = draw(events())
        op, value = draw(_number_condition().filter(lambda c: c[0] not in (f.Op.IN, f.Op.NOT_IN)))
    return f.Condition(subject, op, value)


@st.composite
def events(draw: st.DrawFn) -> f.EventSubject:
    where = draw(
        st.lists(
            st.tuples(
                st.sampled_from([("product", "product_id"), ("properties", "color"), ("order",)]),
                st.one_of(_text_condition(f.PropertySubject("x")), _number_condition()),
            ),
            max_size=2,
        )
    )
    return f.EventSubject(
        draw(EVENT_TYPES),
        draw(st.none() | WINDOWS),
        tuple(f.PropertyTest(path, op, value) for path, (op, value) in where),
        draw(st.sampled_from(list(f.Measure))),
    )


def filters_trees() -> st.SearchStrategy[f.Node]:
    return st.recursive(
        conditions(),
        lambda children: st.builds(
            lambda all_of, kids: f.Group(all_of, tuple(kids)),
            st.booleans(),
            st.lists(children, min_size=1, max_size=3),
        ),
        max_leaves=6,
    )


def _properties(n: int, word: str) -> dict[str, Any]:
    choices: list[dict[str, Any]] = [
        {},
        {"color": word},
        {"color": 2.5, "vip": True},
        {"size": None, "co'lor": "'", "%": word},
        {"vip": False, "size": 3},
    ]
    return choices[n % len(choices)]


def _people() -> list[Person]:
    """A fixed population whose values are the hostile ones too."""
    people = []
    for n, hostile in enumerate(HOSTILE):
        word = hostile[:255]  # the contact's text columns hold 255 characters
        email = f"p{n}@{'x' if n % 3 else 'example'}.com"
        people.append(
            Person(
                email=email,
                fields={
                    "first_name": word,
                    "last_name": HOSTILE[(n + 3) % len(HOSTILE)][:255] if n % 4 else None,
                    "loyalty_tier": ["gold", "%", None, "a_b"][n % 4],
                    "lifetime_value": [None, 100.0, 199.5, 2.5][n % 4],
                    "order_count": [None, 0, 2, 3][(n + 1) % 4],
                    "last_purchase_time": [None, NOW - timedelta(days=30), NOW][n % 3],
                    "location": word if n % 2 else None,
                    "language": "de-DE" if n % 2 else None,
                    "timezone": None,
                    "registration_time": NOW - timedelta(days=n * 20),
                },
                custom_properties=_properties(n, word),
                consent={
                    f.ConsentKind.EMAIL: n % 2 == 0,
                    f.ConsentKind.SMS: n % 3 == 0,
                    f.ConsentKind.MARKETING: n % 4 == 0,
                },
                suppressed=n % 7 == 0,
                segments={"hostile-manual"} if n % 3 == 1 else set(),
                events=_events(n, word),
            )
        )
    return people


def _events(n: int, word: str) -> list[Event]:
    found = []
    for k in range(n % 4):
        found.append(
            Event(
                "placed_order",
                NOW - timedelta(days=10 * k + n),
                {"order": {"order_id": word, "total": {"units": 10 * k, "nanos": 500_000_000}}},
            )
        )
    if n % 2:
        found.append(
            Event("product_viewed", NOW - timedelta(days=n), {"product": {"product_id": word}})
        )
    if n % 3 == 0:
        found.append(
            Event(
                "review_submitted",
                NOW - timedelta(days=2),
                {"properties": {"color": word}, "value": {"units": 2}},
            )
        )
    return found


async def _load(url: str, people: list[Person]) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO marketing_segment (id, display_name, kind, created_at, updated_at)"
                " VALUES ('hostile-manual', 'hostile manual', 'MANUAL', now(), now())"
            )
        )
        for person in people:
            contact_id = uuid.uuid4()
            fields = person.fields
            await conn.execute(
                insert(Contact).values(
                    id=contact_id,
                    email=person.email,
                    custom_properties=person.custom_properties,
                    email_opt_in=person.consent[f.ConsentKind.EMAIL],
                    sms_opt_in=person.consent[f.ConsentKind.SMS],
                    push_opt_in=False,
                    created_at=NOW,
                    updated_at=NOW,
                    **fields,
                )
            )
            await _facts(conn, contact_id, person)
    await engine.dispose()


async def _facts(conn: Any, contact_id: uuid.UUID, person: Person) -> None:
    await conn.execute(
        text(
            "INSERT INTO marketing_consent (contact_id, type, granted, source, consent_time)"
            " VALUES (:c, 'MARKETING', :g, 'test', :t)"
        ),
        {"c": contact_id, "g": person.consent[f.ConsentKind.MARKETING], "t": NOW},
    )
    if person.suppressed:
        await conn.execute(
            text(
                "INSERT INTO marketing_suppression (email_sha256, reason, created_at)"
                " VALUES (:k, 'test', now())"
            ),
            {"k": email_key(person.email)},
        )
    for segment in person.segments:
        await conn.execute(
            text(
                "INSERT INTO marketing_segment_membership (contact_id, segment, added_at)"
                " VALUES (:c, :s, now())"
            ),
            {"c": contact_id, "s": segment},
        )
    for index, event in enumerate(person.events):
        await conn.execute(
            text(
                "INSERT INTO marketing_event_log (id, contact_id, contact_key, type, data,"
                " occurred_at, status, retry_count, max_retries, created_at, updated_at)"
                " VALUES (:id, :c, :k, :t, CAST(:d AS jsonb), :o, 'PENDING', 0, 6, now(), now())"
            ),
            {
                "id": f"{contact_id}-{index}",
                "c": contact_id,
                "k": email_key(person.email),
                "t": event.type,
                "d": __import__("json").dumps({"email": person.email, "payload": event.payload}),
                "o": event.occurred_at,
            },
        )


_FINGERPRINT = text(
    "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM marketing_contact t),"
    " (SELECT count(*) FROM marketing_event_log), (SELECT count(*) FROM marketing_consent),"
    " (SELECT count(*) FROM marketing_suppression),"
    " (SELECT count(*) FROM marketing_segment_membership), (SELECT count(*) FROM marketing_segment)"
)


@pytest.fixture(scope="module")
def hostile_db(database_url: str) -> Iterator[tuple[str, list[Person]]]:
    people = _people()
    with own_database(database_url, "hostile") as url:
        asyncio.run(_load(url, people))
        yield url, people


def test_hostile_values_select_what_the_python_evaluator_selects(
    hostile_db: tuple[str, list[Person]],
) -> None:
    url, people = hostile_db
    engine = create_async_engine(url, poolclass=NullPool)

    async def selected(node: f.Node) -> tuple[set[str], tuple[Any, ...], tuple[Any, ...]]:
        async with engine.connect() as conn:
            before = tuple((await conn.execute(_FINGERPRINT)).one())
            # Both forms of event conditions: a whole table's, and a few contacts'.
            whole = select(Contact.email).where(compile_filter(node, NOW))
            few = select(Contact.email).where(compile_filter(node, NOW, few=True))
            found = set(await conn.scalars(whole))
            assert set(await conn.scalars(few)) == found
            after = tuple((await conn.execute(_FINGERPRINT)).one())
            return found, before, after

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(filters_trees())
    def agree(node: f.Node) -> None:
        v = Violations()
        f.check(v, "filter", node)
        if v:
            assert _has_refused_value(node), "only the values validation must refuse are refused"
            return
        found, before, after = asyncio.run(selected(node))
        expected = {p.email for p in people if matches(node, p, NOW)}
        assert found == expected
        assert before == after, "evaluating a filter changed the database"

    try:
        agree()
    finally:
        asyncio.run(engine.dispose())


def _has_refused_value(node: f.Node) -> bool:
    if isinstance(node, f.Group):
        return any(_has_refused_value(c) for c in node.children)
    values: list[Any] = [node.value]
    if isinstance(node.subject, f.EventSubject):
        values += [t.value for t in node.subject.where]
    flat = [x for v in values for x in (v if isinstance(v, tuple) else (v,))]
    return any(isinstance(x, str) and x in REFUSED for x in flat)
