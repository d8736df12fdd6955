"""Klaviyo's webhooks: which deliveries are Klaviyo's (signature, replay window,
webhook id), and what is read from them."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_datetime

from dispatcher.webhooks import klaviyo
from dispatcher.webhooks.errors import Malformed, Refused
from tests.dispatcher.webhooks.helpers import (
    NOW,
    SECRET,
    WEBHOOK_ID,
    assert_storable,
    klaviyo_body,
    klaviyo_item,
    signed_headers,
)

WINDOW_S = 300.0


def verify(body: bytes, headers: dict[str, str], *, secret: str = SECRET) -> str:
    return klaviyo.verify(body, headers, secret=secret, now=NOW, window_s=WINDOW_S)


# --- verification -----------------------------------------------------------------------


def test_a_delivery_signed_with_the_secret_is_klaviyos() -> None:
    body = klaviyo_body(klaviyo_item())

    assert verify(body, signed_headers(body)) == WEBHOOK_ID


def test_the_timestamp_may_be_an_iso_time() -> None:
    body = klaviyo_body(klaviyo_item())

    for stamp in ("2026-11-02T09:30:00Z", "2026-11-02T09:30:00+00:00", "2026-11-02T10:30:00+01:00"):
        assert verify(body, signed_headers(body, timestamp=stamp)) == WEBHOOK_ID


def test_an_upper_case_signature_is_the_same_signature() -> None:
    body = klaviyo_body(klaviyo_item())
    headers = signed_headers(body)
    headers[klaviyo.SIGNATURE_HEADER] = headers[klaviyo.SIGNATURE_HEADER].upper()

    assert verify(body, headers) == WEBHOOK_ID


def test_another_secret_is_refused() -> None:
    body = klaviyo_body(klaviyo_item())

    with pytest.raises(Refused, match="signature"):
        verify(body, signed_headers(body, secret="someone-elses-secret"))


def test_a_tampered_body_is_refused() -> None:
    body = klaviyo_body(klaviyo_item())
    headers = signed_headers(body)
    tampered = body.replace(b"opened_email", b"marked_email_as_spam")

    with pytest.raises(Refused, match="signature"):
        verify(tampered, headers)


def test_a_signature_over_another_timestamp_is_refused() -> None:
    body = klaviyo_body(klaviyo_item())
    headers = signed_headers(body)
    headers[klaviyo.TIMESTAMP_HEADER] = str(int(NOW.timestamp()) + 1)

    with pytest.raises(Refused, match="signature"):
        verify(body, headers)


@pytest.mark.parametrize("offset_s", [-301, 301, -86400, 86400])
def test_a_timestamp_outside_the_replay_window_is_refused(offset_s: int) -> None:
    body = klaviyo_body(klaviyo_item())
    headers = signed_headers(body, sent=NOW + timedelta(seconds=offset_s))

    with pytest.raises(Refused, match="replay window"):
        verify(body, headers)


@pytest.mark.parametrize("offset_s", [-300, -1, 0, 1, 300])
def test_a_timestamp_inside_the_replay_window_is_taken(offset_s: int) -> None:
    body = klaviyo_body(klaviyo_item())

    assert verify(body, signed_headers(body, sent=NOW + timedelta(seconds=offset_s)))


@pytest.mark.parametrize("stamp", ["", "yesterday", "1793611800.5", "-1793611800", "١٧٩٣٦١١٨٠٠"])
def test_a_timestamp_that_is_no_time_is_refused(stamp: str) -> None:
    body = klaviyo_body(klaviyo_item())

    with pytest.raises(Refused):
        verify(body, signed_headers(body, timestamp=stamp))


@pytest.mark.parametrize(
    "missing", [klaviyo.WEBHOOK_ID_HEADER, klaviyo.TIMESTAMP_HEADER, klaviyo.SIGNATURE_HEADER]
)
def test_a_missing_header_is_refused(missing: str) -> None:
    body = klaviyo_body(klaviyo_item())
    headers = signed_headers(body)
    del headers[missing]

    with pytest.raises(Refused, match="missing"):
        verify(body, headers)


def test_without_a_secret_everything_is_refused() -> None:
    body = klaviyo_body(klaviyo_item())

    with pytest.raises(Refused, match="KLAVIYO_WEBHOOK_SECRET"):
        verify(body, signed_headers(body, secret=""), secret="")


def test_a_body_naming_another_webhook_is_refused() -> None:
    body = klaviyo_body(klaviyo_item(), webhook_id="01JOTHERWEBHOOK00000000000")
    webhook_id = verify(body, signed_headers(body))  # the header names ours

    with pytest.raises(Refused, match="klaviyo_webhook_id"):
        klaviyo.parse(body, webhook_id)


def test_a_body_naming_no_webhook_is_refused() -> None:
    body = orjson.dumps({"data": [klaviyo_item()], "meta": {}})

    with pytest.raises(Refused, match="klaviyo_webhook_id"):
        klaviyo.parse(body, WEBHOOK_ID)


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=64))
def test_any_body_signed_with_the_secret_verifies(body: bytes, secret: str) -> None:
    headers = signed_headers(body, secret=secret)

    assert klaviyo.verify(body, headers, secret=secret, now=NOW, window_s=WINDOW_S) == WEBHOOK_ID


@given(body=st.binary(min_size=1, max_size=2000), data=st.data())
def test_any_single_byte_changed_fails(body: bytes, data: st.DataObject) -> None:
    headers = signed_headers(body)
    at = data.draw(st.integers(0, len(body) - 1), label="at")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[at]), label="byte")
    changed = body[:at] + bytes([byte]) + body[at + 1 :]

    with pytest.raises(Refused):
        verify(changed, headers)


# --- reading ----------------------------------------------------------------------------

MAPPED = [
    ("event:klaviyo.received_email", bus_pb2.ENGAGEMENT_TYPE_DELIVERED),
    ("event:klaviyo.opened_email", bus_pb2.ENGAGEMENT_TYPE_OPENED),
    ("event:klaviyo.clicked_email", bus_pb2.ENGAGEMENT_TYPE_CLICKED),
    ("event:klaviyo.bounced_email", bus_pb2.ENGAGEMENT_TYPE_BOUNCED),
    ("event:klaviyo.marked_email_as_spam", bus_pb2.ENGAGEMENT_TYPE_SPAM_COMPLAINT),
    ("event:klaviyo.unsubscribed_from_email_marketing", bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED),
    ("event:klaviyo.unsubscribed_from_email", bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED),
    ("event:klaviyo.unsubscribed_from_sms_marketing", bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED),
    ("event:klaviyo.sent_sms", bus_pb2.ENGAGEMENT_TYPE_SENT),
]


def parse_one(item: dict[str, Any]) -> bus_pb2.Engagement:
    (engagement,) = klaviyo.parse(klaviyo_body(item), WEBHOOK_ID)
    return engagement


@pytest.mark.parametrize(("topic", "kind"), MAPPED)
def test_each_topic_we_take_is_its_engagement_type(topic: str, kind: int) -> None:
    engagement = parse_one(klaviyo_item("ev-1", topic))

    assert engagement.type == kind
    assert engagement.provider_type == topic
    assert engagement.provider == "klaviyo"
    assert engagement.external_id == "ev-1"
    assert (engagement.email, engagement.phone) == ("ada@example.com", "+15005550006")
    assert to_datetime(engagement.occur_time) == datetime(2026, 11, 2, 9, 29, tzinfo=UTC)


def test_every_field_is_read_from_the_event_properties() -> None:
    properties = {
        "$message": "msg-1",
        "$flow": "flow-1",
        "$campaign": "camp-1",
        "URL": "https://example.com/offer",
        "Bounce Type": "Hard",
        "Reason": "mailbox does not exist",
    }
    engagement = parse_one(klaviyo_item(properties=properties))

    assert engagement.message_id == "msg-1"
    assert engagement.flow_id == "flow-1"
    assert engagement.campaign_id == "camp-1"
    assert engagement.url == "https://example.com/offer"
    assert engagement.bounce_type == "hard"
    assert engagement.detail == "mailbox does not exist"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"Campaign ID": "c-2"}, {"campaign_id": "c-2"}),
        ({"$reason": "r"}, {"detail": "r"}),
        ({"Bounce Reason": "full"}, {"detail": "full"}),
        ({"Bounce Type": "Soft Bounce"}, {"bounce_type": "soft"}),
        ({"Bounce Type": "Transient"}, {"bounce_type": "transient"}),
        ({"$flow": 12345}, {"flow_id": "12345"}),
    ],
)
def test_the_other_names_of_a_field(properties: dict[str, Any], expected: dict[str, str]) -> None:
    engagement = parse_one(klaviyo_item(properties=properties))

    assert {name: getattr(engagement, name) for name in expected} == expected


def test_without_a_profile_the_address_comes_from_the_event_properties() -> None:
    item = klaviyo_item(
        email=None, phone=None, properties={"$email": "bo@example.com", "$phone_number": "+1555"}
    )
    item["payload"]["included"] = []

    engagement = parse_one(item)

    assert (engagement.email, engagement.phone) == ("bo@example.com", "+1555")


def test_the_profile_is_the_one_the_event_names() -> None:
    item = klaviyo_item(email="ada@example.com")
    other = {"type": "profile", "id": "someone-else", "attributes": {"email": "eve@example.com"}}
    item["payload"]["included"].insert(0, other)

    assert parse_one(item).email == "ada@example.com"


def test_a_profile_the_event_does_not_name_is_never_taken() -> None:
    item = klaviyo_item(email=None)
    item["payload"]["included"] = [
        {"type": "profile", "id": "someone-else", "attributes": {"email": "eve@example.com"}}
    ]

    assert parse_one(item).email == ""


def test_when_the_event_names_no_profile_the_only_one_included_is_its() -> None:
    item = klaviyo_item()
    del item["payload"]["data"]["relationships"]

    assert parse_one(item).email == "ada@example.com"


def test_without_a_datetime_the_time_is_the_epoch_timestamp() -> None:
    item = klaviyo_item()
    del item["payload"]["data"]["attributes"]["datetime"]

    assert to_datetime(parse_one(item).occur_time) == datetime(2026, 11, 2, 9, 29, tzinfo=UTC)


def test_an_item_missing_parts_is_reported_with_what_it_has() -> None:
    item = {"external_id": "ev-bare", "topic": "event:klaviyo.opened_email"}

    engagement = parse_one(item)

    assert engagement.external_id == "ev-bare"
    assert engagement.type == bus_pb2.ENGAGEMENT_TYPE_OPENED
    assert engagement.email == ""
    assert not engagement.HasField("occur_time")


def test_nul_and_other_control_characters_are_left_out_of_every_text() -> None:
    properties = {
        "$message": "msg\u00001",
        "$flow": "flow-1\u0000",
        "$campaign": "\u0000camp-1",
        "URL": "https://example.com/\u0000offer",
        "Bounce Type": "Ha\u0000rd",
        "Reason": "mailbox\u0000 does not exist\u0007",
    }
    item = klaviyo_item("ev\u0000-1", email="ada@exa\u0000mple.com", properties=properties)
    body = klaviyo_body(item)

    (engagement,) = klaviyo.parse(body, WEBHOOK_ID)

    assert b"\\u0000" in body
    assert_storable(engagement)
    assert (engagement.external_id, engagement.email) == ("ev-1", "ada@example.com")
    assert (engagement.message_id, engagement.flow_id, engagement.campaign_id) == (
        "msg1",
        "flow-1",
        "camp-1",
    )
    assert engagement.url == "https://example.com/offer"
    assert (engagement.bounce_type, engagement.detail) == ("hard", "mailbox does not exist")


def test_texts_are_cut_to_what_the_service_stores() -> None:
    properties = {
        "$message": "m" * 300,
        "$flow": "f" * 300,
        "$campaign": "c" * 300,
        "URL": "https://example.com/" + "p" * 5000,
        "Bounce Type": "b" * 40,
        "Reason": "r" * 400,
    }
    item = klaviyo_item("e" * 200, properties=properties)

    (engagement,) = klaviyo.parse(klaviyo_body(item), WEBHOOK_ID)

    assert_storable(engagement)
    assert engagement.external_id == "e" * 128
    assert (engagement.message_id, engagement.flow_id) == ("m" * 128, "f" * 128)
    assert engagement.url == ("https://example.com/" + "p" * 5000)[:2000]
    assert (len(engagement.bounce_type), len(engagement.detail)) == (16, 255)


def test_unknown_topics_and_items_without_an_id_are_left_out() -> None:
    body = klaviyo_body(
        klaviyo_item("ev-1", "event:klaviyo.received_push"),
        klaviyo_item("", "event:klaviyo.opened_email"),
        {"topic": "event:klaviyo.opened_email"},
        "not an item",  # type: ignore[arg-type]
        klaviyo_item("ev-2", "event:klaviyo.clicked_email"),
    )

    assert [e.external_id for e in klaviyo.parse(body, WEBHOOK_ID)] == ["ev-2"]


def test_an_event_repeated_in_one_delivery_is_read_once() -> None:
    body = klaviyo_body(klaviyo_item("ev-1"), klaviyo_item("ev-2"), klaviyo_item("ev-1"))

    assert [e.external_id for e in klaviyo.parse(body, WEBHOOK_ID)] == ["ev-1", "ev-2"]


@pytest.mark.parametrize(
    "body", [b"", b"{", b"not json", b"[]", b'"text"', orjson.dumps({"meta": {}})]
)
def test_a_body_that_is_not_a_delivery_is_malformed(body: bytes) -> None:
    with pytest.raises((Malformed, Refused)):
        klaviyo.parse(body, WEBHOOK_ID)


def test_a_delivery_without_a_data_array_is_malformed() -> None:
    body = orjson.dumps({"data": {}, "meta": {"klaviyo_webhook_id": WEBHOOK_ID}})

    with pytest.raises(Malformed, match="data"):
        klaviyo.parse(body, WEBHOOK_ID)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # what JSON numbers orjson writes
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
FIELD = st.sampled_from(
    ["external_id", "topic", "payload", "data", "attributes", "included", "datetime",
     "timestamp", "event_properties", "relationships", "profile", "id", "type", "email"]
)  # fmt: skip


@given(
    items=st.lists(
        st.dictionaries(FIELD, JSON | st.sampled_from([t for t, _ in MAPPED]), max_size=6),
        max_size=5,
    )
)
def test_any_items_are_read_without_an_error(items: list[dict[str, Any]]) -> None:
    body = klaviyo_body(*items)

    for engagement in klaviyo.parse(body, WEBHOOK_ID):
        assert engagement.external_id
        assert engagement.provider_type in klaviyo.TOPICS
        assert_storable(engagement)


@given(document=JSON)
def test_any_json_is_read_or_refused_as_malformed(document: Any) -> None:
    with contextlib.suppress(Malformed, Refused):
        klaviyo.parse(orjson.dumps(document), WEBHOOK_ID)


@given(
    external_id=st.text(min_size=1, max_size=300).filter(lambda s: any(c >= " " for c in s)),
    email=st.text(max_size=300),
    properties=st.dictionaries(
        st.sampled_from(
            ["$message", "$flow", "$campaign", "Campaign ID", "URL", "Bounce Type", "Reason",
             "$reason", "Bounce Reason", "$email", "$phone_number"]
        ),
        st.text(max_size=3000) | st.integers(-(2**63), 2**63 - 1),
    ),
)  # fmt: skip
def test_whatever_the_values_every_text_is_storable(
    external_id: str, email: str, properties: dict[str, Any]
) -> None:
    item = klaviyo_item(external_id, email=email, properties=properties)

    (engagement,) = klaviyo.parse(klaviyo_body(item), WEBHOOK_ID)

    assert_storable(engagement)
