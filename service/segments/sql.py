"""A segment filter compiled to a SQL condition on `marketing_contact`.

Only SQLAlchemy expressions are built: every value, property key and JSON
path is a bound parameter, never text in the statement. CONTAINS is
`strpos`, not LIKE, so `%`, `_` and backslashes in a value mean themselves.
What "no value" means is the same for every type (see the proto): NOT_EQUALS
and NOT_IN match it, every other operator does not, EXISTS tells.

Relative windows are measured from `now`, a parameter: membership evaluated
with an injected clock is what that clock's time says.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Float,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from service.common.sql import ORDER_TOTAL_PATH, email_key_sql
from service.segments import filters as f
from service.storage.models import Consent, Contact, EventLog, SegmentMembership, Suppression

Expr = ColumnElement[Any]
_TEXT_PATH = ARRAY(String)
_OPT_IN = {
    f.ConsentKind.EMAIL: Contact.email_opt_in,
    f.ConsentKind.SMS: Contact.sms_opt_in,
    f.ConsentKind.PUSH: Contact.push_opt_in,
}
# Where an event's value is, in its log row's document ({"email", "payload"}).
_VALUE_PATHS = {"placed_order": ORDER_TOTAL_PATH}
_CUSTOM_VALUE_PATH = ("payload", "value")


def compile_filter(node: f.Node, now: datetime, *, few: bool = False) -> ColumnElement[bool]:
    """The condition a contact row meets when it matches `node` at `now`.

    Event conditions take one of two equivalent forms. With `few` (a few
    contacts' segments re-evaluated after their change), each person's
    events are counted by an index probe. Otherwise (a whole segment, a
    preview) the people whose events qualify are found once, grouped by
    person, and joined: a million probes cost far more than one pass."""
    if isinstance(node, f.Group):
        parts = [compile_filter(child, now, few=few) for child in node.children]
        return and_(true(), *parts) if node.all_of else or_(false(), *parts)
    if isinstance(node.subject, f.EventSubject) and not few:
        return _event_join(node.subject, node.op, node.value, now)
    return _condition(node, now)


def _condition(c: f.Condition, now: datetime) -> ColumnElement[bool]:
    subject = c.subject
    if isinstance(subject, f.FieldSubject):
        return compare(_field(subject.field), f.FIELD_KINDS[subject.field], c.op, c.value, now)
    if isinstance(subject, f.PropertySubject):
        return _json_compare(_Json(Contact.custom_properties, (subject.key,)), c.op, c.value, now)
    if isinstance(subject, f.EventSubject):
        return compare(_event_measure(subject, now), f.Kind.NUMBER, c.op, c.value, now)
    flag = {
        f.ConsentSubject: lambda s: _consent(s.consent),
        f.FlagSubject: lambda s: _suppressed(),
        f.SegmentSubject: lambda s: _member_of(s.segment_id),
    }[type(subject)](subject)
    return compare(flag, f.Kind.BOOL, c.op, c.value, now)


def _field(field: f.Field) -> Expr:
    if field is f.Field.EMAIL_DOMAIN:
        return func.split_part(Contact.email, "@", 2)
    if field in (f.Field.LIFETIME_VALUE, f.Field.ORDER_COUNT):
        # Numbers compare as float8 on both sides (the value is a double).
        return cast(getattr(Contact, field.value), Float)
    return getattr(Contact, field.value)  # type: ignore[no-any-return]


def _consent(kind: f.ConsentKind) -> Expr:
    column = _OPT_IN.get(kind)
    if column is not None:
        return column.expression
    newest = (
        select(Consent.granted)
        .where(Consent.contact_id == Contact.id, Consent.type == kind.value)
        .order_by(Consent.consent_time.desc(), Consent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(newest, false())


def _suppressed() -> Expr:
    return exists().where(Suppression.email_sha256 == email_key_sql(Contact.email))


def _member_of(segment_id: str) -> Expr:
    return exists().where(
        SegmentMembership.contact_id == Contact.id,
        SegmentMembership.segment == bindparam(None, segment_id, String),
    )


def _event_measure(event: f.EventSubject, now: datetime) -> Expr:
    """A person's measure, by a subquery correlated with the contact row.

    The person's events are read by their key alone (OFFSET 0: the other
    conditions are not pushed down into that read), then tested. Given the
    type too, PostgreSQL may pick the type index for an event type its
    statistics have not seen yet (a new metric: "about one row") and then
    read every event of that type for each person: a drain of 2,000 people
    took 35 s after 15,000 events of a new type, 0.3 s read by key."""
    theirs = (
        select(EventLog.type, EventLog.occurred_at, EventLog.data)
        .where(EventLog.contact_key == email_key_sql(Contact.email))
        .correlate(Contact)
        .offset(0)
        .subquery("theirs")
    )
    columns = _EventColumns(theirs.c.type, theirs.c.occurred_at, theirs.c.data)
    return (
        select(cast(_measure(event, columns), Float))
        .select_from(theirs)
        .where(*_events(event, now, columns))
        .scalar_subquery()
    )


def _event_join(event: f.EventSubject, op: f.Op, value: f.Value, now: datetime) -> Expr:
    """The same condition as people whose measure qualifies: those with one
    found by a semi-join, or, when no event at all (a measure of 0) already
    qualifies, those without a disqualifying one found by an anti-join."""
    measure = cast(_measure(event, _LOGGED), Float)
    zero_qualifies = _zero_qualifies(op, value)
    grouped = (
        select(EventLog.contact_key)
        .where(*_events(event, now, _LOGGED))
        .group_by(EventLog.contact_key)
        .having(compare(measure, f.Kind.NUMBER, op, value, now) != zero_qualifies)
        .subquery()
    )
    found = exists().where(grouped.c.contact_key == email_key_sql(Contact.email))
    return not_(found) if zero_qualifies else found


def _zero_qualifies(op: f.Op, value: f.Value) -> bool:
    """Whether a measure of 0 (no qualifying event) meets the condition."""
    assert isinstance(value, float)
    if op is f.Op.NOT_EQUALS:
        return value != 0.0
    return bool(_ORDERED[op](0.0, value))


@dataclass(frozen=True)
class _EventColumns:
    """Where an event condition reads an event's type, time and document: the
    event log itself, or a person's events read from it."""

    type: Expr
    occurred_at: Expr
    data: Expr


