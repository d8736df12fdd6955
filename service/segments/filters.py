"""A segment's filter as the domain holds it: a tree of AND / OR groups and
typed conditions, checked once (`check`), stored as JSON (`to_json`,
`from_json`) and compiled to SQL (service.segments.sql).

Every condition has a subject of one type (text, number, time, bool, or an
event measure, a number), an operator valid for that type and a value of the
type the operator takes. The rules are in `_OPERATORS`; the gRPC messages are
translated to this tree by service.segments.messages, which names each
violation by its path in the request.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from service.errors import Violations

MAX_DEPTH = 8
MAX_CONDITIONS = 50
MAX_LIST = 1000
MAX_TEXT = 500
MAX_PATH_KEYS = 8
MAX_KEY = 100
# Durations of relative windows: at least a second, at most ten years.
MIN_WINDOW = timedelta(seconds=1)
MAX_WINDOW = timedelta(days=3653)


class Kind(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    TIME = "time"
    BOOL = "bool"


class Op(enum.StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    GREATER_THAN = "greater_than"
    GREATER_THAN_OR_EQUAL = "greater_than_or_equal"
    LESS_THAN = "less_than"
    LESS_THAN_OR_EQUAL = "less_than_or_equal"
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"
    WITHIN_LAST = "within_last"
    BEFORE_LAST = "before_last"


class Field(enum.StrEnum):
    """Contact fields a filter can test; `FIELD_KINDS` gives each one's type."""

    EMAIL_DOMAIN = "email_domain"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    LOYALTY_TIER = "loyalty_tier"
    LIFETIME_VALUE = "lifetime_value"
    ORDER_COUNT = "order_count"
    LAST_PURCHASE_TIME = "last_purchase_time"
    LOCATION = "location"
    LANGUAGE = "language"
    TIMEZONE = "timezone"
    REGISTRATION_TIME = "registration_time"


FIELD_KINDS: dict[Field, Kind] = {
    Field.EMAIL_DOMAIN: Kind.TEXT,
    Field.FIRST_NAME: Kind.TEXT,
    Field.LAST_NAME: Kind.TEXT,
    Field.LOYALTY_TIER: Kind.TEXT,
    Field.LIFETIME_VALUE: Kind.NUMBER,
    Field.ORDER_COUNT: Kind.NUMBER,
    Field.LAST_PURCHASE_TIME: Kind.TIME,
    Field.LOCATION: Kind.TEXT,
    Field.LANGUAGE: Kind.TEXT,
    Field.TIMEZONE: Kind.TEXT,
    Field.REGISTRATION_TIME: Kind.TIME,
}


