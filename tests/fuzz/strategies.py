"""Hypothesis strategies for any protobuf message, built by walking its descriptor.

`MessageStrategies(hints).messages(descriptor)` draws messages of that type whose
fields hold what a hostile or careless caller could send: NUL bytes, long
strings, look-alike and SQL-ish text, the bounds of every integer type, NaN and
infinities, Timestamps outside 0001..9999 or with bad nanos, deep Structs, enum
numbers nobody defined, every oneof member, optional fields present with their
default value, repeated fields up to past the service's batch limit.
`mutated_bytes` then damages the serialized form (flipped bits, cut or spliced
bytes, invalid UTF-8 in a string field, bad lengths, nesting past the parser's
depth limit) for calls made with raw bytes.

Nothing here knows about the marketing service: the test passes `hints`, extra
values per field (real resource names, valid emails, page tokens), so that
generated requests also get past the first validation and reach deeper code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import duration_pb2, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

# field full name (e.g. "marketing.v1.Contact.email") -> extra values for one
# element of that field; mixed with the generic values for the field's type.
Hints = Mapping[str, st.SearchStrategy[Any]]

# Repeated fields sometimes hold this many copies of one element: past the
# 1,000-event limit of TrackEvents, and enough to overflow an error trailer.
MAX_REPEATED_COPIES = 1100
# The copies of one repeated field stay under this many bytes, and long strings
# under LONG_STRING_CHARS (4 bytes a character at most), so a request stays far
# below the server's 32 MiB message limit: an over-limit message would be
# refused by gRPC itself (RESOURCE_EXHAUSTED) and test nothing of ours.
COPIES_BUDGET_BYTES = 1 << 20
LONG_STRING_CHARS = 150_000
# Nested Structs reach past the decoder's depth limit (100 message levels,
# three per Struct level: Struct -> map entry -> Value).
MAX_STRUCT_DEPTH = 45
DEFAULT_MAX_DEPTH = 6
RECURSIVE_DEPTH = 2
# Each field of a message is set with probability 1/n, n drawn per message.
PRESENCE_ODDS = (4, 2, 1)

SQLISH = (
    "'; DROP TABLE marketing_contact; --",
    "' OR '1'='1",
    '" OR ""="',
    "%",
    "_",
    "%_%\\",
    "\\",
    "$1",
    "NULL",
    "null",
    "1; SELECT pg_sleep(0)",
    "E'\\x00'",
    "{}",
    "[]",
    '{"s":"contacts","c":{}}',
)
LOOKALIKES = (
    "\uff41dmin@example.com",  # fullwidth a
    "\u0430dmin@example.com",  # Cyrillic a
    "admin@ex\u0430mple.com",
    "admin\u200b@example.com",  # zero-width space
    "admin@example.com\u202e",  # right-to-left override
    "ADMIN@EXAMPLE.COM",
    " admin@example.com ",
    "admin@example.com.",
    "e\u0301",  # decomposed e-acute
    "\u00e9",  # composed e-acute
    "\u0130stanbul",  # dotted capital I: lower() changes its length
    "stra\u00dfe",  # sharp s: upper() changes its length
    "\ufb00",  # ff ligature
    "\U0001f600",  # outside the BMP
)
CONTROL = (
    "",
    "\x00",
    "a\x00b",
    "\x00" * 8,
    "\r\n",
    "\t",
    "\x1b[31m",
    "\u2028",
    "\ufeff",
    "\ufffd",
    "\U0010ffff",
    " ",
)
SPECIAL_STRINGS = SQLISH + LOOKALIKES + CONTROL

# Timestamp and Duration bounds (google/protobuf/timestamp.proto, duration.proto).
TIMESTAMP_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
TIMESTAMP_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
DURATION_MAX_SECONDS = 315_576_000_000
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# A fixed "recent" second (2023-11-14): derandomized runs draw the same values
# every day; the few that lie in the future are wanted too.
RECENT_SECONDS = 1_700_000_000


def _characters() -> st.SearchStrategy[str]:
    # Protobuf strings are UTF-8: a lone surrogate cannot be set (invalid
    # UTF-8 reaches the server through mutated_bytes instead).
    return st.characters(exclude_categories=["Cs"])


def _long(seed: str, length: int) -> str:
    return (seed * (length // len(seed) + 1))[:length]


def hostile_text() -> st.SearchStrategy[str]:
    short = st.text(_characters(), max_size=24)
    long = st.builds(
        _long, st.text(_characters(), min_size=1, max_size=4), st.integers(256, LONG_STRING_CHARS)
    )
    special = st.sampled_from(SPECIAL_STRINGS)
    mixed = st.builds("".join, st.lists(st.one_of(special, short), min_size=2, max_size=4))
    return st.one_of(short, special, mixed, long)


def extreme_integers(bits: int, *, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    candidates = {0, 1, -1, 2, low, low + 1, high, high - 1, 1000, 1001, 10**11, -(10**11)}
    candidates |= {(1 << 31) - 1, 1 << 31, -(1 << 31), 1 << 32, (1 << 53) + 1, 10**15, 10**18}
    edges = sorted(n for n in candidates if low <= n <= high)
    return st.one_of(
        st.sampled_from(edges),
        st.integers(max(low, -1100), min(high, 1100)),
        st.integers(low, high),
    )


def extreme_doubles() -> st.SearchStrategy[float]:
    edges = (math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 2.0**53 + 1)
    return st.one_of(st.sampled_from(edges), st.floats(allow_nan=True, allow_infinity=True))


def timestamp_parts() -> st.SearchStrategy[tuple[int, int]]:
    """(seconds, nanos): mostly plausible, often just outside the valid range."""
    seconds = st.one_of(
        st.integers(RECENT_SECONDS - 10**8, RECENT_SECONDS),
        st.sampled_from(
            (
                0,
                TIMESTAMP_MIN_SECONDS,
                TIMESTAMP_MIN_SECONDS - 1,
                TIMESTAMP_MAX_SECONDS,
                TIMESTAMP_MAX_SECONDS + 1,
                INT64_MIN,
                INT64_MAX,
                RECENT_SECONDS + 10**7,  # about four months ahead: in the future
            )
        ),
        st.integers(INT64_MIN, INT64_MAX),
    )
    nanos = st.one_of(
        st.just(0),
        st.integers(0, 999_999_999),
        st.sampled_from((-1, 999_999_999, 1_000_000_000, INT32_MIN, INT32_MAX)),
    )
    return st.tuples(seconds, nanos)


def duration_parts() -> st.SearchStrategy[tuple[int, int]]:
    seconds = st.one_of(
        st.integers(-3600, 3600),
        st.sampled_from(
            (DURATION_MAX_SECONDS, DURATION_MAX_SECONDS + 1, -DURATION_MAX_SECONDS - 1, INT64_MAX)
        ),
    )
    nanos = st.one_of(
        st.integers(-999_999_999, 999_999_999), st.sampled_from((INT32_MIN, INT32_MAX))
    )
    return st.tuples(seconds, nanos)


def _nest(depth: int, leaf: Any, in_lists: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if in_lists else {"n": value}
    return value


def json_values() -> st.SearchStrategy[Any]:
    """What a Struct can hold: JSON-like values with hostile keys, strings and
    numbers (NaN, infinities), broad or nested past the decoder's depth limit."""
    # Struct numbers are doubles: larger Python ints cannot be converted at all.
    numbers = st.one_of(extreme_doubles(), extreme_integers(64, signed=True))
    scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text())
    broad = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(hostile_text(), inner, max_size=4)
        ),
        max_leaves=12,
    )
    deep = st.builds(_nest, st.integers(1, MAX_STRUCT_DEPTH), scalars, st.booleans())
    return st.one_of(broad, deep)


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _value(value: Any) -> struct_pb2.Value:
    return _struct({"v": value}).fields["v"]


