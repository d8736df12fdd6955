"""A segment filter evaluated in Python over one person, written from the
proto's definitions (not from the SQL): the reference the compiled SQL is
checked against. No value is NULL-like here: a missing value is None, and
only NOT_EQUALS and NOT_IN match it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from service.segments import filters as f


@dataclass
class Event:
    type: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass
class Person:
    email: str
    fields: dict[str, Any]  # the contact's columns by name (lifetime_value as float)
    custom_properties: dict[str, Any]
    consent: dict[f.ConsentKind, bool]
    suppressed: bool
    segments: set[str]
    events: list[Event] = field(default_factory=list)


def matches(node: f.Node, person: Person, now: datetime) -> bool:
    if isinstance(node, f.Group):
        results = (matches(child, person, now) for child in node.children)
        return all(results) if node.all_of else any(results)
    return _condition(node, person, now)


def _condition(c: f.Condition, person: Person, now: datetime) -> bool:
    subject = c.subject
    if isinstance(subject, f.FieldSubject):
        value = _field(subject.field, person)
        return compare(value, f.FIELD_KINDS[subject.field], c.op, c.value, now)
    if isinstance(subject, f.PropertySubject):
        return _json_compare(person.custom_properties, (subject.key,), c.op, c.value, now)
    if isinstance(subject, f.ConsentSubject):
        return compare(person.consent.get(subject.consent, False), f.Kind.BOOL, c.op, c.value, now)
    if isinstance(subject, f.FlagSubject):
        return compare(person.suppressed, f.Kind.BOOL, c.op, c.value, now)
    if isinstance(subject, f.SegmentSubject):
        member = subject.segment_id in person.segments
        return compare(member, f.Kind.BOOL, c.op, c.value, now)
    assert isinstance(subject, f.EventSubject)
    return compare(_measure(subject, person, now), f.Kind.NUMBER, c.op, c.value, now)


def _field(name: f.Field, person: Person) -> Any:
    if name is f.Field.EMAIL_DOMAIN:
        return person.email.split("@", 1)[1]
    value = person.fields.get(name.value)
    if name in (f.Field.LIFETIME_VALUE, f.Field.ORDER_COUNT) and value is not None:
        return float(value)
    return value


def _measure(event: f.EventSubject, person: Person, now: datetime) -> float:
    counted = [
        e
        for e in person.events
        if e.type == event.event_type
        and (event.within is None or e.occurred_at >= now - event.within)
        and all(_json_compare(e.payload, t.path, t.op, t.value, now) for t in event.where)
    ]
    if event.measure is f.Measure.COUNT:
        return float(len(counted))
    path = ("order", "total") if event.event_type == "placed_order" else ("value",)
    total = 0.0
    for e in counted:
        money = _at(e.payload, path)
        units = _typed(_at(money, ("units",)), "number") if isinstance(money, dict) else None
        nanos = _typed(_at(money, ("nanos",)), "number") if isinstance(money, dict) else None
        total += (units or 0.0) + (nanos or 0.0) / 1e9
    return total


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return _MISSING
        document = document[key]
    return document


_MISSING = object()


def _typed(value: Any, json_type: str) -> Any:
    if json_type == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None
    if json_type == "boolean":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _json_compare(
    document: dict[str, Any], path: tuple[str, ...], op: f.Op, value: f.Value, now: datetime
) -> bool:
    found = _at(document, path)
    if op is f.Op.EXISTS:
        present = found is not _MISSING and found is not None
        return present if value is not False else not present
    kind = f.value_kind_of_property(value)
    assert kind is not None
    json_type = {f.Kind.NUMBER: "number", f.Kind.BOOL: "boolean"}.get(kind, "string")
    return compare(_typed(found, json_type), kind, op, value, now)


def compare(subject: Any, kind: f.Kind, op: f.Op, value: f.Value, now: datetime) -> bool:
    if op is f.Op.EXISTS:
        return (subject is not None) if value is not False else subject is None
    if op is f.Op.NOT_EQUALS:
        return subject != value
    if op is f.Op.NOT_IN:
        assert isinstance(value, tuple)
        return subject not in value
    if subject is None:
        return False
    if op is f.Op.IN:
        assert isinstance(value, tuple)
        return subject in value
    if op is f.Op.CONTAINS:
        assert isinstance(value, str)
        return value in subject
    if op in (f.Op.WITHIN_LAST, f.Op.BEFORE_LAST):
        assert isinstance(value, timedelta)
        since = now - value
        return subject >= since if op is f.Op.WITHIN_LAST else subject < since
    return _ORDERED[op](subject, value)


_ORDERED: dict[f.Op, Callable[[Any, Any], bool]] = {
    f.Op.EQUALS: lambda a, b: a == b,
    f.Op.GREATER_THAN: lambda a, b: a > b,
    f.Op.GREATER_THAN_OR_EQUAL: lambda a, b: a >= b,
    f.Op.LESS_THAN: lambda a, b: a < b,
    f.Op.LESS_THAN_OR_EQUAL: lambda a, b: a <= b,
}
