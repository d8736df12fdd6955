"""Kind names derived from the enum, and the legacy decoder: messages written
by releases before the typed contract read as typed ones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, legacy
from marketing_runtime.envelope import parse_delivery, parse_results
from marketing_runtime.timestamps import to_timestamp

CREATED = to_timestamp(datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC))


def test_every_kind_has_a_name_a_payload_message_and_a_legacy_string() -> None:
    oneof = bus_pb2.Delivery.DESCRIPTOR.oneofs_by_name["payload"]
    fields = {f.name: f.message_type.name for f in oneof.fields if f.message_type}
    for kind in kinds.ALL:
        field = kinds.payload_field(kind)
        assert fields[field] == field.title().replace("_", "")  # event_tracked: EventTracked
        assert kinds.from_name(kinds.name(kind)) == kind
    assert len(fields) == len(kinds.ALL)
    # Outbox rows and metrics keep the names earlier releases used: no row to
    # convert (kinds added since have no legacy string).
    for text, kind in legacy.KINDS.items():
        assert kinds.name(kind) == text


def _old_delivery(kind: str, payload: Mapping[str, object]) -> bytes:
    return bus_pb2.Delivery(
        id="d-1",
        kind=kind,
        contact_key="k",
        sequence=7,
        payload_json=json.dumps(payload).encode(),
        create_time=CREATED,
    ).SerializeToString()


def test_an_old_event_reads_as_a_typed_one() -> None:
    properties = {"order": {"order_id": "o1", "total": {"currency_code": "EUR", "units": 5}}}
    old = _old_delivery(
        "event.tracked",
        {
            "event_id": "e-1",
            "metric": "placed_order",
            "email": "ada@example.com",
            "occur_time": "2026-05-06T07:00:00.000001+00:00",
            "properties": properties,
        },
    )
    d = parse_delivery(old)
    assert d.type == bus_pb2.KIND_EVENT_TRACKED and not d.kind and not d.payload_json
    assert (d.id, d.contact_key, d.sequence, d.create_time) == ("d-1", "k", 7, CREATED)
    e = d.event_tracked
    assert (e.event_id, e.metric, e.email) == ("e-1", "placed_order", "ada@example.com")
    assert (e.occur_time.seconds, e.occur_time.nanos) == (1778050800, 1000)
    assert e.WhichOneof("body") == "placed_order" and not e.properties_json
    assert (e.placed_order.order.order_id, e.placed_order.order.total.units) == ("o1", 5)


def test_an_old_profile_keeps_its_exact_value_and_unset_fields() -> None:
    d = parse_delivery(
        _old_delivery(
            "contact.upserted",
            {
                "contact_id": "c-1",
                "email": "ada@example.com",
                "user_id": None,
                "first_name": "Ada",
                "lifetime_value": "1234.567000001",
                "lifetime_value_currency": "EUR",
                "order_count": 0,
                "registration_time": None,
                "custom_properties": {"vip": True},
            },
        )
    )
    c = d.contact_upserted
    assert d.type == bus_pb2.KIND_CONTACT_UPSERTED
    assert c.first_name == "Ada" and not c.HasField("user_id") and c.HasField("order_count")
    assert not c.HasField("registration_time")
    assert (c.lifetime_value.units, c.lifetime_value.nanos) == (1234, 567000001)
    assert orjson.loads(c.custom_properties_json) == {"vip": True}


def test_old_consent_kinds_carry_the_whole_state() -> None:
    state: dict[str, object] = {
        "contact_id": "c-1",
        "email": "ada@example.com",
        "phone": None,
        "opt_in": {"email": True, "sms": False, "push": True},
        "newsletter_member": True,
        "suppressed": False,
        "records": [
            {
                "type": "EMAIL",
                "granted": True,
                "source": "checkout",
                "consent_time": "2026-05-06T07:00:00+00:00",
            }
        ],
    }
    changed = parse_delivery(_old_delivery("consent.changed", state)).consent_changed.state
    assert changed.opt_in == bus_pb2.OptIn(email=True, push=True) and changed.newsletter_member
    assert not changed.HasField("phone")
    assert changed.records[0].type == bus_pb2.CONSENT_TYPE_EMAIL
    gone = parse_delivery(_old_delivery("contact.unsubscribed", state | {"reason": None}))
    assert not gone.contact_unsubscribed.HasField("reason")
    joined = parse_delivery(_old_delivery("newsletter.subscribed", state))
    assert joined.newsletter_subscribed.state == changed
    erased = parse_delivery(
        _old_delivery("contact.erased", {"email": "a@b.co", "external_id": "x"})
    )
    assert erased.contact_erased == bus_pb2.ContactErased(email="a@b.co", external_id="x")


def test_an_old_message_it_cannot_read_stays_untyped() -> None:
    """Readers refuse it as unreadable (the dispatcher dead-letters it)."""
    unknown = parse_delivery(_old_delivery("list.joined", {"email": "a@b.co"}))
    assert unknown.type == bus_pb2.KIND_UNSPECIFIED and unknown.kind == "list.joined"
    broken = parse_delivery(_old_delivery("event.tracked", {"email": "a@b.co"}))
    assert broken.type == bus_pb2.KIND_UNSPECIFIED and broken.payload_json


def test_a_typed_delivery_is_left_as_it_is() -> None:
    typed = bus_pb2.Delivery(
        id="d", type=bus_pb2.KIND_CONTACT_ERASED, contact_erased=bus_pb2.ContactErased(email="a")
    )
    assert parse_delivery(typed.SerializeToString()) == typed


def test_old_results_get_their_type() -> None:
    results = bus_pb2.DeliveryResults(
        results=[
            bus_pb2.DeliveryResult(delivery_id="1", kind="event.tracked"),
            bus_pb2.DeliveryResult(delivery_id="2", type=bus_pb2.KIND_CONTACT_ERASED),
        ]
    )
    parsed = parse_results(results.SerializeToString())
    assert [r.type for r in parsed] == [bus_pb2.KIND_EVENT_TRACKED, bus_pb2.KIND_CONTACT_ERASED]
    assert not parsed[0].kind
