"""Small factories for request messages, so tests say only what matters to them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from marketing.v1 import common_pb2, consent_pb2, contact_pb2, event_pb2
from marketing.v1 import service_pb2 as pb


def ts(when: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when.astimezone(UTC))
    return out


def money(units: int, currency: str = "EUR", nanos: int = 0) -> common_pb2.Money:
    return common_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def contact(email: str, **fields: Any) -> contact_pb2.Contact:
    fields.setdefault("first_name", "Ada")
    return contact_pb2.Contact(email=email, **fields)


def upsert(email: str, **fields: Any) -> pb.UpsertContactRequest:
    return pb.UpsertContactRequest(contact=contact(email, **fields))


def consent(type_name: str = "EMAIL", granted: bool = True, **fields: Any) -> consent_pb2.Consent:
    fields.setdefault("source", "preferences")
    if type_name == "SMS" and granted:  # an SMS grant names the wording shown
        fields.setdefault("wording_version", "sms-terms-test")
    type_ = consent_pb2.ConsentType.Value(f"CONSENT_TYPE_{type_name}")
    return consent_pb2.Consent(type=type_, granted=granted, **fields)  # type: ignore[arg-type]


def line(product_id: str = "sku-1", quantity: int = 1, units: int = 10) -> event_pb2.LineItem:
    return event_pb2.LineItem(product_id=product_id, quantity=quantity, unit_price=money(units))


def placed_order(email: str, order_id: str = "o-1", **fields: Any) -> event_pb2.Event:
    order = event_pb2.Order(order_id=order_id, lines=[line()], total=money(10))
    return event_pb2.Event(email=email, placed_order=event_pb2.PlacedOrder(order=order), **fields)


def product_viewed(email: str, product_id: str = "sku-1", **fields: Any) -> event_pb2.Event:
    product = event_pb2.Product(product_id=product_id, title="Mug", price=money(12))
    return event_pb2.Event(
        email=email, product_viewed=event_pb2.ProductViewed(product=product), **fields
    )


def added_to_cart(email: str, **fields: Any) -> event_pb2.Event:
    return event_pb2.Event(email=email, added_to_cart=event_pb2.AddedToCart(item=line()), **fields)


def cart_abandoned(email: str, **fields: Any) -> event_pb2.Event:
    cart = event_pb2.Cart(cart_id="c-1", items=[line()], total=money(10))
    return event_pb2.Event(email=email, cart_abandoned=event_pb2.CartAbandoned(cart=cart), **fields)


def custom(email: str, name: str = "review_submitted", **properties: Any) -> event_pb2.Event:
    event = event_pb2.Event(email=email, custom=event_pb2.CustomEvent(name=name))
    event.custom.properties.update(properties)
    return event