class ConsentKind(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    MARKETING = "MARKETING"
    ANALYTICS = "ANALYTICS"


class Flag(enum.StrEnum):
    SUPPRESSED = "suppressed"


class Measure(enum.StrEnum):
    COUNT = "count"
    TOTAL_VALUE = "total_value"


# A condition's value: text, a number, a bool, a time, a duration, or a list
# of texts or of numbers (tuples), or None (EXISTS without a value: true).
Value = str | float | bool | datetime | timedelta | tuple[str, ...] | tuple[float, ...] | None


@dataclass(frozen=True)
class FieldSubject:
    field: Field


@dataclass(frozen=True)
class PropertySubject:
    """A custom property, compared as the JSON type of the condition's value."""

    key: str


@dataclass(frozen=True)
class ConsentSubject:
    consent: ConsentKind


@dataclass(frozen=True)
class FlagSubject:
    flag: Flag


@dataclass(frozen=True)
class SegmentSubject:
    segment_id: str


@dataclass(frozen=True)
class PropertyTest:
    """A condition on an event's property: `path` into the event's body."""

    path: tuple[str, ...]
    op: Op
    value: Value


@dataclass(frozen=True)
class EventSubject:
    event_type: str
    within: timedelta | None
    where: tuple[PropertyTest, ...]
    measure: Measure


Subject = (
    FieldSubject | PropertySubject | ConsentSubject | FlagSubject | SegmentSubject | EventSubject
)


@dataclass(frozen=True)
class Condition:
    subject: Subject
    op: Op
    value: Value


@dataclass(frozen=True)
class Group:
    """`all_of` True: AND; False: OR."""

    all_of: bool
    children: tuple[Node, ...]


Node = Group | Condition

_TEXT_OPS = {Op.EQUALS, Op.NOT_EQUALS, Op.CONTAINS, Op.IN, Op.NOT_IN, Op.EXISTS}
_NUMBER_OPS = {
    Op.EQUALS,
    Op.NOT_EQUALS,
    Op.GREATER_THAN,
    Op.GREATER_THAN_OR_EQUAL,
    Op.LESS_THAN,
    Op.LESS_THAN_OR_EQUAL,
    Op.IN,
    Op.NOT_IN,
    Op.EXISTS,
}
_TIME_OPS = {Op.GREATER_THAN, Op.LESS_THAN, Op.WITHIN_LAST, Op.BEFORE_LAST, Op.EXISTS}
_BOOL_OPS = {Op.EQUALS, Op.NOT_EQUALS}
_MEASURE_OPS = _NUMBER_OPS - {Op.IN, Op.NOT_IN, Op.EXISTS}
OPERATORS: dict[Kind, set[Op]] = {
    Kind.TEXT: _TEXT_OPS,
    Kind.NUMBER: _NUMBER_OPS,
    Kind.TIME: _TIME_OPS,
    Kind.BOOL: _BOOL_OPS,
}


def value_kind_of_property(value: Value) -> Kind | None:
    """The type a custom or event property is compared as: the value's."""
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, str) or (isinstance(value, tuple) and _all(value, str)):
        return Kind.TEXT
    if isinstance(value, float) or (isinstance(value, tuple) and _all(value, float)):
        return Kind.NUMBER
    return None


def _all(values: tuple[Any, ...], kind: type) -> bool:
    return all(isinstance(v, kind) and not isinstance(v, bool) for v in values)


def subject_kind(subject: Subject, op: Op, value: Value) -> Kind | None:
    """The type of what `subject` yields; None: no type (a property with no
    value to tell it)."""
    if isinstance(subject, FieldSubject):
        return FIELD_KINDS[subject.field]
    if isinstance(subject, ConsentSubject | FlagSubject | SegmentSubject):
        return Kind.BOOL
    if isinstance(subject, EventSubject):
        return Kind.NUMBER
    return value_kind_of_property(value)


def check(v: Violations, path: str, node: Node) -> None:
    """Add a violation, at its path under `path`, for each rule `node` breaks:
    depth, size, each condition's operator and value for its subject's type."""
    conditions = _count_conditions(node)
    if conditions > MAX_CONDITIONS:
        v.add(path, "FILTER_TOO_LARGE", f"{conditions} conditions: at most {MAX_CONDITIONS}")
    _check(v, path, node, depth=1)


def _count_conditions(node: Node) -> int:
    """Conditions, an event condition's property tests each counted too."""
    if isinstance(node, Condition):
        subject = node.subject
        return 1 + (len(subject.where) if isinstance(subject, EventSubject) else 0)
    return sum(_count_conditions(child) for child in node.children)


def _check(v: Violations, path: str, node: Node, depth: int) -> None:
    if isinstance(node, Condition):
        _check_condition(v, path, node)
        return
    name = "and" if node.all_of else "or"
    if depth >= MAX_DEPTH:
        v.add(f"{path}.{name}", "FILTER_TOO_DEEP", f"filters nest at most {MAX_DEPTH} levels")
        return
    for index, child in enumerate(node.children):
        _check(v, f"{path}.{name}[{index}]", child, depth + 1)


def _check_condition(v: Violations, path: str, c: Condition) -> None:
    if isinstance(c.subject, EventSubject):
        _check_event(v, path, c.subject)
        _check_operation(v, path, Kind.NUMBER, c.op, c.value, allowed=_MEASURE_OPS)
        return
    if isinstance(c.subject, PropertySubject) and c.op is Op.EXISTS:
        kind: Kind | None = Kind.TEXT  # whatever the property's type
    else:
        kind = subject_kind(c.subject, c.op, c.value)
    if kind is None:
        v.add(f"{path}.value", "VALUE_REQUIRED", "a property is compared as its value's type")
        return
    _check_operation(v, path, kind, c.op, c.value, allowed=OPERATORS[kind])


