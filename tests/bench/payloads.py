"""Realistic events with unique ids and emails, as API messages, as the bytes a
Delivery carries on the bus, and as the provider's TrackedEvent."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from marketing.v1 import common_pb2, event_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.envelope import parse_delivery, serialized_events
from marketing_runtime.timestamps import to_timestamp

from dispatcher.delivery import translate
from dispatcher.providers.base import TrackedEvent
from service.common.validation import email_key, normalize_email
from service.events.event_log import EventRecord
from service.events.handlers import event_input

_CATEGORIES = ("kitchen", "mugs", "tea", "gifts", "home", "garden", "sale", "new-in")
_COUPONS = ("WELCOME10", "SPRING24", "FREESHIP")


def _money(cents: int) -> common_pb2.Money:
    return common_pb2.Money(currency_code="EUR", units=cents // 100, nanos=cents % 100 * 10_000_000)


def _line(rng: random.Random) -> event_pb2.LineItem:
    product = rng.randrange(1, 5000)
    return event_pb2.LineItem(
        product_id=f"prod-{product}",
        sku=f"SKU-{product:05d}-{rng.choice('SMLX')}",
        title=f"Stoneware mug no. {product}, 350 ml, glazed",
        quantity=rng.randint(1, 3),
        unit_price=_money(rng.randrange(499, 8999)),
        url=f"https://shop.example.com/p/prod-{product}",
        image_url=f"https://cdn.example.com/img/prod-{product}/main.jpg",
    )


def placed_order(rng: random.Random, n: int) -> event_pb2.PlacedOrder:
    lines = [_line(rng) for _ in range(rng.randint(1, 3))]
    total = sum(
        (li.unit_price.units * 100 + li.unit_price.nanos // 10_000_000) * li.quantity
        for li in lines
    )
    order = event_pb2.Order(
        order_id=f"order-{n}",
        lines=lines,
        total=_money(total + 495),
        shipping=_money(495),
        discount=_money(0),
        coupon_codes=[rng.choice(_COUPONS)] if rng.random() < 0.3 else [],
    )
    return event_pb2.PlacedOrder(order=order)


def product_viewed(rng: random.Random) -> event_pb2.ProductViewed:
    product = rng.randrange(1, 5000)
    return event_pb2.ProductViewed(
        product=event_pb2.Product(
            product_id=f"prod-{product}",
            sku=f"SKU-{product:05d}",
            title=f"Stoneware mug no. {product}, 350 ml, glazed",
            categories=rng.sample(_CATEGORIES, 2),
            price=_money(rng.randrange(499, 8999)),
            url=f"https://shop.example.com/p/prod-{product}",
            image_url=f"https://cdn.example.com/img/prod-{product}/main.jpg",
        )
    )


def event(tag: str, n: int, now: datetime | None = None, *, orders: bool = True) -> event_pb2.Event:
    """Event `n` of the batch `tag`: a third are orders (unless not `orders`), the
    rest product views."""
    rng = random.Random(n)
    occur = timestamp_pb2.Timestamp()
    occur.FromDatetime(now or datetime.now(UTC))
    e = event_pb2.Event(
        event_id=f"{tag}-{n:07d}", email=f"shopper.{tag}.{n}@example.com", occur_time=occur
    )
    if orders and n % 3 == 0:
        e.placed_order.CopyFrom(placed_order(rng, n))
    else:
        e.product_viewed.CopyFrom(product_viewed(rng))
    return e


def events(tag: str, count: int) -> list[event_pb2.Event]:
    now = datetime.now(UTC)
    return [event(tag, n, now) for n in range(count)]


def batches(items: list[event_pb2.Event], size: int) -> Iterator[pb.TrackEventsRequest]:
    for start in range(0, len(items), size):
        yield pb.TrackEventsRequest(events=items[start : start + size])


def record(e: event_pb2.Event) -> EventRecord:
    """The record the service builds from an API event (see service.events.rules)."""
    given = event_input(e)
    email = normalize_email(given.email)
    assert given.occur_time is not None
    return EventRecord(
        event_id=given.event_id,
        email=email,
        contact_key=email_key(email),
        metric=given.type,
        payload=given.payload,
        occurred_at=given.occur_time,
        body_field=given.type,
        body=given.body,
    )


def delivery_bytes(e: event_pb2.Event) -> bytes:
    """The serialized Delivery the service's fast path publishes for `e`."""
    (message,) = serialized_events([record(e).bus_event()], to_timestamp(datetime.now(UTC)))
    return message


def tracked_event(e: event_pb2.Event) -> TrackedEvent:
    """What the dispatcher hands the provider for `e`."""
    return translate.tracked_event(parse_delivery(delivery_bytes(e)))
