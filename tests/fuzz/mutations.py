"""Damaged wire bytes: a serialized message with a few mutations applied.

Blind mutations (flip a bit, insert, delete, duplicate, truncate) find what a
careless or hostile peer produces; aimed ones put what a generated message
cannot hold into a field the descriptor names: invalid UTF-8 in a string, a
value of the wrong wire type, a length prefix past the end, nesting past the
decoder's depth limit. Appending works because a field that appears twice on
the wire is merged: the last scalar wins, messages merge, repeated fields grow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.fuzz.strategies import message_type

VARINT, FIXED64, LENGTH_DELIMITED, START_GROUP, END_GROUP, FIXED32 = range(6)
INVALID_UTF8 = (
    b"\xff",
    b"\xc3\x28",  # a lead byte without its continuation
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xc0\xaf",  # overlong "/"
    b"ok\x80",
)
# Paths through message fields are followed this deep (enough to reach every
# string of the marketing API, Struct keys and values included).
MAX_PATH_DEPTH = 7
# How deep a raw nesting goes: past the decoder's limit of 100 levels.
DEEP_NESTING = 120

Draw = Callable[[st.SearchStrategy[Any]], Any]  # DataObject.draw
Path = tuple[int, ...]  # field numbers from the request down to one field


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as two's complement, like int64
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def nest(path: Path, payload: bytes) -> bytes:
    """`payload` as the value of the last field of `path`, each level wrapped
    as the length-delimited value of the field above it."""
    for number in reversed(path):
        payload = tag(number, LENGTH_DELIMITED) + varint(len(payload)) + payload
    return payload


def field_paths(
    descriptor: Descriptor, want: Callable[[FieldDescriptor], bool], depth: int = MAX_PATH_DEPTH
) -> list[tuple[Path, FieldDescriptor]]:
    """Every path to a field `want` accepts, through message-typed fields, with
    the field it ends at."""
    found: list[tuple[Path, FieldDescriptor]] = []
    if depth <= 0:
        return found
    for field in descriptor.fields:
        if want(field):
            found.append(((field.number,), field))
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            below = field_paths(message_type(field), want, depth - 1)
            found.extend(((field.number, *rest), end) for rest, end in below)
    return found


def recursions(descriptor: Descriptor) -> list[tuple[Path, Path]]:
    """(path to a message field, a path from that field's type back to its own
    type): repeating the second nests as deep as one likes (Struct -> map entry
    -> Value -> Struct is (1, 2, 5))."""
    found: list[tuple[Path, Path]] = []
    for path, field in field_paths(descriptor, _is_message):
        own = message_type(field)
        back = field_paths(own, functools.partial(_is_message_of, own.full_name), 4)
        found.extend((path, cycle) for cycle, _ in back)
    return found


def _is_message_of(full_name: str, field: FieldDescriptor) -> bool:
    return _is_message(field) and message_type(field).full_name == full_name


def _is_string(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_STRING


def _is_message(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


class Mutator:
    """Mutations of one request type's serialized form."""

    def __init__(self, descriptor: Descriptor) -> None:
        self._strings = [path for path, _ in field_paths(descriptor, _is_string)]
        self._all = [path for path, _ in field_paths(descriptor, lambda f: True)]
        self._recursions = recursions(descriptor)

    def bytes_from(self, messages: st.SearchStrategy[Message]) -> st.SearchStrategy[bytes]:
        """A message drawn from `messages`, serialized, then mutated 1-3 times."""
        operations = st.lists(st.sampled_from(self._operations()), min_size=1, max_size=3)

        @st.composite
        def mutated(draw: Draw) -> bytes:
            raw: bytes = draw(messages).SerializeToString()
            for operation in draw(operations):
                raw = operation(draw, raw)
            return raw

        return mutated()

    def _operations(self) -> list[Callable[[Draw, bytes], bytes]]:
        ops: list[Callable[[Draw, bytes], bytes]] = [
            flip_bit,
            insert_bytes,
            delete_span,
            duplicate_span,
            truncate,
            self._unknown_field,
        ]
        if self._all:
            ops += [self._wrong_wire_type, self._length_past_end]
        if self._strings:
            ops.append(self._invalid_utf8)
        if self._recursions:
            ops.append(self._deep_nesting)
        return ops

    def _invalid_utf8(self, draw: Draw, raw: bytes) -> bytes:
        path = draw(st.sampled_from(self._strings))
        bad = draw(st.sampled_from(INVALID_UTF8))
        return raw + nest(path, bad)

    def _wrong_wire_type(self, draw: Draw, raw: bytes) -> bytes:
        path: Path = draw(st.sampled_from(self._all))
        wire_type = draw(st.sampled_from((VARINT, FIXED64, START_GROUP, END_GROUP, FIXED32, 6, 7)))
        body = {VARINT: varint(1 << 63), FIXED64: bytes(8), FIXED32: bytes(4)}.get(wire_type, b"")
        leaf = tag(path[-1], wire_type) + body
        return raw + (nest(path[:-1], leaf) if len(path) > 1 else leaf)

    def _length_past_end(self, draw: Draw, raw: bytes) -> bytes:
        path: Path = draw(st.sampled_from(self._all))
        claimed = draw(st.sampled_from((1, 1 << 20, (1 << 31) - 1, 1 << 32, (1 << 64) - 1)))
        leaf = tag(path[-1], LENGTH_DELIMITED) + varint(claimed) + b"x"
        return raw + (nest(path[:-1], leaf) if len(path) > 1 else leaf)

    def _unknown_field(self, draw: Draw, raw: bytes) -> bytes:
        number = draw(st.sampled_from((99, 1000, 19000, 536_870_911)))
        return raw + tag(number, LENGTH_DELIMITED) + varint(3) + b"abc"

    def _deep_nesting(self, draw: Draw, raw: bytes) -> bytes:
        """A recursive type nested up to past the decoder's depth limit: it must
        be refused there as bad input, not crash the call."""
        path, cycle = draw(st.sampled_from(self._recursions))
        depth = draw(st.integers(1, DEEP_NESTING // len(cycle) + 1))
        return raw + nest(path + cycle * depth, b"")


def _position(draw: Draw, raw: bytes) -> int:
    return draw(st.integers(0, len(raw)))


def flip_bit(draw: Draw, raw: bytes) -> bytes:
    if not raw:
        return b"\x80"
    at = draw(st.integers(0, len(raw) - 1))
    bit = draw(st.integers(0, 7))
    changed = bytearray(raw)
    changed[at] ^= 1 << bit
    return bytes(changed)


def insert_bytes(draw: Draw, raw: bytes) -> bytes:
    at = _position(draw, raw)
    inserted: bytes = draw(st.binary(min_size=1, max_size=8))
    return raw[:at] + inserted + raw[at:]


def delete_span(draw: Draw, raw: bytes) -> bytes:
    at = _position(draw, raw)
    length: int = draw(st.integers(1, 16))
    return raw[:at] + raw[at + length :]


def duplicate_span(draw: Draw, raw: bytes) -> bytes:
    at = _position(draw, raw)
    length: int = draw(st.integers(1, 32))
    return raw[: at + length] + raw[at : at + length] + raw[at + length :]


def truncate(draw: Draw, raw: bytes) -> bytes:
    return raw[: _position(draw, raw)]