def _check_event(v: Violations, path: str, event: EventSubject) -> None:
    if event.within is not None:
        _check_window(v, f"{path}.event.within_last", event.within)
    for index, test in enumerate(event.where):
        where = f"{path}.event.where[{index}]"
        kind = Kind.TEXT if test.op is Op.EXISTS else value_kind_of_property(test.value)
        if kind is Kind.BOOL:
            v.add(f"{where}.value", "INVALID_VALUE", "event properties compare as text or number")
            continue
        _check_operation(v, where, kind or Kind.TEXT, test.op, test.value)


def _check_operation(
    v: Violations, path: str, kind: Kind, op: Op, value: Value, allowed: set[Op] | None = None
) -> None:
    ops = OPERATORS[kind] if allowed is None else allowed
    if op not in ops:
        names = ", ".join(sorted(o.name for o in ops))
        v.add(f"{path}.operator", "INVALID_OPERATOR", f"{op.name} is not for {kind}: {names}")
        return
    expected = _expected_value(kind, op)
    problem = _value_problem(expected, value)
    if problem is not None:
        v.add(f"{path}.value", "INVALID_VALUE", problem)


class _Expect(enum.Enum):
    NONE_OR_BOOL = "a bool, or nothing"
    TEXT = "a string"
    NUMBER = "a number"
    BOOL = "a bool"
    TIME = "a time"
    DURATION = "a duration"
    TEXTS = "a string list"
    NUMBERS = "a number list"


def _expected_value(kind: Kind, op: Op) -> _Expect:
    if op is Op.EXISTS:
        return _Expect.NONE_OR_BOOL
    if op in (Op.IN, Op.NOT_IN):
        return _Expect.TEXTS if kind is Kind.TEXT else _Expect.NUMBERS
    if op in (Op.WITHIN_LAST, Op.BEFORE_LAST):
        return _Expect.DURATION
    return {
        Kind.TEXT: _Expect.TEXT,
        Kind.NUMBER: _Expect.NUMBER,
        Kind.TIME: _Expect.TIME,
        Kind.BOOL: _Expect.BOOL,
    }[kind]


def _value_problem(expected: _Expect, value: Value) -> str | None:
    """Why `value` is not what the operator takes (None: it is)."""
    fits = {
        _Expect.NONE_OR_BOOL: value is None or isinstance(value, bool),
        _Expect.TEXT: isinstance(value, str),
        _Expect.NUMBER: isinstance(value, float) and not isinstance(value, bool),
        _Expect.BOOL: isinstance(value, bool),
        _Expect.TIME: isinstance(value, datetime),
        _Expect.DURATION: isinstance(value, timedelta),
        _Expect.TEXTS: isinstance(value, tuple) and _all(value, str),
        _Expect.NUMBERS: isinstance(value, tuple) and _all(value, float),
    }[expected]
    if not fits:
        return f"takes {expected.value}"
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, timedelta):
        return _window_problem(value)
    if isinstance(value, tuple):
        return _list_problem(value)
    return None


def _list_problem(values: tuple[Any, ...]) -> str | None:
    if not values or len(values) > MAX_LIST:
        return f"takes 1 to {MAX_LIST} values"
    for item in values:
        problem = _text_problem(item) if isinstance(item, str) else None
        if isinstance(item, float) and not math.isfinite(item):
            problem = "must be finite numbers"
        if problem is not None:
            return problem
    return None


def _text_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters"
    if "\x00" in text:
        return "may not contain NUL characters"
    return None


def _check_window(v: Violations, path: str, window: timedelta) -> None:
    problem = _window_problem(window)
    if problem is not None:
        v.add(path, "INVALID_VALUE", problem)


def _window_problem(window: timedelta) -> str | None:
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        return "takes a duration of 1 second to 10 years"
    return None


