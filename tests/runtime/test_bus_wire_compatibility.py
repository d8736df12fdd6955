"""The bus's typed event bodies are wire-compatible with the API's (bus.proto
says so): any API body's bytes parse as the bus body of the same name, with
every field kept, and back to the very same bytes."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing.v1 import common_pb2, event_pb2
from marketing_runtime.event_bodies import TYPED

texts = st.text(max_size=8)
money = st.builds(
    common_pb2.Money,
    currency_code=texts,
    units=st.integers(-(2**63), 2**63 - 1),
    nanos=st.integers(-(2**31), 2**31 - 1),
)
times = st.builds(
    timestamp_pb2.Timestamp,
    # Within JSON's range, so that the fields can be compared by name.
    seconds=st.integers(-62_135_596_800, 253_402_300_799),
    nanos=st.integers(0, 999_999_999),
)


def _maybe(strategy: Any) -> Any:
    return st.none() | strategy


def _built(cls: Any, **fields: Any) -> Any:
    """`cls` with each field drawn from its strategy, left unset when None."""
    return st.fixed_dictionaries(fields).map(
        lambda drawn: cls(**{k: v for k, v in drawn.items() if v is not None})
    )


products = _built(
    event_pb2.Product,
    product_id=texts,
    sku=texts,
    title=texts,
    categories=st.lists(texts, max_size=3),
    price=_maybe(money),
    url=texts,
    image_url=texts,
)
line_items = _built(
    event_pb2.LineItem,
    product_id=texts,
    sku=texts,
    title=texts,
    quantity=st.integers(-(2**31), 2**31 - 1),
    unit_price=_maybe(money),
    url=texts,
    image_url=texts,
)
carts = _built(
    event_pb2.Cart,
    cart_id=texts,
    items=st.lists(line_items, max_size=3),
    total=_maybe(money),
    checkout_url=texts,
    last_activity_time=_maybe(times),
)
orders = _built(
    event_pb2.Order,
    order_id=texts,
    lines=st.lists(line_items, max_size=3),
    total=_maybe(money),
    discount=_maybe(money),
    shipping=_maybe(money),
    coupon_codes=st.lists(texts, max_size=3),
)
BODIES = {
    "product_viewed": _built(event_pb2.ProductViewed, product=_maybe(products)),
    "added_to_cart": _built(event_pb2.AddedToCart, item=_maybe(line_items), cart=_maybe(carts)),
    "placed_order": _built(event_pb2.PlacedOrder, order=_maybe(orders)),
    "cart_abandoned": _built(event_pb2.CartAbandoned, cart=_maybe(carts)),
}


def test_every_typed_body_is_checked() -> None:
    assert set(BODIES) == set(TYPED)


def _same_shape(api: Any, bus: Any) -> None:
    """Same field numbers, names, types and labels, all the way down."""
    assert api.DESCRIPTOR.name == bus.DESCRIPTOR.name
    api_fields = {f.number: f for f in api.DESCRIPTOR.fields}
    bus_fields = {f.number: f for f in bus.DESCRIPTOR.fields}
    assert api_fields.keys() == bus_fields.keys()
    for number, a in api_fields.items():
        b = bus_fields[number]
        assert (a.name, a.type, a.is_repeated) == (b.name, b.type, b.is_repeated)


@pytest.mark.parametrize("field", sorted(TYPED))
def test_the_bodies_declare_the_same_fields(field: str) -> None:
    pending = [(getattr(event_pb2, TYPED[field].DESCRIPTOR.name)(), TYPED[field]())]
    while pending:
        api, bus = pending.pop()
        _same_shape(api, bus)
        for fd in api.DESCRIPTOR.fields:
            if fd.message_type is not None and fd.message_type.name != "Timestamp":
                bus_type = bus.DESCRIPTOR.fields_by_number[fd.number].message_type
                pending.append(
                    (
                        getattr(
                            common_pb2 if fd.message_type.name == "Money" else event_pb2,
                            fd.message_type.name,
                        )(),
                        getattr(bus_pb2, bus_type.name)(),
                    )
                )


def _as_dict(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@pytest.mark.parametrize("field", sorted(BODIES))
@given(data=st.data())
def test_an_api_body_crosses_to_the_bus_and_back_unchanged(field: str, data: Any) -> None:
    api = data.draw(BODIES[field])
    wire = api.SerializeToString()
    bus = TYPED[field]()
    bus.ParseFromString(wire)
    # Every field was read into a field of the same name (none left unknown).
    assert _as_dict(bus) == _as_dict(api)
    assert bus.SerializeToString() == wire
    back = type(api)()
    back.ParseFromString(bus.SerializeToString())
    assert back == api
