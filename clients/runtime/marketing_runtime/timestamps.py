"""google.protobuf.Timestamp to and from datetime in C arithmetic.

protobuf's own `ToDatetime` and `FromDatetime` are Python functions costing a
few microseconds each; the ingest path converts an event's time and a bus
message's creation time on every call, so it uses these instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799
_MICROSECOND = timedelta(microseconds=1)


class OutOfRange(ValueError):
    """The Timestamp lies outside the range protobuf defines (or its nanos do)."""


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """`ts.ToDatetime(tzinfo=UTC)`; OutOfRange where protobuf would refuse."""
    seconds, nanos = ts.seconds, ts.nanos
    if not (MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos <= 999_999_999):
        raise OutOfRange
    return EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def epoch_seconds(ts: timestamp_pb2.Timestamp) -> float:
    """Seconds since the epoch (UTC), as `to_datetime(ts).timestamp()` gives them. Never
    `ts.ToDatetime().timestamp()`: that reads the naive UTC time as local time."""
    return ts.seconds + ts.nanos / 1_000_000_000


def timestamp_micros(ts: timestamp_pb2.Timestamp) -> int:
    """Microseconds since the epoch of `ts` (UTC; below a microsecond dropped)."""
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def set_micros(ts: timestamp_pb2.Timestamp, micros: int) -> None:
    """Set `ts` in place to `micros` microseconds since the epoch (refilling a
    message costs less than building a new Timestamp on a hot path)."""
    ts.seconds, rest = divmod(micros, 1_000_000)
    ts.nanos = rest * 1000


def to_timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    """`Timestamp.FromDatetime(when.astimezone(UTC))`: the same result for every
    time protobuf accepts. It does not re-check protobuf's range (years 1 to
    9999): callers pass clock readings and stored times. A naive time is local
    time, as for `astimezone`."""
    seconds, micros = divmod(epoch_micros(when), 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def epoch_micros(when: datetime) -> int:
    """Microseconds since the epoch (a naive time is local time, as for `astimezone`)."""
    if when.utcoffset() is None:
        when = when.astimezone(UTC)
    return (when - EPOCH) // _MICROSECOND


def from_epoch_micros(micros: int) -> datetime:
    """The UTC time `micros` microseconds after the epoch (`epoch_micros` undone)."""
    return EPOCH + micros * _MICROSECOND
