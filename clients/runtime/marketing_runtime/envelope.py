"""Building and reading the bus messages defined in proto/marketing/bus/v1."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson
from google.protobuf import timestamp_pb2
from marketing.bus.v1 import bus_pb2

from marketing_runtime.timestamps import to_timestamp

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


def delivery(
    *,
    id: str,
    kind: str,
    contact_key: str,
    sequence: int,
    payload: dict[str, Any] | bytes,
    created: datetime | timestamp_pb2.Timestamp,
) -> bus_pb2.Delivery:
    """`payload` is the kind's payload, or that payload already encoded as JSON;
    `created` a time, or one already converted (shared by a batch)."""
    if not isinstance(payload, bytes):
        # UTF-8 as it is, not \u escapes: those would make a message of
        # non-ASCII text up to three times its size (and past max_payload).
        payload = json.dumps(
            payload, separators=(",", ":"), default=str, ensure_ascii=False
        ).encode()
    return bus_pb2.Delivery(
        id=id,
        kind=kind,
        contact_key=contact_key,
        sequence=sequence,
        payload_json=payload,
        create_time=created
        if isinstance(created, timestamp_pb2.Timestamp)
        else to_timestamp(created),
    )


def serialized_deliveries(
    kind: str, items: Iterable[tuple[str, str, bytes]], created: timestamp_pb2.Timestamp
) -> Iterator[bytes]:
    """`delivery(...)` serialized for each (id, contact key, payload JSON) of
    one kind, sequence 0 and one creation time: a single message is refilled
    for each, which costs a third less than building one per item."""
    message = bus_pb2.Delivery(kind=kind, sequence=0, create_time=created)
    for id_, contact_key, payload_json in items:
        message.id = id_
        message.contact_key = contact_key
        message.payload_json = payload_json
        yield message.SerializeToString()


def payload_of(message: bus_pb2.Delivery) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(message.payload_json)
    return loaded


def parse_delivery(data: bytes) -> bus_pb2.Delivery:
    message = bus_pb2.Delivery()
    message.ParseFromString(data)
    return message


def parse_results(data: bytes) -> list[bus_pb2.DeliveryResult]:
    message = bus_pb2.DeliveryResults()
    message.ParseFromString(data)
    return list(message.results)


def message_id(base_id: str, row_id: str, retry: int) -> str:
    """Nats-Msg-Id of a (re)publication: a manual re-drive must not be dropped
    as a duplicate of an earlier publication, so it names its outbox row and
    its re-drive count."""
    return base_id if retry == 0 else f"{base_id}.{row_id}.retry{retry}"