_LOGGED = _EventColumns(
    EventLog.type.expression, EventLog.occurred_at.expression, EventLog.data.expression
)


def _events(event: f.EventSubject, now: datetime, at: _EventColumns) -> list[ColumnElement[bool]]:
    """The conditions an event of `event`'s kind meets (of any person)."""
    conditions: list[ColumnElement[bool]] = [
        at.type == bindparam(None, event.event_type, String),
    ]
    if event.within is not None:
        conditions.append(at.occurred_at >= bindparam(None, now - event.within))
    for test in event.where:
        place = _Json(at.data, ("payload", *test.path))
        conditions.append(_json_compare(place, test.op, test.value, now))
    return conditions


def _measure(event: f.EventSubject, at: _EventColumns) -> Expr:
    """The aggregate over a person's qualifying events."""
    if event.measure is f.Measure.COUNT:
        return func.count()
    money = _VALUE_PATHS.get(event.event_type, _CUSTOM_VALUE_PATH)
    units = func.coalesce(_Json(at.data, (*money, "units")).number(), 0.0)
    nanos = func.coalesce(_Json(at.data, (*money, "nanos")).number(), 0.0)
    return func.coalesce(func.sum(units + nanos / 1e9), 0.0)


class _Json:
    """A place in a JSONB column: `path` is bound as one text[] (`#>`, `#>>`),
    so no key is ever part of the statement."""

    def __init__(self, column: Any, path: tuple[str, ...]) -> None:
        self._column = column
        self._path = bindparam(None, list(path), _TEXT_PATH)

    def value(self) -> Expr:
        return self._column.op("#>", return_type=JSONB)(self._path)  # type: ignore[no-any-return]

    def text(self) -> Expr:
        return self._column.op("#>>", return_type=String)(self._path)  # type: ignore[no-any-return]

    def typed(self, json_type: str, as_type: Any) -> Expr:
        """The value when it has this JSON type (else NULL: no value)."""
        is_type = func.jsonb_typeof(self.value()) == json_type
        return case((is_type, cast(self.text(), as_type) if as_type is not String else self.text()))

    def number(self) -> Expr:
        return self.typed("number", Float)


def _json_compare(place: _Json, op: f.Op, value: f.Value, now: datetime) -> ColumnElement[bool]:
    """A JSON value compared as the type of `value`: another type is no value."""
    if op is f.Op.EXISTS:
        present = func.coalesce(func.jsonb_typeof(place.value()) != "null", false())
        return present if value is not False else not_(present)
    kind = f.value_kind_of_property(value)
    assert kind is not None
    json_type = {f.Kind.NUMBER: "number", f.Kind.BOOL: "boolean"}.get(kind, "string")
    as_type = {f.Kind.NUMBER: Float, f.Kind.BOOL: Boolean}.get(kind, String)
    return compare(place.typed(json_type, as_type), kind, op, value, now)


def compare(
    subject: Expr, kind: f.Kind, op: f.Op, value: f.Value, now: datetime
) -> ColumnElement[bool]:
    """`subject` (NULL: no value) compared as `op` says with `value`."""
    if op is f.Op.EXISTS:
        present = subject.is_not(None)
        return present if value is not False else not_(present)
    if op is f.Op.NOT_EQUALS:
        return subject.is_distinct_from(_bound(kind, value))
    if op in (f.Op.IN, f.Op.NOT_IN):
        assert isinstance(value, tuple)
        values = bindparam(None, list(value), ARRAY(Float if kind is f.Kind.NUMBER else String))
        inside = subject == any_(values)
        return (
            func.coalesce(inside, false())
            if op is f.Op.IN
            else not_(func.coalesce(inside, false()))
        )
    if op is f.Op.CONTAINS:
        return func.strpos(subject, _bound(kind, value)) > 0
    if op in (f.Op.WITHIN_LAST, f.Op.BEFORE_LAST):
        assert isinstance(value, timedelta)
        since: Expr = bindparam(None, now - value)
        return subject >= since if op is f.Op.WITHIN_LAST else subject < since
    ordered: ColumnElement[bool] = _ORDERED[op](subject, _bound(kind, value))
    return ordered


# For SQL expressions and plain numbers alike.
_ORDERED: dict[f.Op, Callable[[Any, Any], Any]] = {
    f.Op.EQUALS: operator.eq,
    f.Op.GREATER_THAN: operator.gt,
    f.Op.GREATER_THAN_OR_EQUAL: operator.ge,
    f.Op.LESS_THAN: operator.lt,
    f.Op.LESS_THAN_OR_EQUAL: operator.le,
}


def _bound(kind: f.Kind, value: f.Value) -> Expr:
    types = {f.Kind.NUMBER: Float, f.Kind.TEXT: String, f.Kind.BOOL: Boolean}
    if kind is f.Kind.TIME:
        return bindparam(None, value)
    return bindparam(None, value, types[kind])
