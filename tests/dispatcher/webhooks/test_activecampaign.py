"""ActiveCampaign's webhooks: the URL's secret, and what is read from a form post."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_datetime

from dispatcher.webhooks import activecampaign
from tests.dispatcher.webhooks.helpers import AC_SECRET, ac_form, assert_storable

MAPPED = [
    ("open", bus_pb2.ENGAGEMENT_TYPE_OPENED),
    ("click", bus_pb2.ENGAGEMENT_TYPE_CLICKED),
    ("bounce", bus_pb2.ENGAGEMENT_TYPE_BOUNCED),
    ("unsubscribe", bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED),
    ("sms_unsub", bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED),
    ("sent", bus_pb2.ENGAGEMENT_TYPE_SENT),
]
WHEN = datetime(2026, 11, 2, 9, 29, tzinfo=UTC)


def parse(body: bytes) -> bus_pb2.Engagement:
    engagement = activecampaign.parse(body)
    assert engagement is not None
    return engagement


def test_only_our_secret_matches() -> None:
    assert activecampaign.secret_matches(AC_SECRET, AC_SECRET)
    assert not activecampaign.secret_matches(AC_SECRET + "x", AC_SECRET)
    assert not activecampaign.secret_matches("", AC_SECRET)


def test_no_secret_matches_when_ours_is_not_set() -> None:
    assert not activecampaign.secret_matches("", "")
    assert not activecampaign.secret_matches("anything", "")


@pytest.mark.parametrize(("event_type", "kind"), MAPPED)
def test_each_type_we_take_is_its_engagement_type(event_type: str, kind: int) -> None:
    body = ac_form(event_type)

    engagement = parse(body)

    assert engagement.type == kind
    assert engagement.provider == "activecampaign"
    assert engagement.provider_type == event_type
    assert engagement.external_id == hashlib.sha256(body).hexdigest()
    assert (engagement.email, engagement.phone) == ("ada@example.com", "+15005550006")
    assert (engagement.campaign_id, engagement.message_id) == ("7", "9")
    assert to_datetime(engagement.occur_time) == WHEN


@pytest.mark.parametrize(
    "event_type", ["subscribe", "update", "reply", "forward", "deal_add", "sms_sent", "", "OPEN"]
)
def test_other_types_are_ignored(event_type: str) -> None:
    assert activecampaign.parse(ac_form(event_type)) is None


def test_a_form_without_a_type_is_ignored() -> None:
    assert activecampaign.parse(ac_form(drop=("type",))) is None


def test_a_click_names_its_link() -> None:
    engagement = parse(ac_form("click", link__url="https://example.com/offer?a=1&b=2"))

    assert engagement.url == "https://example.com/offer?a=1&b=2"


def test_a_bounce_names_its_type_and_description() -> None:
    body = ac_form("bounce", bounce__type="Hard", bounce__description="mailbox unavailable")

    engagement = parse(body)

    assert (engagement.bounce_type, engagement.detail) == ("hard", "mailbox unavailable")


def test_an_unsubscribe_names_its_reason() -> None:
    assert parse(ac_form("unsubscribe", unsubscribe__reason="too many")).detail == "too many"


def test_an_sms_unsubscribe_is_the_phone_that_sent_stop() -> None:
    engagement = parse(ac_form("sms_unsub", sms__phone="+15005550001"))

    assert engagement.phone == "+15005550001"


def test_a_campaigns_message_is_the_campaign_and_no_flow() -> None:
    engagement = parse(ac_form("open", campaign__type="single"))

    assert (engagement.campaign_id, engagement.flow_id, engagement.message_id) == ("7", "", "9")


def test_an_automations_message_is_the_flow_and_no_campaign() -> None:
    body = ac_form("sent", campaign__type="automation", automation__id="12")

    engagement = parse(body)

    assert (engagement.flow_id, engagement.campaign_id, engagement.message_id) == ("12", "", "9")


def test_an_automation_id_alone_makes_it_an_automations_message() -> None:
    engagement = parse(ac_form("click", automation__id="12", drop=("campaign[message][id]",)))

    assert (engagement.flow_id, engagement.campaign_id) == ("12", "")
    assert engagement.message_id == ""


def test_an_automations_message_without_its_automation_id_names_neither() -> None:
    engagement = parse(ac_form("open", campaign__type="Automation"))

    assert (engagement.flow_id, engagement.campaign_id) == ("", "")


def test_the_message_id_may_come_as_message_id() -> None:
    body = ac_form("open", message__id="11", drop=("campaign[message][id]",))

    assert parse(body).message_id == "11"


@pytest.mark.parametrize("initiated_from", ["api", "API", " api "])
@pytest.mark.parametrize("event_type", [t for t, _ in MAPPED])
def test_what_our_own_api_calls_did_is_ignored(event_type: str, initiated_from: str) -> None:
    assert activecampaign.parse(ac_form(event_type, initiated_from=initiated_from)) is None


@pytest.mark.parametrize("initiated_from", ["public", "admin", "system", ""])
def test_what_the_person_a_user_or_activecampaign_did_is_taken(initiated_from: str) -> None:
    assert parse(ac_form("unsubscribe", initiated_from=initiated_from)).type == (
        bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED
    )


@pytest.mark.parametrize(
    "date_time",
    [
        "2026-11-02T09:29:00Z",
        "2026-11-02T09:29:00+00:00",
        "2026-11-02T04:29:00-05:00",
        "2026-11-02 09:29:00",  # no offset: UTC
        "2026-11-02T09:29:00",
    ],
)
def test_the_time_is_read_leniently(date_time: str) -> None:
    assert to_datetime(parse(ac_form(date_time=date_time)).occur_time) == WHEN


@pytest.mark.parametrize("date_time", ["", "yesterday", "02/11/2026 09:29"])
def test_an_unreadable_time_is_left_out(date_time: str) -> None:
    assert not parse(ac_form(date_time=date_time)).HasField("occur_time")


def test_a_form_missing_parts_is_reported_with_what_it_has() -> None:
    body = b"type=open"

    engagement = parse(body)

    assert engagement.external_id == hashlib.sha256(body).hexdigest()
    assert engagement.email == engagement.campaign_id == ""
    assert not engagement.HasField("occur_time")


def test_the_same_bytes_are_the_same_engagement_and_others_are_not() -> None:
    body = ac_form("open")

    assert parse(body).external_id == parse(bytes(body)).external_id
    assert parse(body).external_id != parse(ac_form("open", contact__id="43")).external_id


@given(body=st.binary(max_size=2000))
def test_any_bytes_are_read_without_an_error(body: bytes) -> None:
    engagement = activecampaign.parse(body)

    assert engagement is None or engagement.provider_type in activecampaign.TYPES


@given(
    event_type=st.sampled_from([t for t, _ in MAPPED]),
    values=st.dictionaries(
        st.sampled_from(
            ["contact__email", "contact__phone", "campaign__id", "link__url", "bounce__type",
             "bounce__description", "unsubscribe__reason", "sms__phone", "date_time"]
        ),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=40),  # what UTF-8 holds
    ),
)  # fmt: skip
def test_any_values_are_read_as_they_are(event_type: str, values: dict[str, str]) -> None:
    engagement = parse(ac_form(event_type, extra=values))

    if "contact__email" in values:
        assert engagement.email == _printable(values["contact__email"])
    if "link__url" in values:
        assert engagement.url == _printable(values["link__url"])


def _printable(value: str) -> str:
    """`value` as the receiver keeps it: without C0 control characters, a tab or
    a line break read as a space."""
    return "".join(" " if c in "\t\n\v\f\r" else c for c in value if c >= " " or c in "\t\n\v\f\r")


def test_nul_and_other_control_characters_are_left_out_of_every_text() -> None:
    body = ac_form(
        "bounce",
        contact__email="ada\x00@example.com",
        contact__phone="+1500\x005550006",
        campaign__id="7\x00",
        campaign__message__id="\x009",
        bounce__type="ha\x00rd",
        bounce__description="mailbox\x00unavailable\x1b[0m",
    )

    engagement = parse(body)

    assert b"%00" in body
    assert_storable(engagement)
    assert (engagement.email, engagement.phone) == ("ada@example.com", "+15005550006")
    assert (engagement.campaign_id, engagement.message_id) == ("7", "9")
    assert (engagement.bounce_type, engagement.detail) == ("hard", "mailboxunavailable[0m")


def test_a_line_break_or_tab_in_a_text_is_a_space() -> None:
    engagement = parse(ac_form("unsubscribe", unsubscribe__reason="too\r\nmany\temails"))

    assert engagement.detail == "too  many emails"


def test_a_field_of_nothing_but_control_characters_is_empty_and_the_next_name_is_read() -> None:
    engagement = parse(ac_form("sms_unsub", sms__phone="\x00\x00", contact__phone="+15005550001"))

    assert engagement.phone == "+15005550001"


def test_texts_are_cut_to_what_the_service_stores() -> None:
    body = ac_form(
        "click",
        campaign__id="c" * 300,
        campaign__message__id="m" * 300,
        link__url="https://example.com/" + "p" * 5000,
        bounce__type="x" * 40,
        unsubscribe__reason="r" * 400,
    )

    engagement = parse(body)

    assert_storable(engagement)
    assert (engagement.campaign_id, engagement.message_id) == ("c" * 128, "m" * 128)
    assert engagement.url == ("https://example.com/" + "p" * 5000)[:2000]
    assert len(engagement.bounce_type) == 16 and len(engagement.detail) == 255


@given(
    event_type=st.sampled_from([t for t, _ in MAPPED]),
    values=st.dictionaries(
        st.sampled_from(
            ["contact__email", "contact__phone", "campaign__id", "campaign__message__id",
             "automation__id", "link__url", "bounce__type", "bounce__description",
             "unsubscribe__reason", "sms__phone"]
        ),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
    ),
)  # fmt: skip
def test_whatever_the_values_every_text_is_storable(
    event_type: str, values: dict[str, str]
) -> None:
    assert_storable(parse(ac_form(event_type, extra=values)))