def _list_value(values: list[Any]) -> struct_pb2.ListValue:
    return _struct({"v": values}).fields["v"].list_value


def _well_known(full_name: str) -> st.SearchStrategy[Message] | None:
    """Well-known types whose generic form would miss what matters about them."""
    if full_name == "google.protobuf.Timestamp":
        return st.builds(
            lambda p: timestamp_pb2.Timestamp(seconds=p[0], nanos=p[1]), timestamp_parts()
        )
    if full_name == "google.protobuf.Duration":
        return st.builds(
            lambda p: duration_pb2.Duration(seconds=p[0], nanos=p[1]), duration_parts()
        )
    if full_name == "google.protobuf.Struct":
        keys = st.one_of(st.sampled_from(("n", "name", "email")), hostile_text())
        return st.builds(_struct, st.dictionaries(keys, json_values(), max_size=5))
    if full_name == "google.protobuf.Value":
        return st.builds(_value, json_values())
    if full_name == "google.protobuf.ListValue":
        return st.builds(_list_value, st.lists(json_values(), max_size=5))
    return None


def _repeat_within_budget(element: Any, copies: int) -> list[Any]:
    size = element.ByteSize() if isinstance(element, Message) else len(str(element).encode())
    return [element] * min(copies, COPIES_BUDGET_BYTES // max(size, 1))


def message_type(field: FieldDescriptor) -> Descriptor:
    """The type of a message-typed field (the stubs allow None for the others)."""
    assert field.message_type is not None, f"{field.full_name} is not a message field"
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


class MessageStrategies:
    """Strategies for the messages of one set of descriptors, with `hints`
    mixed into the fields they name. Built lazily and cached per type and depth."""

    def __init__(self, hints: Hints | None = None, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._hints = dict(hints or {})
        self._max_depth = max_depth
        self._cache: dict[tuple[str, int], st.SearchStrategy[Message]] = {}

    def messages(self, descriptor: Descriptor) -> st.SearchStrategy[Message]:
        return self._message(descriptor, self._max_depth)

    def _message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        key = (descriptor.full_name, depth)
        if key not in self._cache:
            self._cache[key] = self._build_message(descriptor, depth)
        return self._cache[key]

    def _build_message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        special = _well_known(descriptor.full_name)
        if special is not None:
            return special
        cls = message_factory.GetMessageClass(descriptor)
        if depth <= 0:
            return st.just(cls())
        # A proto3 `optional` field is a oneof of one: it is set or not, like the others.
        real_oneofs = [o for o in descriptor.oneofs if o.name != f"_{o.fields[0].name}"]
        in_oneof = {f.name for oneof in real_oneofs for f in oneof.fields}
        plain = [self._choice(f, depth) for f in descriptor.fields if f.name not in in_oneof]
        oneofs = [[self._choice(f, depth) for f in oneof.fields] for oneof in real_oneofs]
        return _instances(cls, plain, oneofs)

    def _choice(self, field: FieldDescriptor, depth: int) -> Choice:
        hint = self._hints.get(field.full_name)
        plausible = None if hint is None else self._field(field, depth, hint)
        return field, self._field(field, depth), plausible

    def _field(
        self, field: FieldDescriptor, depth: int, only: st.SearchStrategy[Any] | None = None
    ) -> st.SearchStrategy[Any]:
        """Values of `field` (lists for a repeated one, dicts for a map): its
        elements drawn from `only` if given, else from its hint and the
        generic values of its type."""
        if _is_map(field):
            entry = message_type(field)
            keys = self._element(entry.fields_by_name["key"], depth)
            values = self._element(entry.fields_by_name["value"], depth - 1)
            return st.dictionaries(keys, values, max_size=4)
        element = self._element(field, depth) if only is None else only
        if not field.is_repeated:
            return element
        copies = st.builds(_repeat_within_budget, element, st.integers(5, MAX_REPEATED_COPIES))
        return st.one_of(st.lists(element, max_size=4), copies)

    def _element(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        generic = self._generic(field, depth)
        hint = self._hints.get(field.full_name)
        return generic if hint is None else st.one_of(hint, generic)

    def _generic(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            nested = message_type(field)
            if nested is field.containing_type:
                # A message that holds itself (a segment filter's and / or):
                # at full depth its trees grew to gigabytes. A few levels say
                # as much to the server, whose own limit is 8.
                return self._message(nested, min(depth - 1, RECURSIVE_DEPTH))
            return self._message(nested, depth - 1)
        if field.type == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            defined = [v.number for v in field.enum_type.values]
            return st.one_of(st.sampled_from(defined), extreme_integers(32, signed=True))
        scalar = _SCALARS.get(field.type)
        if scalar is None:
            raise NotImplementedError(f"no strategy for {field.full_name} (type {field.type})")
        return scalar()


_SCALARS: dict[int, Callable[[], st.SearchStrategy[Any]]] = {
    FieldDescriptor.TYPE_STRING: hostile_text,
    FieldDescriptor.TYPE_BYTES: lambda: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans,
    FieldDescriptor.TYPE_DOUBLE: extreme_doubles,
    FieldDescriptor.TYPE_FLOAT: lambda: st.floats(width=32, allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_INT32: lambda: extreme_integers(32, signed=True),
    FieldDescriptor.TYPE_SINT32: lambda: extreme_integers(32, signed=True),
    FieldDescriptor.TYPE_SFIXED32: lambda: extreme_integers(32, signed=True),
    FieldDescriptor.TYPE_INT64: lambda: extreme_integers(64, signed=True),
    FieldDescriptor.TYPE_SINT64: lambda: extreme_integers(64, signed=True),
    FieldDescriptor.TYPE_SFIXED64: lambda: extreme_integers(64, signed=True),
    FieldDescriptor.TYPE_UINT32: lambda: extreme_integers(32, signed=False),
    FieldDescriptor.TYPE_FIXED32: lambda: extreme_integers(32, signed=False),
    FieldDescriptor.TYPE_UINT64: lambda: extreme_integers(64, signed=False),
    FieldDescriptor.TYPE_FIXED64: lambda: extreme_integers(64, signed=False),
}


# A field, its values, and its plausible values (from its hint) if it has any.
Choice = tuple[FieldDescriptor, st.SearchStrategy[Any], st.SearchStrategy[Any] | None]


@st.composite
def _instances(
    draw: Any, cls: type[Message], plain: list[Choice], oneofs: list[list[Choice]]
) -> Message:
    """A message with some of its fields set. With every field hostile, nearly
    every request is refused at its first check; so half the messages are
    "plausible": every field with a hint holds a hinted value (a real contact,
    a valid email, a known currency) and only the others are hostile, which
    lets one bad value at a time reach the code behind the first checks. How
    many of the other fields are set also varies per message."""
    plausible = draw(st.booleans())
    odds = draw(st.sampled_from(PRESENCE_ODDS))

    def present() -> bool:
        return bool(draw(st.integers(0, odds - 1)) == odds - 1)  # shrinks towards absent

    msg = cls()
    for field, values, hinted in plain:
        if plausible and hinted is not None:
            _set(msg, field, draw(hinted))
        elif present():
            _set(msg, field, draw(values))
    for members in oneofs:  # a request's oneof is required: always set in plausible ones
        if plausible or present():
            field, values, hinted = draw(st.sampled_from(members))
            _set(msg, field, draw(hinted if plausible and hinted is not None else values))
    return msg


def _set(msg: Message, field: FieldDescriptor, value: Any) -> None:
    if value is None:
        return
    target = getattr(msg, field.name)
    if _is_map(field):
        entry = message_type(field)
        composite = entry.fields_by_name["value"].message_type is not None
        for key, item in value.items():
            if composite:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated and field.type == FieldDescriptor.TYPE_MESSAGE:
        for item in value:  # not extend(): it re-parses, and refuses a Struct too deep
            target.add().CopyFrom(item)
    elif field.is_repeated:
        target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(msg, field.name, value)
