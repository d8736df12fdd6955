"""An event's typed body (the `body` oneof of bus.proto's EventTracked) from
the JSON document the event log keeps for it, and which releases before the
typed body carried on the bus: the body's proto field names, set fields
only, amounts as {"currency_code", "units", "nanos"}, times as RFC 3339; a
custom event's as {"name", "properties", "value"}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from marketing.bus.v1 import bus_pb2

__all__ = ["CUSTOM", "TYPED", "from_json", "set_body"]

CUSTOM = "custom"
# The typed events: each one's metric names its body's field.
TYPED: Mapping[str, Any] = {
    field.name: getattr(bus_pb2, field.message_type.name)  # type: ignore[union-attr]
    for field in bus_pb2.EventTracked.DESCRIPTOR.oneofs_by_name["body"].fields
    if field.name != CUSTOM
}


def from_json(metric: str, doc: Mapping[str, Any]) -> tuple[str, Any]:
    """The body field and its message for an event of `metric` whose body
    is `doc`; TypeError or ValueError when `doc` is not of the metric's form."""
    try:
        return _from_json(metric, doc)
    except json_format.ParseError as exc:
        raise ValueError(f"not a {metric} body: {exc}") from None


def _from_json(metric: str, doc: Mapping[str, Any]) -> tuple[str, Any]:
    typed = TYPED.get(metric)
    if typed is not None:
        return metric, json_format.ParseDict(dict(doc), typed())
    custom = bus_pb2.CustomEvent(name=doc.get("name", metric))
    if "properties" in doc:
        custom.properties_json = orjson.dumps(doc["properties"])
    if "value" in doc:
        json_format.ParseDict(doc["value"], custom.value)
    return CUSTOM, custom


def set_body(event: bus_pb2.EventTracked, field: str, body: bytes) -> None:
    """Set the event's body `field` to the body serialized in `body` (an API
    body of the same name for a typed event: the two are wire-compatible)."""
    getattr(event, field).ParseFromString(body)
