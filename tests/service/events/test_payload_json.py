"""The compiled payload converters against a plain reading of `ListFields()`."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.v1 import common_pb2, event_pb2

from service.events.payload_json import MONEY_TYPE, converter, payload_dict
from service.events.rules import MoneyField

_PAYLOADS: list[Any] = [
    event_pb2.ProductViewed,
    event_pb2.AddedToCart,
    event_pb2.PlacedOrder,
    event_pb2.CartAbandoned,
    event_pb2.CustomEvent,
]
_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALARS = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=8),
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}


def _reference(msg: Any, path: str, money: list[MoneyField]) -> dict[str, Any]:
    """What a payload dict means: the set fields by proto name, Money collected in order."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            out[fd.name] = list(value) if fd.is_repeated else value
            continue
        items = list(value) if fd.is_repeated else [value]
        converted = []
        for i, item in enumerate(items):
            where = f"{path}{fd.name}[{i}]" if fd.is_repeated else f"{path}{fd.name}"
            if fd.message_type.full_name == MONEY_TYPE:
                money.append(MoneyField(where, item.currency_code, item.units, item.nanos))
                converted.append({f.name: v for f, v in item.ListFields()})
            elif fd.message_type.full_name.startswith("google.protobuf."):
                converted.append(json_format.MessageToDict(item))
            else:
                converted.append(_reference(item, where + ".", money))
        out[fd.name] = converted if fd.is_repeated else converted[0]
    return out


@st.composite
def _fill(draw: st.DrawFn, descriptor: Descriptor, msg: Any) -> Any:
    for fd in descriptor.fields:
        if not draw(st.booleans()):
            continue
        target = getattr(msg, fd.name)
        if fd.message_type is None:
            values = draw(st.lists(_SCALARS[fd.type], max_size=3)) if fd.is_repeated else None
            if values is not None:
                target.extend(values)
            else:
                setattr(msg, fd.name, draw(_SCALARS[fd.type]))
        elif fd.message_type.full_name == "google.protobuf.Struct":
            target.update(draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5))))
        elif fd.message_type.full_name == "google.protobuf.Timestamp":
            target.FromSeconds(draw(st.integers(0, 4_000_000_000)))
        elif fd.is_repeated:
            for _ in range(draw(st.integers(0, 3))):
                draw(_fill(fd.message_type, target.add()))
        else:
            target.SetInParent()
            draw(_fill(fd.message_type, target))
    return msg


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    message_type = draw(st.sampled_from(_PAYLOADS))
    return draw(_fill(message_type.DESCRIPTOR, message_type()))


@settings(max_examples=300)
@given(payload=payloads())
def test_compiled_converter_reads_like_list_fields(payload: Any) -> None:
    expected_money: list[MoneyField] = []
    expected = _reference(payload, "", expected_money)
    money: list[MoneyField] = []
    assert payload_dict(payload, money) == expected
    assert money == expected_money


def test_converters_are_compiled_once_and_show_their_source() -> None:
    order: Any = event_pb2.Order.DESCRIPTOR
    first = converter(order)
    assert converter(order) is first
    assert "m.HasField('total')" in first.__source__  # type: ignore[attr-defined]


def _unusual_message_class() -> Any:
    """A message with what the payloads do not have yet: a keyword field name,
    a double, and maps with scalar and Money values."""
    pool = descriptor_pool.DescriptorPool()
    common = descriptor_pb2.FileDescriptorProto()
    common_pb2.DESCRIPTOR.CopyToProto(common)
    pool.Add(common)
    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="test/unusual.proto",
        package="test",
        syntax="proto3",
        dependency=[common.name],
    )
    message = file.message_type.add(name="Unusual")
    message.field.add(name="from", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    message.field.add(name="ratio", number=2, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    for number, (field_name, value_type, value_name) in enumerate(
        [("tags", f.TYPE_STRING, ""), ("prices", f.TYPE_MESSAGE, f".{MONEY_TYPE}")], start=3
    ):
        entry_name = f"{field_name.title()}Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
        value = entry.field.add(name="value", number=2, type=value_type, label=f.LABEL_OPTIONAL)
        if value_name:
            value.type_name = value_name
        message.field.add(
            name=field_name,
            number=number,
            type=f.TYPE_MESSAGE,
            type_name=f".test.Unusual.{entry_name}",
            label=f.LABEL_REPEATED,
        )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.Unusual"))


def test_keyword_names_negative_zero_and_maps_are_converted() -> None:
    msg = _unusual_message_class()()
    setattr(msg, "from", "newsletter")
    msg.ratio = -0.0
    msg.tags["b"] = "2"
    msg.tags["a"] = "1"
    msg.prices["eur"].currency_code = "EUR"
    msg.prices["eur"].units = 5
    msg.prices["chf"].currency_code = "CHF"
    money: list[MoneyField] = []
    out = payload_dict(msg, money)
    assert out["from"] == "newsletter"
    assert math.copysign(1.0, out["ratio"]) == -1.0
    assert out["tags"] == {"a": "1", "b": "2"}
    assert out["prices"] == {
        "chf": {"currency_code": "CHF"},
        "eur": {"currency_code": "EUR", "units": 5},
    }
    assert money == [MoneyField("prices[chf]", "CHF", 0, 0), MoneyField("prices[eur]", "EUR", 5, 0)]
    assert "ratio" not in payload_dict(type(msg)(ratio=0.0), [])
