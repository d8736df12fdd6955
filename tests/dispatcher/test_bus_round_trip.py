"""Every kind through the service's writer (the relay, from an outbox row as
the service stores it) and the dispatcher's reader: what reaches the provider
is what the service stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.envelope import parse_delivery

from dispatcher.delivery import translate
from dispatcher.providers.base import ConsentChange
from service.contacts.rules import contact_payload
from service.storage.models import Contact
from service.workers import relay

NOW = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _relayed(kind: bus_pb2.Kind, payload: dict[str, Any]) -> bus_pb2.Delivery:
    row = {
        "id": uuid.uuid4(),
        "seq": 41,
        "kind": kinds.name(kind),
        "contact_key": "k" * 64,
        "payload": json.loads(json.dumps(payload, default=str)),  # as it comes back from jsonb
        "created_at": NOW,
        "retry_count": 0,
    }
    _, data, _, _, _ = relay._message(row, NOW)
    delivery = parse_delivery(data)
    assert delivery.type == kind and not delivery.kind and not delivery.payload_json
    return delivery


def test_event_tracked() -> None:
    properties = {"order": {"order_id": "o", "total": {"currency_code": "EUR", "units": 7}}}
    payload = {
        "event_id": "e-1",
        "metric": "placed_order",
        "email": "ada@example.com",
        "occur_time": NOW.isoformat(),
        "properties": properties,
    }
    event = translate.tracked_event(_relayed(bus_pb2.KIND_EVENT_TRACKED, payload))
    assert (event.event_id, event.email, event.metric, event.time) == (
        "e-1",
        "ada@example.com",
        "placed_order",
        NOW,
    )
    assert (event.value, event.value_currency) == (Decimal(7), "EUR")
    assert event.properties == {"order": {"order_id": "o", "total": 7.0}}


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


_STATE = {
    "contact_id": str(uuid.uuid4()),
    "email": "ada@example.com",
    "phone": "+4915112345678",
    "opt_in": {"email": True, "sms": False, "push": False},
    "newsletter_member": True,
    "suppressed": False,
    "records": [
        {"type": "SMS", "granted": False, "source": "app", "consent_time": NOW.isoformat()}
    ],
}


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (bus_pb2.KIND_CONSENT_CHANGED, _STATE),
        (bus_pb2.KIND_NEWSLETTER_SUBSCRIBED, _STATE),
        (bus_pb2.KIND_CONTACT_UNSUBSCRIBED, _STATE | {"reason": "too many"}),
    ],
)
def test_consent_kinds(kind: bus_pb2.Kind, payload: dict[str, Any]) -> None:
    state = translate.consent_state(_relayed(kind, payload))
    assert state.change == ConsentChange(
        email="ada@example.com", phone="+4915112345678", email_marketing=True, sms_marketing=False
    )
    assert state.newsletter_member and not state.suppressed


def test_unsubscribing_an_address_without_a_contact() -> None:
    payload = {
        "email": "ada@example.com",
        "opt_in": {"email": False, "sms": False, "push": False},
        "newsletter_member": False,
        "suppressed": True,
        "reason": None,
    }
    delivery = _relayed(bus_pb2.KIND_CONTACT_UNSUBSCRIBED, payload)
    assert not delivery.contact_unsubscribed.HasField("reason")
    state = translate.consent_state(delivery)
    assert state.suppressed and state.change.sms_marketing is None


def test_contact_erased() -> None:
    delivery = _relayed(bus_pb2.KIND_CONTACT_ERASED, {"email": "a@b.co", "external_id": None})
    assert translate.erasure_email(delivery) == "a@b.co"


def test_a_row_the_relay_cannot_read_is_failed_not_published() -> None:
    row = {
        "id": uuid.uuid4(),
        "seq": 1,
        "kind": kinds.name(bus_pb2.KIND_CONTACT_ERASED),
        "contact_key": "k",
        "payload": {"erased": True},
        "created_at": NOW,
        "retry_count": 0,
    }
    fitting, unpublishable = relay._sized([row], NOW, 1 << 20)
    assert not fitting and "unreadable outbox payload" in unpublishable[0].error