def referenced_segments(node: Node) -> set[str]:
    """The segments the filter's membership conditions name."""
    if isinstance(node, Condition):
        subject = node.subject
        return {subject.segment_id} if isinstance(subject, SegmentSubject) else set()
    return set().union(*(referenced_segments(child) for child in node.children))


def relative(node: Node) -> bool:
    """Whether membership changes as time passes (a window measured from now)."""
    if isinstance(node, Group):
        return any(relative(child) for child in node.children)
    if node.op in (Op.WITHIN_LAST, Op.BEFORE_LAST):
        return True
    return isinstance(node.subject, EventSubject) and node.subject.within is not None


def has_events(node: Node) -> bool:
    """Whether an event can change membership."""
    return bool(event_types(node))


def event_types(node: Node) -> set[str]:
    """The event types whose events can change membership."""
    if isinstance(node, Group):
        return set().union(*(event_types(child) for child in node.children))
    subject = node.subject
    return {subject.event_type} if isinstance(subject, EventSubject) else set()


# Stored as JSON (marketing_segment.filter): a small tagged form of the tree.


def to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Group):
        return {"and" if node.all_of else "or": [to_json(c) for c in node.children]}
    return {"subject": _subject_json(node.subject), "op": node.op.value, **_value_json(node.value)}


def from_json(doc: dict[str, Any]) -> Node:
    for name, all_of in (("and", True), ("or", False)):
        if name in doc:
            return Group(all_of, tuple(from_json(c) for c in doc[name]))
    return Condition(_subject_from(doc["subject"]), Op(doc["op"]), _value_from(doc))


def _subject_json(subject: Subject) -> dict[str, Any]:
    match subject:
        case FieldSubject(field):
            return {"field": field.value}
        case PropertySubject(key):
            return {"property": key}
        case ConsentSubject(consent):
            return {"consent": consent.value}
        case FlagSubject(flag):
            return {"flag": flag.value}
        case SegmentSubject(segment_id):
            return {"segment": segment_id}
        case EventSubject(event_type, within, where, measure):
            return {
                "event": event_type,
                "within_s": None if within is None else within.total_seconds(),
                "where": [
                    {"path": list(t.path), "op": t.op.value, **_value_json(t.value)} for t in where
                ],
                "measure": measure.value,
            }
    raise AssertionError(subject)


def _subject_from(doc: dict[str, Any]) -> Subject:
    if "field" in doc:
        return FieldSubject(Field(doc["field"]))
    if "property" in doc:
        return PropertySubject(doc["property"])
    if "consent" in doc:
        return ConsentSubject(ConsentKind(doc["consent"]))
    if "flag" in doc:
        return FlagSubject(Flag(doc["flag"]))
    if "segment" in doc:
        return SegmentSubject(doc["segment"])
    within = doc["within_s"]
    return EventSubject(
        doc["event"],
        None if within is None else timedelta(seconds=within),
        tuple(PropertyTest(tuple(t["path"]), Op(t["op"]), _value_from(t)) for t in doc["where"]),
        Measure(doc["measure"]),
    )


def _value_json(value: Value) -> dict[str, Any]:
    match value:
        case None:
            return {}
        case bool():
            return {"bool": value}
        case str():
            return {"text": value}
        case float():
            return {"number": value}
        case datetime():
            return {"time": value.astimezone(UTC).isoformat()}
        case timedelta():
            return {"duration_s": value.total_seconds()}
        case tuple() if _all(value, str):
            return {"texts": list(value)}
        case tuple():
            return {"numbers": list(value)}
    raise AssertionError(value)


def _value_from(doc: dict[str, Any]) -> Value:
    if "bool" in doc:
        return bool(doc["bool"])
    if "text" in doc:
        return str(doc["text"])
    if "number" in doc:
        return float(doc["number"])
    if "time" in doc:
        return datetime.fromisoformat(doc["time"])
    if "duration_s" in doc:
        return timedelta(seconds=doc["duration_s"])
    if "texts" in doc:
        return tuple(doc["texts"])
    if "numbers" in doc:
        return tuple(float(n) for n in doc["numbers"])
    return None
