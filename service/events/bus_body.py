"""An event's body between its three forms in the service: the API's message,
the bus's typed body (bus.proto, EventTracked's `body`) and the JSON document
the event log keeps (see marketing_runtime.event_bodies).

The bus's typed bodies are wire-compatible with the API's of the same name, so
a typed body crosses between the two as its serialized bytes, in C; only a
custom event's free-form properties are carried as JSON."""

from __future__ import annotations

from typing import Any

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.event_bodies import CUSTOM

from service.events.payload_json import money_dict, payload_dict

__all__ = ["CUSTOM", "body_bytes", "log_json"]


def body_bytes(field: str, api_body: Any, payload: dict[str, Any]) -> bytes:
    """The bus body of an API event whose payload case is `field`, serialized:
    a typed body's own bytes; a custom event's with its properties (from
    `payload`, the body as a dict) as JSON."""
    if field != CUSTOM:
        return api_body.SerializeToString()  # type: ignore[no-any-return]
    custom = bus_pb2.CustomEvent(name=api_body.name)
    if "properties" in payload:
        custom.properties_json = orjson.dumps(payload["properties"])
    if api_body.HasField("value"):
        custom.value.ParseFromString(api_body.value.SerializeToString())
    return custom.SerializeToString()


def log_json(event: bus_pb2.EventTracked) -> bytes:
    """The event log's JSON document of the event's body: the same as the
    API's body gives (service.events.payload_json; checked for every event
    type in tests/bus_contract/test_round_trip.py); ValueError for an event
    without a body."""
    field = event.WhichOneof("body")
    if field is None:
        raise ValueError(f"event {event.event_id!r} has no body")
    if field != CUSTOM:
        # The bus body has the API body's fields under the same names, so the
        # API's converter reads it as it is (amounts come out alike: set
        # fields only), without a copy into an API message first.
        return orjson.dumps(payload_dict(getattr(event, field), []))
    custom = event.custom
    doc: dict[str, Any] = {}
    if custom.name:
        doc["name"] = custom.name
    if custom.properties_json:
        doc["properties"] = orjson.Fragment(custom.properties_json)
    if custom.HasField("value"):
        doc["value"] = money_dict(custom.value, "", [])
    return orjson.dumps(doc)
