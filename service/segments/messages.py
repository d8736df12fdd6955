"""The segment filter's gRPC messages and the domain's tree (segments.filters),
both ways. Reading a message names every violation by its path in the
request (`segment.filter.and[2].or[0].value`); `filters.check` adds the rules
of types and operators under the same paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2
from marketing.v1 import consent_pb2, segment_pb2
from marketing_runtime.timestamps import OutOfRange, to_datetime

from service.errors import Violations
from service.segments import filters as f
from service.segments.names import parse_segment_name, segment_name

Filter = segment_pb2.SegmentFilter
_FIELDS: dict[int, f.Field] = {
    segment_pb2.ContactField.Value(f"CONTACT_FIELD_{field.name}"): field for field in f.Field
}
_FIELD_ENUMS = {field: number for number, field in _FIELDS.items()}
_CONSENTS: dict[int, f.ConsentKind] = {
    consent_pb2.ConsentType.Value(f"CONSENT_TYPE_{kind.value}"): kind for kind in f.ConsentKind
}
_CONSENT_ENUMS = {kind: number for number, kind in _CONSENTS.items()}
_FLAGS = {segment_pb2.CONTACT_FLAG_SUPPRESSED: f.Flag.SUPPRESSED}
_FLAG_ENUMS = {flag: number for number, flag in _FLAGS.items()}
_OPS: dict[int, f.Op] = {
    segment_pb2.FilterOperator.Value(f"FILTER_OPERATOR_{op.name}"): op for op in f.Op
}
_OP_ENUMS = {op: number for number, op in _OPS.items()}
_MEASURES = {
    segment_pb2.EventCondition.MEASURE_UNSPECIFIED: f.Measure.COUNT,
    segment_pb2.EventCondition.MEASURE_COUNT: f.Measure.COUNT,
    segment_pb2.EventCondition.MEASURE_TOTAL_VALUE: f.Measure.TOTAL_VALUE,
}
_MEASURE_ENUMS = {
    f.Measure.COUNT: segment_pb2.EventCondition.MEASURE_COUNT,
    f.Measure.TOTAL_VALUE: segment_pb2.EventCondition.MEASURE_TOTAL_VALUE,
}
# Subjects named by an enum: its table, the subject, and the violation when unknown.
_NAMED_SUBJECTS: dict[str, tuple[dict[Any, Any], Callable[[Any], f.Subject], str, str]] = {
    "field": (_FIELDS, f.FieldSubject, "INVALID_FIELD", "name a contact field"),
    "consent": (_CONSENTS, f.ConsentSubject, "INVALID_CONSENT_TYPE", "name a consent type"),
    "flag": (_FLAGS, f.FlagSubject, "INVALID_FLAG", "name a flag: CONTACT_FLAG_SUPPRESSED"),
}
MAX_EVENT_TYPE = 128
# Anything longer is refused before it is converted (Python's timedelta has limits).
_MAX_DURATION_S = int(f.MAX_WINDOW.total_seconds())


def read_filter(v: Violations, path: str, message: Filter) -> f.Node | None:
    """The tree of `message`, with the type rules checked (filters.check);
    None, with violations added, when it has none."""
    node = _read(v, path, message, depth=1)
    if node is not None:
        f.check(v, path, node)
    return None if v else node


def _read(v: Violations, path: str, message: Filter, depth: int) -> f.Node | None:
    groups = [(name, getattr(message, name)) for name in ("and", "or") if getattr(message, name)]
    subject = message.WhichOneof("subject")
    shapes = len(groups) + (subject is not None)
    if shapes != 1:
        v.add(path, "INVALID_FILTER", "a filter is exactly one of: and, or, a condition")
        return None
    if subject is None:
        name, children = groups[0]
        if depth >= f.MAX_DEPTH:
            v.add(f"{path}.{name}", "FILTER_TOO_DEEP", f"filters nest at most {f.MAX_DEPTH} levels")
            return None
        read = [
            _read(v, f"{path}.{name}[{i}]", child, depth + 1) for i, child in enumerate(children)
        ]
        nodes = tuple(node for node in read if node is not None)
        return f.Group(name == "and", nodes) if len(nodes) == len(read) else None
    return _condition(v, path, message, subject)


def _condition(v: Violations, path: str, message: Filter, subject_name: str) -> f.Node | None:
    subject = _subject(v, path, message, subject_name)
    op = _operator(v, f"{path}.operator", message.operator)
    value = _value(v, f"{path}.value", message.value) if message.HasField("value") else None
    if subject is None or op is None or (value is None and message.HasField("value")):
        return None  # the violations are added
    if value is None and op is not f.Op.EXISTS:
        v.add(f"{path}.value", "REQUIRED", f"{op.name} takes a value")
        return None
    return f.Condition(subject, op, value)


def _subject(v: Violations, path: str, message: Filter, name: str) -> f.Subject | None:
    named = _NAMED_SUBJECTS.get(name)
    if named is not None:
        table, make, reason, hint = named
        found = table.get(getattr(message, name))
        if found is None:
            v.add(f"{path}.{name}", reason, hint)
            return None
        return make(found)
    if name == "custom_property":
        return _property_key(v, f"{path}.custom_property", message.custom_property)
    if name == "segment":
        segment_id = parse_segment_name(v, f"{path}.segment", message.segment)
        return None if segment_id is None else f.SegmentSubject(segment_id)
    return _event(v, f"{path}.event", message.event)


def _property_key(v: Violations, path: str, key: str) -> f.PropertySubject | None:
    if not key or len(key) > f.MAX_KEY or "\x00" in key:
        v.add(path, "INVALID_PROPERTY", f"a property key of 1 to {f.MAX_KEY} characters, no NUL")
        return None
    return f.PropertySubject(key)


def _event(v: Violations, path: str, event: segment_pb2.EventCondition) -> f.EventSubject | None:
    ok = True
    if not event.event_type or len(event.event_type) > MAX_EVENT_TYPE or "\x00" in event.event_type:
        v.add(
            f"{path}.event_type", "REQUIRED", f"an event type of 1 to {MAX_EVENT_TYPE} characters"
        )
        ok = False
    within = None
    if event.HasField("within_last"):
        within = _duration(v, f"{path}.within_last", event.within_last)
        ok = ok and within is not None
    where = []
    for index, test in enumerate(event.where):
        read = _property_test(v, f"{path}.where[{index}]", test)
        ok = ok and read is not None
        if read is not None:
            where.append(read)
    measure = _MEASURES.get(event.measure)
    if measure is None:
        v.add(f"{path}.measure", "INVALID_MEASURE", "MEASURE_COUNT or MEASURE_TOTAL_VALUE")
        ok = False
    if not ok or measure is None:
        return None
    return f.EventSubject(event.event_type, within, tuple(where), measure)


def _property_test(
    v: Violations, path: str, test: segment_pb2.EventPropertyFilter
) -> f.PropertyTest | None:
    keys = test.property.split(".")
    if not test.property or len(keys) > f.MAX_PATH_KEYS or not all(_good_key(k) for k in keys):
        v.add(
            f"{path}.property",
            "INVALID_PROPERTY",
            f"dot-separated keys, at most {f.MAX_PATH_KEYS} of 1 to {f.MAX_KEY} characters",
        )
        return None
    op = _operator(v, f"{path}.operator", test.operator)
    value = _value(v, f"{path}.value", test.value) if test.HasField("value") else None
    if op is None:
        return None
    if value is None and op is not f.Op.EXISTS:
        v.add(f"{path}.value", "REQUIRED", f"{op.name} takes a value")
        return None
    return f.PropertyTest(tuple(keys), op, value)


def _duration(v: Violations, path: str, duration: duration_pb2.Duration) -> timedelta | None:
    """The duration, or a violation when it is past any window (the windows'
    own bounds are checked with the rest of the filter)."""
    if not 0 <= duration.seconds <= _MAX_DURATION_S:
        v.add(path, "OUT_OF_RANGE", "a duration of 1 second to 10 years")
        return None
    return duration.ToTimedelta()


def _good_key(key: str) -> bool:
    return 0 < len(key) <= f.MAX_KEY and "\x00" not in key


def _operator(v: Violations, path: str, number: int) -> f.Op | None:
    op = _OPS.get(number)
    if op is None:
        v.add(path, "REQUIRED", "name an operator")
    return op


def _value(v: Violations, path: str, value: segment_pb2.FilterValue) -> f.Value:
    kind = value.WhichOneof("kind")
    if kind is None:
        v.add(path, "REQUIRED", "set one kind of value")
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "time_value":
        try:
            return to_datetime(value.time_value)
        except OutOfRange:
            v.add(f"{path}.time_value", "OUT_OF_RANGE", "a time between years 1 and 9999")
            return None
    if kind == "duration_value":
        return _duration(v, f"{path}.duration_value", value.duration_value)
    if kind == "string_list":
        return tuple(value.string_list.values)
    return tuple(value.number_list.values)


# Back to messages: a stored filter as the API shows it.


def filter_message(node: f.Node) -> Filter:
    if isinstance(node, f.Group):
        group = Filter()
        getattr(group, "and" if node.all_of else "or").extend(
            filter_message(child) for child in node.children
        )
        return group
    message = Filter()
    message.operator = _OP_ENUMS[node.op]  # type: ignore[assignment]
    _write_subject(message, node.subject)
    if node.value is not None:
        message.value.CopyFrom(value_message(node.value))
    return message


def _write_subject(message: Filter, subject: f.Subject) -> None:
    match subject:
        case f.FieldSubject(field):
            message.field = _FIELD_ENUMS[field]  # type: ignore[assignment]
        case f.PropertySubject(key):
            message.custom_property = key
        case f.ConsentSubject(consent):
            message.consent = _CONSENT_ENUMS[consent]  # type: ignore[assignment]
        case f.FlagSubject(flag):
            message.flag = _FLAG_ENUMS[flag]
        case f.SegmentSubject(segment_id):
            message.segment = segment_name(segment_id)
        case f.EventSubject(event_type, within, where, measure):
            event = message.event
            event.event_type = event_type
            event.measure = _MEASURE_ENUMS[measure]
            if within is not None:
                event.within_last.FromTimedelta(within)
            for test in where:
                added = event.where.add(property=".".join(test.path), operator=_OP_ENUMS[test.op])
                if test.value is not None:
                    added.value.CopyFrom(value_message(test.value))


def value_message(value: f.Value) -> segment_pb2.FilterValue:
    message = segment_pb2.FilterValue()
    match value:
        case bool():
            message.bool_value = value
        case str():
            message.string_value = value
        case float():
            message.number_value = value
        case timedelta():
            message.duration_value.FromTimedelta(value)
        case tuple() if all(isinstance(item, str) for item in value):
            message.string_list.values.extend(value)  # type: ignore[arg-type]
        case tuple():
            message.number_list.values.extend(value)  # type: ignore[arg-type]
        case datetime():
            message.time_value.FromDatetime(value)
    return message
