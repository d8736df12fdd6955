"""Every kind and every event type through the service's writers (the relay,
from an outbox row as the service stores it; the fast path for events) and
the dispatcher's reader: what reaches the provider is what the service
accepted, and for events exactly what the release before typed bodies sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing.v1 import common_pb2, event_pb2
from marketing_runtime import kinds
from marketing_runtime.envelope import parse_delivery, serialized_events
from marketing_runtime.timestamps import to_timestamp

from dispatcher.delivery import translate
from dispatcher.providers.base import ConsentChange
from service.contacts.rules import contact_payload
from service.deliveries import outbox
from service.errors import Violations
from service.events import rules as event_rules
from service.events.bus_body import log_json
from service.events.event_log import EventRecord
from service.events.handlers import event_input
from service.events.rules import validate_event
from service.storage.models import Contact
from service.workers import relay

NOW = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _relayed(kind: bus_pb2.Kind, payload: Message) -> bus_pb2.Delivery:
    row = {
        "id": uuid.uuid4(),
        "seq": 41,
        "kind": kinds.name(kind),
        "contact_key": "k" * 64,
        "payload": payload.SerializeToString(),  # as the outbox row keeps it
        "created_at": NOW,
        "retry_count": 0,
    }
    _, (_, data, _, _, _) = relay._message(row, NOW)
    delivery = parse_delivery(data)
    assert delivery.type == kind and not delivery.kind and not delivery.payload_json
    return delivery


def _money(units: int, nanos: int = 0) -> common_pb2.Money:
    return common_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


_LINE = event_pb2.LineItem(
    product_id="p-1", sku="S", title="Mug", quantity=2, unit_price=_money(12, 500_000_000)
)
_CART = event_pb2.Cart(
    cart_id="c-1",
    items=[_LINE, event_pb2.LineItem(product_id="p-2", quantity=1)],
    total=_money(25),
    checkout_url="https://shop.example.com/c",
    last_activity_time=timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=5000),
)
_CUSTOM_PROPERTIES = struct_pb2.Struct()
_CUSTOM_PROPERTIES.update({"stars": 5, "tags": ["a", "b"], "tip": {"currency_code": "EUR"}})
# One API event of every type, with every field of its body set.
API_EVENTS = {
    "product_viewed": event_pb2.Event(
        product_viewed=event_pb2.ProductViewed(
            product=event_pb2.Product(
                product_id="p-1",
                sku="S",
                title="Mug",
                categories=["kitchen", "mugs"],
                price=_money(12, 990_000_000),
                url="https://shop.example.com/p-1",
                image_url="https://cdn.example.com/p-1.jpg",
            )
        )
    ),
    "added_to_cart": event_pb2.Event(added_to_cart=event_pb2.AddedToCart(item=_LINE, cart=_CART)),
    "placed_order": event_pb2.Event(
        placed_order=event_pb2.PlacedOrder(
            order=event_pb2.Order(
                order_id="o-1",
                lines=[_LINE],
                total=_money(30, 1),
                discount=_money(0, 10),
                shipping=_money(5),
                coupon_codes=["WELCOME10"],
            )
        )
    ),
    "cart_abandoned": event_pb2.Event(cart_abandoned=event_pb2.CartAbandoned(cart=_CART)),
    "custom": event_pb2.Event(
        custom=event_pb2.CustomEvent(
            name="review_submitted", properties=_CUSTOM_PROPERTIES, value=_money(3)
        )
    ),
    "custom without properties": event_pb2.Event(custom=event_pb2.CustomEvent(name="pinged")),
}


def _record(api: event_pb2.Event) -> EventRecord:
    e = event_pb2.Event()
    e.CopyFrom(api)
    e.event_id, e.email = "e-1", "ada@example.com"
    e.occur_time.CopyFrom(to_timestamp(NOW))
    given = event_input(e)
    v = Violations()
    payload_json = validate_event(v, given, "event.", NOW, timedelta(0))
    v.raise_if_any()
    return event_rules._record("e-1", given, payload_json, NOW)


def _provider_properties_before(payload: dict[str, Any], metric: str) -> tuple[Any, Any, Any]:
    """What the dispatcher of the release before typed bodies handed the
    provider (properties, value, currency) for an event whose body was the
    JSON `payload`: frozen here as the reference the typed path must match."""

    def is_money(value: Any) -> bool:
        keys = {"currency_code", "units", "nanos"}
        return isinstance(value, dict) and "currency_code" in value and value.keys() <= keys

    def number(m: dict[str, Any]) -> Decimal:
        return Decimal(str(m.get("units", "0"))) + Decimal(m.get("nanos", 0)) / Decimal(10**9)

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return (
                float(number(value)) if is_money(value) else {k: plain(v) for k, v in value.items()}
            )
        return [plain(v) for v in value] if isinstance(value, list) else value

    custom = payload.get("name") == metric
    if custom:
        money = payload.get("value") if is_money(payload.get("value")) else None
        properties = payload.get("properties", {})
    else:
        path = {"placed_order": ("order", "total"), "cart_abandoned": ("cart", "total")}
        node: Any = payload
        for key in path.get(metric, ()):
            node = node.get(key) if isinstance(node, dict) else None
        money = node if metric in path and is_money(node) else None
        properties = plain(payload)
    value = None if money is None else number(money)
    return properties, value, None if money is None else money["currency_code"]


@pytest.mark.parametrize("case", list(API_EVENTS))
def test_every_event_type_reaches_the_provider_as_before(case: str) -> None:
    record = _record(API_EVENTS[case])
    expected = _provider_properties_before(record.payload, record.metric)
    fast = parse_delivery(next(serialized_events([record.bus_event()], to_timestamp(NOW))))
    relayed = _relayed(bus_pb2.KIND_EVENT_TRACKED, record.bus_message())
    for delivery in (fast, relayed):
        event = translate.tracked_event(delivery)
        assert (event.properties, event.value, event.value_currency) == expected
        assert (event.event_id, event.email, event.metric, event.time) == (
            "e-1",
            "ada@example.com",
            record.metric,
            NOW,
        )


@pytest.mark.parametrize("case", list(API_EVENTS))
def test_the_event_log_keeps_the_json_document_it_kept_before(case: str) -> None:
    """The event-log writer's document of a bus event is what the RPC encoded
    (and, before typed bodies, what the bus carried)."""
    record = _record(API_EVENTS[case])
    delivery = parse_delivery(next(serialized_events([record.bus_event()], to_timestamp(NOW))))
    assert orjson.loads(log_json(delivery.event_tracked)) == orjson.loads(record.payload_json)


@pytest.mark.parametrize("case", list(API_EVENTS))
def test_an_event_of_the_previous_release_reaches_the_provider_alike(case: str) -> None:
    """A message already on the stream when the new release starts: a `kind`
    string and the event as JSON in payload_json, its body under "properties"."""
    record = _record(API_EVENTS[case])
    old = bus_pb2.Delivery(
        id="e-1",
        kind="event.tracked",
        contact_key="k",
        create_time=to_timestamp(NOW),
        payload_json=orjson.dumps(
            {
                "event_id": "e-1",
                "email": "ada@example.com",
                "metric": record.metric,
                "occur_time": NOW.isoformat(),
                "properties": orjson.loads(record.payload_json),
            }
        ),
    )
    upgraded = parse_delivery(old.SerializeToString())
    new = parse_delivery(next(serialized_events([record.bus_event()], to_timestamp(NOW))))
    assert upgraded.event_tracked == new.event_tracked
    assert translate.tracked_event(upgraded) == translate.tracked_event(new)


def test_contact_upserted() -> None:
    row = Contact(
        id=uuid.uuid4(),
        email="ada@example.com",
        user_id="u-1",
        first_name="Ada",
        phone="+4915112345678",
        registration_time=NOW,
        lifetime_value=Decimal("1234.500000001"),
        lifetime_value_currency="EUR",
        order_count=0,
        language="de",
        custom_properties={"vip": True, "tags": ["a"]},
    )
    profile = translate.profile(_relayed(bus_pb2.KIND_CONTACT_UPSERTED, contact_payload(row)))
    assert (profile.email, profile.external_id, profile.first_name, profile.last_name) == (
        "ada@example.com",
        "u-1",
        "Ada",
        None,
    )
    assert profile.phone == "+4915112345678" and profile.location is None
    assert profile.properties == {
        "registration_time": NOW.isoformat(),
        "lifetime_value": 1234.500000001,
        "lifetime_value_currency": "EUR",
        "order_count": 0,
        "language": "de",
        "vip": True,
        "tags": ["a"],
    }


_STATE = bus_pb2.ConsentState(
    contact_id=str(uuid.uuid4()),
    email="ada@example.com",
    phone="+4915112345678",
    opt_in=bus_pb2.OptIn(email=True),
    newsletter_member=True,
    records=[
        bus_pb2.ConsentRecord(
            type=bus_pb2.CONSENT_TYPE_SMS,
            granted=False,
            source="app",
            consent_time=to_timestamp(NOW),
        )
    ],
)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (bus_pb2.KIND_CONSENT_CHANGED, bus_pb2.ConsentChanged(state=_STATE)),
        (bus_pb2.KIND_NEWSLETTER_SUBSCRIBED, bus_pb2.NewsletterSubscribed(state=_STATE)),
        (
            bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
            bus_pb2.ContactUnsubscribed(state=_STATE, reason="too many"),
        ),
    ],
)
def test_consent_kinds(kind: bus_pb2.Kind, payload: Message) -> None:
    state = translate.consent_state(_relayed(kind, payload))
    assert state.change == ConsentChange(
        email="ada@example.com", phone="+4915112345678", email_marketing=True, sms_marketing=False
    )
    assert state.newsletter_member and not state.suppressed


def test_unsubscribing_an_address_without_a_contact() -> None:
    payload = bus_pb2.ContactUnsubscribed(
        state=bus_pb2.ConsentState(email="ada@example.com", opt_in=bus_pb2.OptIn(), suppressed=True)
    )
    delivery = _relayed(bus_pb2.KIND_CONTACT_UNSUBSCRIBED, payload)
    assert not delivery.contact_unsubscribed.HasField("reason")
    state = translate.consent_state(delivery)
    assert state.suppressed and state.change.sms_marketing is None


def test_contact_erased() -> None:
    delivery = _relayed(bus_pb2.KIND_CONTACT_ERASED, bus_pb2.ContactErased(email="a@b.co"))
    assert translate.erasure_email(delivery) == "a@b.co"


@pytest.mark.parametrize("kind", kinds.ALL)
def test_a_row_of_an_erased_person_is_failed_not_published(kind: bus_pb2.Kind) -> None:
    row = {
        "id": uuid.uuid4(),
        "seq": 1,
        "kind": kinds.name(kind),
        "contact_key": "k",
        "payload": outbox.ERASED_PAYLOAD,
        "created_at": NOW,
        "retry_count": 0,
    }
    fitting, unpublishable = relay._sized([row], NOW, 1 << 20)
    assert not fitting and "unreadable outbox payload" in unpublishable[0].error
