"""The EngagementReceived messages of one accepted delivery.

Normally one. Its id (and Nats-Msg-Id) is the provider and the SHA-256 of the
engagements' external ids, sorted: a delivery the provider repeats as it was
is dropped by JetStream within its duplicate window (the service also applies
each engagement once, beyond it). Should the engagements not fit one message
of MESSAGE_LIMIT bytes, they are split, in the order of their ids, over as
many as it takes, each with the id of its own engagements: the same delivery
splits the same way every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime

from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_timestamp

# nats-server's default max_payload, so that a message fits any server (ours
# is asked for 8 MiB: README, NATS), less room for the headers.
MESSAGE_LIMIT = 1024 * 1024 - 1024
# What the repeated field adds around each engagement: its tag and length.
_FIELD_OVERHEAD = 1 + 5


def message_id(provider: str, external_ids: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(external_ids)).encode()).hexdigest()
    return f"{provider}:{digest}"


def received(
    provider: str,
    engagements: Sequence[bus_pb2.Engagement],
    now: datetime,
    *,
    limit: int = MESSAGE_LIMIT,
) -> list[bus_pb2.EngagementReceived]:
    """The messages that carry `engagements` (none for none), received at `now`."""
    receive_time = to_timestamp(now)
    return [
        bus_pb2.EngagementReceived(
            id=message_id(provider, [e.external_id for e in part]),
            engagements=part,
            receive_time=receive_time,
        )
        for part in _parts(engagements, limit)
    ]


def _parts(
    engagements: Sequence[bus_pb2.Engagement], limit: int
) -> Iterator[list[bus_pb2.Engagement]]:
    """`engagements` in order of their ids, in runs of at most `limit` bytes (one
    larger than that goes alone: the server's max_payload decides whether it fits)."""
    part: list[bus_pb2.Engagement] = []
    size = 0
    for engagement in sorted(engagements, key=lambda e: e.external_id):
        grown = size + engagement.ByteSize() + _FIELD_OVERHEAD
        if part and grown > limit:
            yield part
            part, grown = [], engagement.ByteSize() + _FIELD_OVERHEAD
        part.append(engagement)
        size = grown
    if part:
        yield part
