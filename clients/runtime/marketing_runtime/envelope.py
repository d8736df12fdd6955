"""Building and reading the bus messages defined in proto/marketing/bus/v1."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from google.protobuf import timestamp_pb2
from marketing.bus.v1 import bus_pb2

from marketing_runtime.legacy import upgrade_delivery, upgrade_result
from marketing_runtime.timestamps import set_micros

MSG_ID_HEADER = "Nats-Msg-Id"
# The max_payload we run nats-server with, and ask of a production NATS
# (README): the largest event the validation accepts is 5 MiB of JSON (the
# provider's limit); with its envelope and headers that needs more than
# nats-server's default of 1 MiB. 8 MiB leaves room and is the largest value
# nats-server accepts without a warning.
NATS_MAX_PAYLOAD = 8 * 1024 * 1024
_HEADER_LINE = len(b"NATS/1.0\r\n")
_HEADER_FIELD_FRAMING = len(b": \r\n")
_HEADER_END = len(b"\r\n")


def wire_size(payload: bytes, headers: Mapping[str, str] | None = None) -> int:
    """What nats-server counts against its max_payload: the payload and, for a
    message with headers, the whole header block (as nats-py frames it)."""
    if not headers:
        return len(payload)
    fields = sum(
        len(key.strip().encode()) + len(value.strip().encode()) + _HEADER_FIELD_FRAMING
        for key, value in headers.items()
    )
    return _HEADER_LINE + fields + _HEADER_END + len(payload)


def too_large(size: int, limit: int) -> str:
    """Why a message was not published (shown with its failed delivery)."""
    return (
        f"bus message of {size} bytes exceeds the NATS server's max_payload of {limit} bytes; "
        "raise max_payload (README, NATS), then retry the failed delivery"
    )


class TrackedEvent(NamedTuple):
    """What `serialized_events` needs of an event (see bus.proto, EventTracked)."""

    event_id: str
    contact_key: str
    email: str
    metric: str
    occurred_us: int  # microseconds since the epoch
    body_field: str  # the field of EventTracked's `body` oneof that is set
    body: bytes  # that field's message, serialized


def serialized_events(
    events: Iterable[TrackedEvent], created: timestamp_pb2.Timestamp
) -> Iterator[bytes]:
    """A serialized KIND_EVENT_TRACKED Delivery for each event, all created at
    `created`: one message is refilled for each, which costs a third less than
    building one per event (this is the ingest hot path). Each body is parsed
    into its field as it is (one C-level parse)."""
    message = bus_pb2.Delivery(type=bus_pb2.KIND_EVENT_TRACKED, sequence=0, create_time=created)
    event = message.event_tracked
    occur_time = event.occur_time
    for event_id, contact_key, email, metric, occurred_us, body_field, body in events:
        message.id = event.event_id = event_id
        message.contact_key = contact_key
        event.email = email
        event.metric = metric
        set_micros(occur_time, occurred_us)
        getattr(event, body_field).ParseFromString(body)
        yield message.SerializeToString()


def parse_delivery(data: bytes) -> bus_pb2.Delivery:
    """The Delivery in `data`, in its typed form even when an earlier release
    wrote it (see legacy)."""
    message = bus_pb2.Delivery()
    message.ParseFromString(data)
    return upgrade_delivery(message)


def parse_results(data: bytes) -> list[bus_pb2.DeliveryResult]:
    """The results in `data`, each with its `type` even when an earlier
    release wrote it (see legacy)."""
    message = bus_pb2.DeliveryResults()
    message.ParseFromString(data)
    return [upgrade_result(result) for result in message.results]


def message_id(base_id: str, row_id: str, retry: int) -> str:
    """Nats-Msg-Id of a (re)publication: a manual re-drive must not be dropped
    as a duplicate of an earlier publication, so it names its outbox row and
    its re-drive count."""
    return base_id if retry == 0 else f"{base_id}.{row_id}.retry{retry}"
