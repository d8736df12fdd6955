"""Hypothesis strategies for a person as our service holds them: a ContactUpserted
(the profile the provider receives) and a ConsentState, valid as the service
writes them. Shared by the read-back and reconcile tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.money import to_money
from marketing_runtime.timestamps import to_timestamp

PHONE = "+15005550006"
# Properties the profile derives from typed fields: a custom property of such a
# name would stand in for the field at the provider, so the service's callers
# cannot have one that survives a read-back (the provider keeps one value).
TYPED_PROPERTY_NAMES = frozenset(
    {
        "registration_time",
        "loyalty_tier",
        "lifetime_value",
        "lifetime_value_currency",
        "order_count",
        "last_purchase_time",
        "language",
        "timezone",
        "location",
    }
)
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
)
amounts = st.builds(
    lambda units, nanos: Decimal(units) + Decimal(nanos) / Decimal(10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9 - 1),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
custom_properties = st.dictionaries(
    text.filter(lambda key: key not in TYPED_PROPERTY_NAMES), json_values, max_size=4
)
_TEXT_FIELDS = (
    "user_id",
    "first_name",
    "last_name",
    "loyalty_tier",
    "location",
    "language",
    "timezone",
)


@st.composite
def contacts(draw: st.DrawFn, email: str, phone: str = PHONE) -> bus_pb2.ContactUpserted:
    """A profile as `service.contacts.rules.contact_payload` writes one (with `phone`
    or none)."""
    message = bus_pb2.ContactUpserted(contact_id="c", email=email)
    for name in _TEXT_FIELDS:
        value = draw(st.none() | text)
        if value is not None:
            setattr(message, name, value)
    if draw(st.booleans()):
        message.phone = phone
    count = draw(st.none() | st.integers(0, 2**31 - 1))
    if count is not None:
        message.order_count = count
    for name in ("registration_time", "last_purchase_time"):
        when = draw(st.none() | times)
        if when is not None:
            getattr(message, name).CopyFrom(to_timestamp(when))
    worth = draw(st.none() | amounts)
    if worth is not None:
        message.lifetime_value.CopyFrom(to_money(worth, draw(st.sampled_from(["", "EUR", "USD"]))))
    message.custom_properties_json = orjson.dumps(draw(custom_properties))
    return message


@st.composite
def consent_states(draw: st.DrawFn, email: str, phone: str | None) -> bus_pb2.ConsentState:
    """A whole consent state as `service.consent.snapshots` builds one."""
    suppressed = draw(st.booleans())
    return bus_pb2.ConsentState(
        contact_id="c",
        email=email,
        phone=phone,
        opt_in=bus_pb2.OptIn(email=draw(st.booleans()), sms=draw(st.booleans())),
        # An unsubscribe (the only way to be suppressed) also ends the membership.
        newsletter_member=not suppressed and draw(st.booleans()),
        suppressed=suppressed,
    )
