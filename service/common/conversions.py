"""Protobuf values every feature's handlers convert: times, Structs, optional fields.

A value a request carries that JSON (and so the provider and PostgreSQL's
jsonb) cannot hold, or a Timestamp outside protobuf's range, becomes
INVALID_ARGUMENT naming the field. `UnacceptableValue` is the lower-level form
of the same refusal, raised with a path relative to the converted message and
named in full by the handler that knows where the message sits.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from marketing_runtime.timestamps import OutOfRange, to_datetime, to_timestamp

from service.errors import FieldViolation, InvalidArgumentError

TIMESTAMP_RANGE = "outside 0001-01-01 to 9999-12-31"


class UnacceptableValue(ValueError):
    """A value that has no JSON form; `path` is relative to the converted message."""

    def __init__(self, path: str, reason: str, description: str) -> None:
        super().__init__(f"{path}: {description}")
        self.path, self.reason, self.description = path, reason, description


def unacceptable(bad: UnacceptableValue, prefix: str) -> InvalidArgumentError:
    """The INVALID_ARGUMENT for `bad`, its path under `prefix` (e.g. "event.custom.")."""
    return InvalidArgumentError([FieldViolation(prefix + bad.path, bad.reason, bad.description)])


def bad_timestamp(field: str) -> InvalidArgumentError:
    return InvalidArgumentError([FieldViolation(field, "INVALID_TIMESTAMP", TIMESTAMP_RANGE)])


def optional_time(msg: Message, name: str, field: str) -> datetime | None:
    """The time in `msg.<name>`, None if unset; INVALID_ARGUMENT naming `field`
    if out of range."""
    if not msg.HasField(name):
        return None
    try:
        return to_datetime(getattr(msg, name))
    except OutOfRange:
        raise bad_timestamp(field) from None


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A stored (timezone-aware) time as a Timestamp; None stays unset."""
    return None if value is None else to_timestamp(value)


def optional(msg: Message, name: str) -> Any:
    """`msg.<name>` for a field with presence, None when unset."""
    return getattr(msg, name) if msg.HasField(name) else None


def struct_to_dict(value: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """The Struct as a dict; INVALID_ARGUMENT naming a NaN or infinite number in it."""
    try:
        return struct_dict(value, field)
    except UnacceptableValue as bad:
        raise unacceptable(bad, "") from None


def struct_dict(struct: struct_pb2.Struct, path: str) -> dict[str, Any]:
    """A Struct as a dict; UnacceptableValue at `path.key...` for a NaN or
    infinite number, which JSON cannot hold."""
    try:
        return json_format.MessageToDict(struct)
    except ValueError:  # protobuf refuses non-finite numbers; find the first one
        bad = _non_finite(struct, path)
        if bad is None:
            raise
        raise UnacceptableValue(
            bad, "NOT_FINITE", "NaN and infinite numbers are not accepted"
        ) from None


def _non_finite(m: Any, path: str) -> str | None:
    """The path of the first NaN or infinite number in a Struct, Value or ListValue."""
    if isinstance(m, struct_pb2.Struct):
        items: Any = ((f"{path}.{key}", m.fields[key]) for key in sorted(m.fields))
    elif isinstance(m, struct_pb2.ListValue):
        items = ((f"{path}[{i}]", value) for i, value in enumerate(m.values))
    else:
        kind = m.WhichOneof("kind")
        if kind == "number_value":
            return None if math.isfinite(m.number_value) else path
        return (
            _non_finite(getattr(m, kind), path) if kind in ("struct_value", "list_value") else None
        )
    for item_path, item in items:
        found = _non_finite(item, item_path)
        if found:
            return found
    return None
