"""The kinds of bus work. The proto's `Kind` enum is the one list of them;
every name used elsewhere is derived here from a value's name (the rule is in
bus.proto): `name` for outbox rows, metrics labels, dead-letter subjects and
the API, `payload_field` for the Delivery's payload oneof."""

from __future__ import annotations

import re
from typing import Any, TypeAlias, cast

from marketing.bus.v1 import bus_pb2

__all__ = [
    "ALL",
    "CONTACT_TEXT_FIELDS",
    "UNKNOWN",
    "Kind",
    "from_name",
    "label",
    "name",
    "parse_payload",
    "payload_field",
    "require",
]

Kind: TypeAlias = bus_pb2.Kind


def _derived_name(value_name: str) -> str:
    subject, _, event = value_name.removeprefix("KIND_").lower().rpartition("_")
    return f"{subject}.{event}"


# Every kind there is (the generated stubs type enum values as plain ints).
ALL: tuple[Kind, ...] = tuple(
    cast(Kind, value) for value in bus_pb2.Kind.values() if value != bus_pb2.KIND_UNSPECIFIED
)
_NAMES = {kind: _derived_name(bus_pb2.Kind.Name(kind)) for kind in ALL}
_BY_NAME = {text: kind for kind, text in _NAMES.items()}
# What `label` gives a message that names no kind at all.
UNKNOWN = "unknown"
# A `kind` string of an old release usable as subject tokens and a metrics label
# (lower case words joined by dots, as every kind name is).
_LEGACY_LABEL = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_MAX_LABEL = 64  # as long as an outbox row's kind may be
_FIELDS = {kind: bus_pb2.Kind.Name(kind).removeprefix("KIND_").lower() for kind in ALL}
_PAYLOAD_FIELDS = bus_pb2.Delivery.DESCRIPTOR.fields_by_name
_CLASSES: dict[Kind, Any] = {
    # A message field's message_type is never None.
    kind: getattr(bus_pb2, _PAYLOAD_FIELDS[field].message_type.name)  # type: ignore[union-attr]
    for kind, field in _FIELDS.items()
}


def name(kind: Kind) -> str:
    """The kind's readable name, e.g. "event.tracked"; ValueError for none."""
    try:
        return _NAMES[kind]
    except KeyError:
        raise ValueError(f"no such kind: {kind}") from None


def label(kind: int, legacy_kind: str = "") -> str:
    """The name for metrics labels and dead-letter subjects of a message of
    `kind`; for one without a type (an old release's message the legacy decoder
    could not read), its old `kind` string when that is a name at all, else UNKNOWN."""
    if kind in _NAMES:
        return _NAMES[cast(Kind, kind)]
    if len(legacy_kind) <= _MAX_LABEL and _LEGACY_LABEL.fullmatch(legacy_kind):
        return legacy_kind
    return UNKNOWN


def from_name(text: str) -> Kind:
    """The kind named `text` (as `name` gives it); ValueError for none."""
    try:
        return _BY_NAME[text]
    except KeyError:
        raise ValueError(f"no such kind: {text!r}") from None


def payload_field(kind: Kind) -> str:
    """The Delivery's payload field for the kind, e.g. "event_tracked"."""
    try:
        return _FIELDS[kind]
    except KeyError:
        raise ValueError(f"no such kind: {kind}") from None


def parse_payload(kind: Kind, data: bytes) -> Any:
    """The kind's payload message serialized in `data` (as outbox rows keep
    it); ValueError for no such kind, DecodeError for bytes that are not one."""
    try:
        message = _CLASSES[kind]()
    except KeyError:
        raise ValueError(f"no such kind: {kind}") from None
    message.ParseFromString(data)
    return message


def require(delivery: bus_pb2.Delivery, kind: Kind) -> None:
    """ValueError unless the delivery is of `kind` and carries its payload
    (a reader then takes it from the field of that name)."""
    field = delivery.WhichOneof("payload")
    if delivery.type != kind or field != payload_field(kind):
        raise ValueError(f"expected a {name(kind)} delivery, not type {delivery.type} with {field}")


# The profile's optional text fields (ContactUpserted), each set only when the
# service holds a value: read from the proto, so a field added there is carried
# by the service's writer and the legacy reader alike.
CONTACT_TEXT_FIELDS: tuple[str, ...] = tuple(
    fd.name
    for fd in bus_pb2.ContactUpserted.DESCRIPTOR.fields
    if fd.type == fd.TYPE_STRING and fd.has_presence
)
