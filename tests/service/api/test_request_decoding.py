"""Requests protobuf cannot parse: INVALID_ARGUMENT naming the field, one log line."""

from __future__ import annotations

import logging
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb

from service.api.request_decoding import REQUEST_ITSELF, Undecodable, decode, locate
from service.api.server import SERVICE, SERVICE_NAME
from tests.fuzz.mutations import tag, varint
from tests.harness import ServiceHarness, error_reason, field_violations, unique_email


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field, written by hand: protobuf would refuse to."""
    return tag(number, 2) + varint(len(payload)) + payload


def nested_struct(levels: int) -> bytes:
    """A google.protobuf.Struct {"a": {"a": ... {}}} with `levels` Structs."""
    struct = b""
    for _ in range(levels - 1):
        value = ld(5, struct)  # Value.struct_value
        struct = ld(1, ld(1, b"a") + ld(2, value))  # Struct.fields entry "a"
    return struct


def contact_bytes(email: bytes, custom_properties: bytes = b"") -> bytes:
    """Contact: email (2), first_name (4), custom_properties (15)."""
    extra = ld(15, custom_properties) if custom_properties else b""
    return ld(2, email) + ld(4, b"Ada") + extra


def call_raw(harness: ServiceHarness, method: str, data: bytes) -> grpc.RpcError:
    call: Any = harness.channel.unary_unary(f"/{SERVICE_NAME}/{method}")  # bytes in and out
    with pytest.raises(grpc.RpcError) as raised:
        call(data, timeout=30)
    return raised.value


def test_invalid_utf8_names_the_field_and_logs_one_line(
    harness: ServiceHarness, caplog: pytest.LogCaptureFixture
) -> None:
    before = harness.table_counts()
    with caplog.at_level(logging.INFO):
        error = call_raw(harness, "UpsertContact", ld(1, contact_bytes(b"ada\xff@example.com")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"contact.email": "INVALID_UTF8"}
    assert error_reason(error) == "INVALID_UTF8"
    assert harness.table_counts() == before
    records = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_invalid_utf8_in_a_batch_names_the_event(harness: ServiceHarness) -> None:
    good = event_pb2.Event(email="a@example.com")
    bad_event = ld(2, b"b\xc3(@example.com")  # Event.email
    data = ld(1, good.SerializeToString()) + ld(1, bad_event)
    error = call_raw(harness, "TrackEvents", data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"events[1].email": "INVALID_UTF8"}


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
def test_corrupt_wire_format_is_invalid_argument_for_every_method(
    harness: ServiceHarness, method: str
) -> None:
    error = call_raw(harness, method, b"\x0a\xff")  # field 1, a length that never ends
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "MALFORMED"
    assert set(field_violations(error).values()) == {"MALFORMED"}


@pytest.mark.parametrize("levels", [34, 100, 1000])  # 34 Structs: 33 nested in the first
def test_deeply_nested_custom_properties_name_the_field(
    harness: ServiceHarness, levels: int
) -> None:
    email = unique_email("deep").encode()
    data = ld(1, contact_bytes(email, nested_struct(levels)))
    error = call_raw(harness, "UpsertContact", data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"contact.custom_properties": "NESTED_TOO_DEEPLY"}


def test_deeply_nested_event_properties_name_the_field(harness: ServiceHarness) -> None:
    custom = ld(1, b"signed_up") + ld(2, nested_struct(100))  # CustomEvent name, properties
    event = ld(2, unique_email().encode()) + ld(14, custom)  # Event.email, Event.custom
    error = call_raw(harness, "TrackEvent", ld(1, event))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == {"event.custom.properties": "NESTED_TOO_DEEPLY"}


@pytest.mark.parametrize("levels", range(28, 40))
def test_the_depth_found_is_protobufs(levels: int) -> None:
    """The walk blames depth exactly where protobuf's parser gives up."""
    data = ld(1, contact_bytes(b"a@example.com", nested_struct(levels)))
    decoded = decode(pb.UpsertContactRequest, data)
    protobuf_refuses = _refused_by_protobuf(pb.UpsertContactRequest, data)
    assert isinstance(decoded, Undecodable) == protobuf_refuses
    if isinstance(decoded, Undecodable):
        assert decoded.violation.field == "contact.custom_properties"
    # The walk on its own (decode walks only what protobuf refused): too deep
    # exactly where protobuf says so, neither a level earlier nor later.
    too_deep = locate(pb.UpsertContactRequest.DESCRIPTOR, data).reason == "NESTED_TOO_DEEPLY"
    assert too_deep == protobuf_refuses


