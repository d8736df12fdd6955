"""Requests are decoded here, before any servicer method sees them.

grpc runs a method's request deserializer before its handler; when protobuf
cannot parse the bytes (invalid UTF-8 in a string, a corrupt wire format,
messages nested past protobuf's depth limit) grpc logs a traceback and answers
UNKNOWN with a Python type name. The handlers built here, one per method of the
service descriptor, decode with a deserializer that never raises: bytes it
cannot parse become an `Undecodable` naming the field that holds them, which
the handler answers with INVALID_ARGUMENT and one log line.

protobuf says only that parsing failed, not where; the field is found by
walking the wire format along the descriptor (only for a request that failed,
so it costs nothing on good requests).
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from service.api.errors import refuse
from service.errors import FieldViolation, InvalidArgumentError

log = logging.getLogger(__name__)

# upb's default decoding depth limit (kUpb_WireFormat_DefaultDepthLimit): how
# many messages may nest, counting the request itself.
MAX_DEPTH = 100
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN, _WIRE_FIXED32 = 0, 1, 2, 5

Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Undecodable:
    """What the deserializer hands over instead of a request it could not parse."""

    violation: FieldViolation


def register(server: grpc.aio.Server, servicer: Any, service: ServiceDescriptor) -> None:
    """Serve every method of `service` from `servicer` (a method of the same
    name), decoding requests with `decode`. All methods must be unary."""
    handlers = {method.name: _handler(servicer, method) for method in service.methods}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)


def _handler(servicer: Any, method: Any) -> grpc.RpcMethodHandler[Any, Any]:
    if method.client_streaming or method.server_streaming:
        raise ValueError(f"{method.full_name} streams; only unary methods are served")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    return grpc.unary_unary_rpc_method_handler(
        _answering_undecodable(method.name, getattr(servicer, method.name)),
        request_deserializer=lambda data: decode(request_class, data),
        response_serializer=response_class.SerializeToString,
    )


def _answering_undecodable(name: str, handler: Handler) -> Handler:
    async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, Undecodable):
            v = request.violation
            log.warning("%s: undecodable request: %s %s", name, v.field, v.reason)
            await refuse(context, name, InvalidArgumentError([v]))
        return await handler(request, context)

    return behaviour


def decode(message_class: Any, data: bytes) -> Any:
    """The parsed request, or an Undecodable naming where it is broken."""
    try:
        return message_class.FromString(data)
    except Exception:  # whatever protobuf raises, the bytes are the caller's
        return Undecodable(locate(message_class.DESCRIPTOR, data))


# The field path of a violation in bytes no field holds (every violation names
# a field, so a client can always show where; no request has a field of this name).
REQUEST_ITSELF = "request"


class _Malformed(Exception):
    """The bytes are not protobuf wire format."""


@dataclass(frozen=True)
class _Problem:
    reason: str
    description: str


def locate(descriptor: Any, data: bytes) -> FieldViolation:
    """The field of a message of type `descriptor` whose bytes protobuf cannot
    parse. Inside a well-known type (a Struct's nested values, say) the
    violation names the field holding it: that is the field the caller set.
    Bytes that belong to no field are reported under `REQUEST_ITSELF`."""
    # A view, not bytes: each nested message is a slice of it, so a request
    # nested 100 deep is not copied 100 times (4 MiB would mean 400 MB).
    found = _walk(descriptor, memoryview(data), path="", reported="", depth=1)
    if found is None:  # protobuf refused something this walk does not check
        return FieldViolation(REQUEST_ITSELF, "UNDECODABLE", f"is not a valid {descriptor.name}")
    field, problem = found
    return FieldViolation(field or REQUEST_ITSELF, problem.reason, problem.description)


def _walk(
    descriptor: Descriptor, data: memoryview, *, path: str, reported: str, depth: int
) -> tuple[str, _Problem] | None:
    """The first problem in `data` and the field path to report it under.
    `path` is where the walk is; `reported` freezes at a well-known type."""
    if depth > MAX_DEPTH:
        return reported, _Problem("NESTED_TOO_DEEPLY", "is nested too deeply to decode")
    seen: dict[int, int] = {}
    try:
        for number, wire_type, value in _wire_fields(data):
            fd = descriptor.fields_by_number.get(number)
            if fd is None or wire_type != _WIRE_LEN or value is None:
                continue  # unknown fields and scalars cannot be what failed
            index = seen.get(number, 0)
            seen[number] = index + 1
            field = _field_path(path, fd, index)
            report = reported or (field if _is_well_known(fd.message_type) else "")
            if fd.type == FieldDescriptor.TYPE_STRING and not _utf8(value):
                return report or field, _Problem("INVALID_UTF8", "is not valid UTF-8")
            if fd.message_type is not None:
                inner = _walk(
                    fd.message_type, value, path=f"{field}.", reported=report, depth=depth + 1
                )
                if inner is not None:
                    return inner
    except _Malformed:
        where = reported or path.removesuffix(".")
        return where, _Problem("MALFORMED", "is not valid protobuf wire format")
    return None


def _field_path(path: str, fd: FieldDescriptor, index: int) -> str:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        return f"{path}{fd.name}"  # a map entry's position means nothing to the caller
    return f"{path}{fd.name}[{index}]" if fd.is_repeated else f"{path}{fd.name}"


def _is_well_known(descriptor: Descriptor | None) -> bool:
    return descriptor is not None and descriptor.full_name.startswith("google.protobuf.")


def _utf8(value: memoryview) -> bool:
    try:
        codecs.utf_8_decode(value, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


def _wire_fields(data: memoryview) -> Iterator[tuple[int, int, memoryview | None]]:
    """(field number, wire type, the bytes of a length-delimited value)."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value = None
        if number == 0:
            raise _Malformed
        if wire_type == _WIRE_VARINT:
            _, pos = _varint(data, pos)
        elif wire_type == _WIRE_FIXED64:
            pos += 8
        elif wire_type == _WIRE_FIXED32:
            pos += 4
        elif wire_type == _WIRE_LEN:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:  # groups: proto3 has none
            raise _Malformed
        if pos > end:
            raise _Malformed
        yield number, wire_type, value


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        result |= (data[i] & 0x7F) << shift
        if data[i] < 0x80:
            return result, i + 1
        shift += 7
    raise _Malformed
