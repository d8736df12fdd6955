"""Building bus messages one at a time, as the tests need them (the processes
write theirs in bulk: the relay from outbox rows, the fast path with
marketing_runtime.envelope.serialized_events)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind, payload_field
from marketing_runtime.timestamps import to_timestamp

__all__ = ["delivery"]


def delivery(
    *,
    id: str,
    kind: Kind,
    contact_key: str,
    sequence: int,
    payload: Message,
    created: datetime | timestamp_pb2.Timestamp,
) -> bus_pb2.Delivery:
    """A Delivery of `kind` carrying `payload` (that kind's message); `created`
    a time, or one already converted (shared by a batch)."""
    message = bus_pb2.Delivery(
        id=id,
        type=kind,
        contact_key=contact_key,
        sequence=sequence,
        create_time=created
        if isinstance(created, timestamp_pb2.Timestamp)
        else to_timestamp(created),
    )
    getattr(message, payload_field(kind)).CopyFrom(payload)
    return message