def test_protobufs_depth_limit_lies_within_the_levels_compared() -> None:
    """Else the comparison above would see one outcome only."""
    shallow, deep = (ld(1, contact_bytes(b"a@example.com", nested_struct(n))) for n in (28, 39))
    assert not _refused_by_protobuf(pb.UpsertContactRequest, shallow)
    assert _refused_by_protobuf(pb.UpsertContactRequest, deep)


def _refused_by_protobuf(message_class: Any, data: bytes) -> bool:
    try:
        message_class.FromString(data)
    except DecodeError:
        return True
    return False


def test_locating_a_deep_large_request_copies_none_of_it() -> None:
    """Each nesting level is a view of the request, not a copy of it: this one
    (4 MiB, 30 levels, bad UTF-8 at the bottom) made the walk allocate 60 MiB.
    Measured in a process of its own: tracemalloc counts every thread's
    allocations, and the service harness's threads run on in this one."""
    measured = subprocess.run(
        [sys.executable, "-c", f"from {__name__} import walk_peak; print(*walk_peak())"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert measured.returncode == 0, measured.stderr
    peak, size = map(int, measured.stdout.splitlines()[-1].split())
    assert peak < size // 10, f"{peak:,} bytes allocated walking {size:,}"


def walk_peak() -> tuple[int, int]:
    """The most memory `locate` held walking a deep, large request, and the request's size."""
    padding = ld(1, ld(1, b"k") + ld(2, ld(3, b"x" * 128 * 1024)))  # entry "k": "xx..."
    struct = ld(1, ld(1, b"bad\xff") + ld(2, ld(3, b"v")))  # an entry whose key is not UTF-8
    for _ in range(30):
        struct = ld(1, ld(1, b"a") + ld(2, ld(5, struct))) + padding  # "a": {...}, "k": "xx..."
    data = ld(1, contact_bytes(b"a@example.com", struct))
    tracemalloc.start()
    try:
        violation = locate(pb.UpsertContactRequest.DESCRIPTOR, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (violation.field, violation.reason) == ("contact.custom_properties", "INVALID_UTF8")
    return peak, len(data)


def test_a_good_request_decodes_as_protobuf_would() -> None:
    request = pb.UpsertContactRequest()
    request.contact.email = "a@example.com"
    request.contact.custom_properties.update({"a": [1, "x", {"b": None}]})
    assert decode(pb.UpsertContactRequest, request.SerializeToString()) == request


def _valid_request() -> bytes:
    request = pb.TrackEventsRequest()
    event = request.events.add(email="a@example.com", event_id="e-1")
    event.custom.name = "signed_up"
    event.custom.properties.update({"plan": "pro", "seats": 3, "tags": ["a", "b"]})
    event.custom.value.units = 5
    return request.SerializeToString()


@given(st.data())
def test_decode_never_raises_and_names_a_real_path(data: Any) -> None:
    """Byte-mutated requests: parsed exactly as protobuf parses them, or an
    Undecodable whose field is a path into the request."""
    raw = bytearray(_valid_request())
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    decoded = decode(pb.TrackEventsRequest, bytes(raw))
    try:
        expected = pb.TrackEventsRequest.FromString(bytes(raw))
    except Exception:
        assert isinstance(decoded, Undecodable)
        field = decoded.violation.field
        assert field == REQUEST_ITSELF or field.startswith("events[")
    else:
        assert decoded == expected


def test_locate_names_a_struct_key_with_bad_utf8_by_its_struct() -> None:
    entry = ld(1, b"k\xff") + ld(2, ld(3, b"v"))  # key "k\xff", Value.string_value "v"
    data = ld(1, contact_bytes(b"a@example.com", ld(1, entry)))
    with pytest.raises(DecodeError):
        pb.UpsertContactRequest.FromString(data)
    violation = locate(pb.UpsertContactRequest.DESCRIPTOR, data)
    assert (violation.field, violation.reason) == ("contact.custom_properties", "INVALID_UTF8")


def test_nested_struct_is_protobufs_encoding() -> None:
    # nested_struct writes Struct by hand; check it against protobuf's own encoding.
    struct = struct_pb2.Struct()
    struct.update({"a": {"a": {}}})
    assert struct_pb2.Struct.FromString(nested_struct(3)) == struct
