"""Values of the marketing API that random text would almost never hit: real
contact and failed-delivery names, real and forged page tokens, valid emails,
currencies, phone numbers. Mixed into the generated requests (as hints of
tests.fuzz.strategies) so that they also pass the first checks and reach the
code behind them: updates of existing contacts, consent on a real contact,
duplicate event ids, the second page of every list."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2
from hypothesis import strategies as st
from marketing.v1 import consent_pb2, contact_pb2
from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.fuzz.strategies import RECENT_SECONDS, Hints, json_values
from tests.harness import ServiceHarness, unique_email

# A few fixed ids, so that generated events and contacts collide with each other.
EVENT_IDS = ("", "fuzz-event-1", "fuzz-event-2", str(uuid.UUID(int=1)))
CONSENT_TYPES = tuple(range(1, len(consent_pb2.ConsentType.keys())))  # all but UNSPECIFIED
USER_IDS = ("fuzz-user-1", "fuzz-user-2", "")
LOOKALIKE_EMAILS = (
    "fuzz-1@ex\u0430mple.com",
    "FUZZ-1@EXAMPLE.COM",
    "fuzz-1@example.com\x00",
    "fuzz+tag@example.com",
    "@example.com",
    "fuzz@",
    "a" * 64 + "@" + "b" * 250 + ".com",
)


@dataclass(frozen=True)
class KnownValues:
    contact_names: list[str]
    emails: list[str]
    failed_delivery_names: list[str]
    page_tokens: list[str]  # real second-page tokens of every list
    scopes: list[str]  # what the tokens carry, for forged ones


def seed(harness: ServiceHarness) -> KnownValues:
    """Three fresh contacts, consent records on the first, and two of their
    outbox rows marked as dead letters: something to find, list and page through."""
    stub = harness.stub
    emails = [unique_email("fuzz") for _ in range(3)]
    names = []
    for email in emails:
        contact = contact_pb2.Contact(email=email, first_name="Fuzz", last_name="Seed")
        names.append(stub.UpsertContact(pb.UpsertContactRequest(contact=contact)).contact.name)
    for granted in (True, False, True):
        consent = consent_pb2.Consent(
            type=consent_pb2.CONSENT_TYPE_EMAIL, granted=granted, source="fuzz"
        )
        stub.RecordConsent(pb.RecordConsentRequest(parent=names[0], consent=consent))
    keys = [email_key(email) for email in emails]
    failed = harness.sql(
        "UPDATE marketing_outbox SET status = 'FAILED', error = 'seeded by the fuzz test',"
        " completed_at = now() WHERE contact_key = ANY(:keys) RETURNING id",
        keys=keys,
    )
    tokens = [
        stub.ListContacts(pb.ListContactsRequest(page_size=1)).next_page_token,
        stub.ListConsents(pb.ListConsentsRequest(parent=names[0], page_size=1)).next_page_token,
        stub.ListFailedDeliveries(pb.ListFailedDeliveriesRequest(page_size=1)).next_page_token,
    ]
    return KnownValues(
        contact_names=names,
        emails=emails,
        failed_delivery_names=[f"failedDeliveries/{row.id}" for row in failed],
        page_tokens=[t for t in tokens if t],
        scopes=["contacts", f"consents:{names[0]}", "failedDeliveries"],
    )


def _forged_token(scope: str, cursor: dict[str, Any]) -> str:
    """A token shaped like ours (base64 of {"s": scope, "c": cursor}), with a
    cursor of the caller's choosing; if the service signs its tokens, these are
    simply refused."""
    raw = json.dumps({"s": scope, "c": cursor}, allow_nan=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uuid_names(prefix: str) -> st.SearchStrategy[str]:
    spellings = st.sampled_from(
        (str, lambda u: str(u).upper(), lambda u: u.hex, lambda u: f"{{{u}}}", lambda u: u.urn)
    )
    return st.builds(lambda spell, u: prefix + spell(u), spellings, st.uuids())


def hints(known: KnownValues) -> Hints:
    """Extra values per field (full field names of marketing.v1)."""
    cursor_values = st.one_of(
        json_values(),
        st.sampled_from(
            (
                "0001-01-01T00:00:00",
                "9999-12-31T23:59:59.999999+00:00",
                "2024-02-30T00:00:00",
                str(uuid.UUID(int=0)),
                2**63,
                -(2**63) - 1,
                10**30,
            )
        ),
    )
    forged = st.builds(
        _forged_token,
        st.sampled_from(known.scopes),
        st.dictionaries(st.sampled_from(("t", "i", "s")), cursor_values, max_size=3),
    )
    tokens = st.one_of(st.sampled_from(known.page_tokens), forged)
    emails = st.one_of(
        st.sampled_from(known.emails),
        st.builds("fuzz-{}@example.com".format, st.integers(0, 20)),
        st.sampled_from(LOOKALIKE_EMAILS),
    )
    contact_names = st.one_of(st.sampled_from(known.contact_names), _uuid_names("contacts/"))
    failed_names = st.one_of(
        st.sampled_from(known.failed_delivery_names or ["failedDeliveries/"]),
        _uuid_names("failedDeliveries/"),
    )
    ip_addresses = st.sampled_from(
        (
            "203.0.113.7",
            "::1",
            "2001:db8::1",
            "fe80::1%eth0",
            "fe80::1%" + "z" * 300,
            "1.2.3.4\x00",
            "999.1.1.1",
            "::ffff:1.2.3.4",
        )
    )
    sources = st.sampled_from(("checkout", "footer_form", "preferences"))
    page_sizes = st.sampled_from((1, 2, 50, 1000, 1001, -1))
    ids = st.sampled_from(("p-1", "1001", "cart-1"))
    money_nanos = st.sampled_from((0, 500_000_000, -500_000_000, 999_999_999, 1_000_000_000))
    recent = st.builds(
        lambda seconds: timestamp_pb2.Timestamp(seconds=seconds),
        st.integers(RECENT_SECONDS - 10**8, RECENT_SECONDS),
    )
    request_ids = st.one_of(st.just(""), st.uuids().map(str))
    v1 = "marketing.v1."
    return {
        v1 + "Consent.type": st.sampled_from(CONSENT_TYPES),
        v1 + "Consent.consent_time": recent,
        v1 + "RecordConsentRequest.request_id": request_ids,
        v1 + "SubscribeNewsletterRequest.request_id": request_ids,
        v1 + "Event.occur_time": recent,
        v1 + "Contact.registration_time": recent,
        v1 + "Contact.last_purchase_time": recent,
        v1 + "Money.units": st.sampled_from((0, 1, 99, 10**10, 10**11, 10**15)),
        v1 + "Contact.email": emails,
        v1 + "Event.email": emails,
        v1 + "GetContactRequest.email": emails,
        v1 + "SubscribeNewsletterRequest.email": emails,
        v1 + "UnsubscribeRequest.email": emails,
        v1 + "GetContactRequest.name": contact_names,
        v1 + "ReconcileContactRequest.name": contact_names,
        v1 + "ReconcileContactRequest.email": emails,
        v1 + "DeleteContactRequest.name": contact_names,
        v1 + "RecordConsentRequest.parent": contact_names,
        v1 + "ListConsentsRequest.parent": contact_names,
        v1 + "RetryFailedDeliveriesRequest.names": failed_names,
        v1 + "ListContactsRequest.page_token": tokens,
        v1 + "ListConsentsRequest.page_token": tokens,
        v1 + "ListFailedDeliveriesRequest.page_token": tokens,
        v1 + "ListContactsRequest.page_size": page_sizes,
        v1 + "ListConsentsRequest.page_size": page_sizes,
        v1 + "ListFailedDeliveriesRequest.page_size": page_sizes,
        v1 + "Contact.user_id": st.sampled_from(USER_IDS),
        v1 + "Contact.first_name": st.sampled_from(("Ada", "")),
        v1 + "Contact.phone": st.sampled_from(
            ("+4915112345678", "", "+1", "+" + "9" * 20, "004915112345678")
        ),
        v1 + "Contact.language": st.sampled_from(("de-DE", "en", "x-klingon", "")),
        v1 + "Contact.timezone": st.sampled_from(("Europe/Berlin", "UTC", "Mars/Olympus")),
        v1 + "Money.currency_code": st.sampled_from(("EUR", "USD", "JPY", "eur", "EURO")),
        v1 + "Money.nanos": money_nanos,
        v1 + "Consent.ip_address": ip_addresses,
        v1 + "SubscribeNewsletterRequest.ip_address": ip_addresses,
        v1 + "Consent.source": sources,
        v1 + "SubscribeNewsletterRequest.source": sources,
        v1 + "Event.event_id": st.sampled_from(EVENT_IDS),
        v1 + "CustomEvent.name": st.sampled_from(
            ("review_submitted", "placed_order", "a" * 127, "a" * 128)
        ),
        v1 + "LineItem.quantity": st.sampled_from((1, 2, 0, -1)),
        v1 + "LineItem.product_id": ids,
        v1 + "Product.product_id": ids,
        v1 + "Cart.cart_id": ids,
        v1 + "Order.order_id": ids,
    }
