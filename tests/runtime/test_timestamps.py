"""The C-arithmetic Timestamp conversions give what protobuf's own give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing_runtime.timestamps import (
    MAX_SECONDS,
    MIN_SECONDS,
    OutOfRange,
    epoch_micros,
    set_micros,
    timestamp_micros,
    to_datetime,
    to_timestamp,
)


@settings(max_examples=200)
@given(
    when=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(st.none(), st.timezones()),
    )
)
def test_timestamp_matches_protobufs_own_conversion(when: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(when.astimezone(UTC))

    assert to_timestamp(when) == expected


@settings(max_examples=200)
@given(seconds=st.integers(MIN_SECONDS, MAX_SECONDS), nanos=st.integers(0, 999_999_999))
def test_to_datetime_matches_protobufs_own_conversion(seconds: int, nanos: int) -> None:
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)

    assert to_datetime(ts) == ts.ToDatetime(tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(MIN_SECONDS - 1, 0), (MAX_SECONDS + 1, 0), (0, -1), (0, 1_000_000_000)],
)
def test_to_datetime_refuses_what_protobuf_refuses(seconds: int, nanos: int) -> None:
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(ValueError):
        ts.ToDatetime(tzinfo=UTC)
    with pytest.raises(OutOfRange):
        to_datetime(ts)


@given(st.integers(min_value=MIN_SECONDS, max_value=MAX_SECONDS), st.integers(0, 999_999_999))
def test_micros_agree_with_the_datetime_conversion(seconds: int, nanos: int) -> None:
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    micros = timestamp_micros(ts)
    assert micros == epoch_micros(to_datetime(ts))
    refilled = timestamp_pb2.Timestamp(seconds=1, nanos=5)
    set_micros(refilled, micros)
    assert refilled == to_timestamp(to_datetime(ts))
