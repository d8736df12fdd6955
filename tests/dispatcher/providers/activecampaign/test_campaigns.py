"""ActiveCampaign campaign sends without a sandbox: the template in personalization tags and
conditional content and what it refuses, the request bodies, a campaign found by name, the
import into a campaign's list, and the limits of a send."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from dispatcher.providers.activecampaign import bodies, campaigns
from dispatcher.providers.activecampaign.limits import (
    ACCOUNT,
    IMPORT_WRAPPING_BYTES,
    LIMITS,
    MAX_CONTACTS_PER_IMPORT,
    MAX_LIST_ID_DIGITS,
)
from dispatcher.providers.base import (
    SEND_CAMPAIGN,
    CampaignSend,
    Profile,
    TemplatePart,
    TemplateVariable,
)
from dispatcher.providers.errors import PermanentProviderError

WHAT = "campaign 'c' body"
PERSTAGS = {
    "location": "LOCATION",
    "loyalty_tier": "LOYALTY_TIER",
    "language": "LANGUAGE",
    "timezone": "TIMEZONE",
    "tier": "TIER",
    "marketing_preferences_url": "MARKETING_PREFERENCES_URL",
}


def var(*path: str, fallback: str | None = None) -> TemplateVariable:
    return TemplateVariable(tuple(path), fallback)


def translated(*parts: TemplatePart, known: frozenset[str] = frozenset()) -> str:
    return campaigns.template(parts, PERSTAGS, known, WHAT)


def send(**fields: Any) -> CampaignSend:
    values: dict[str, Any] = {
        "name": "cmp-1 A",
        "list_id": "7",
        "channel": "email",
        "subject": ("Hi ", var("first_name", fallback="there")),
        "body": ("<p>Hello</p>",),
        "send_at": None,
        "from_email": "news@shop.example",
        "from_label": "Shop",
        "reply_to": "help@shop.example",
    }
    return CampaignSend(**(values | fields))


# --- the template --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "written"),
    [
        (var("email"), "%EMAIL%"),
        (var("first_name"), "%FIRSTNAME%"),
        (var("last_name"), "%LASTNAME%"),
        (var("phone"), "%PHONE%"),
        (var("location"), "%LOCATION%"),
        (var("loyalty_tier"), "%LOYALTY_TIER%"),
        (var("language"), "%LANGUAGE%"),
        (var("timezone"), "%TIMEZONE%"),
        (var("custom", "tier"), "%TIER%"),
        (var("unsubscribe_url"), "%MARKETING_PREFERENCES_URL%"),
        (var("first_name", fallback="FB"), "%IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%FB%/IF%"),
        (var("custom", "tier", fallback="FB"), "%IF $TIER != ''%%TIER%%ELSE%FB%/IF%"),
        (var("last_name", fallback=""), "%IF $LASTNAME != ''%%LASTNAME%%ELSE%%/IF%"),
    ],
)
def test_each_variable_as_the_contract_writes_it(variable: TemplateVariable, written: str) -> None:
    assert translated(variable) == written


@pytest.mark.parametrize("fallback", ['say "hi"', "back\\slash", "it's <b>&amp;</b>", "50% off"])
def test_a_fallback_is_written_as_is(fallback: str) -> None:
    assert translated(var("first_name", fallback=fallback)) == (
        f"%IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%{fallback}%/IF%"
    )


def test_text_is_copied_as_is_percent_signs_of_no_tag_and_all() -> None:
    parts = ("<p>50%OFF% & 100% ", var("email"), " %tier% %UNKNOWN%</p>")
    assert translated(*parts) == "<p>50%OFF% & 100% %EMAIL% %tier% %UNKNOWN%</p>"


@pytest.mark.parametrize("marker", ["%IF", "%ELSE%", "%/IF%"])
def test_text_or_a_fallback_holding_a_conditional_is_refused(marker: str) -> None:
    with pytest.raises(PermanentProviderError) as in_text:
        translated(f"a {marker} b")
    with pytest.raises(PermanentProviderError) as in_fallback:
        translated(var("email", fallback=f"a {marker} b"))

    assert in_text.value.code == in_fallback.value.code == "template"
    assert "its text" in str(in_text.value) and "a fallback" in str(in_fallback.value)
    assert WHAT in str(in_text.value)


@pytest.mark.parametrize("text", ["write to %EMAIL%", "%TIER% members", "%OWN_TAG%"])
def test_text_that_reads_as_a_known_tag_is_refused(text: str) -> None:
    with pytest.raises(PermanentProviderError, match="its text holds '%"):
        translated(text, known=frozenset({"OWN_TAG"}))


@pytest.mark.parametrize(
    "parts",
    [
        ("see %EMAI", "L% now"),  # a tag split between two texts
        ("mail: %EMAIL", var("first_name")),  # a variable's % closes a tag in the text
        (var("first_name"), "ELSE% x"),  # a variable's % opens a conditional in the text
        (var("first_name", fallback="x"), "/IF% y"),
        ("%I", "F x"),
    ],
)
def test_a_tag_or_conditional_made_with_a_neighbour_is_refused(
    parts: tuple[TemplatePart, ...],
) -> None:
    with pytest.raises(PermanentProviderError, match="its text holds"):
        translated(*parts)


@pytest.mark.parametrize("fallback", ["x%/IF", "ELSE%x", "EMAIL", "/IF%"])
def test_a_fallback_reading_as_a_tag_between_its_percent_signs_is_refused(fallback: str) -> None:
    with pytest.raises(PermanentProviderError, match="a fallback holds"):
        translated(var("first_name", fallback=fallback))


@pytest.mark.parametrize("path", [("nickname",), ("custom",), ("custom", ""), ("email", "x")])
def test_an_unknown_variable_is_refused(path: tuple[str, ...]) -> None:
    with pytest.raises(PermanentProviderError, match="no contact value"):
        translated(TemplateVariable(path, None))


def test_the_fields_a_template_names_each_once() -> None:
    parts = (var("email"), var("custom", "tier"), var("unsubscribe_url"), var("custom", "tier"))
    assert campaigns.field_titles(parts, WHAT) == ["tier", "marketing_preferences_url"]


@pytest.mark.parametrize("channel", ["sms", "push"])
def test_only_email_campaigns(channel: str) -> None:
    assert LIMITS.campaign_channels == {"email"}
    with pytest.raises(PermanentProviderError) as refused:
        campaigns.check_send(send(channel=channel))
    assert refused.value.code == "unsupported"


def test_a_blank_name_is_refused() -> None:
    with pytest.raises(PermanentProviderError, match="needs a name"):
        campaigns.check_send(send(name=" "))


# --- the bodies ----------------------------------------------------------------------------


def test_the_message_campaign_and_edit_bodies() -> None:
    assert campaigns.message_body(send(), "Hi", "<p>x</p>") == {
        "message": {
            "fromname": "Shop",
            "fromemail": "news@shop.example",
            "reply2": "help@shop.example",
            "subject": "Hi",
            "html": "<p>x</p>",
        }
    }
    assert campaigns.campaign_body("cmp-1 A") == {
        "name": "cmp-1 A",
        "type": "single",
        "canSplitContent": False,
    }
    assert campaigns.edit_body(send(), "31") == {"listIds": [7], "messageId": 31, "status": 1}
    assert campaigns.edit_path("149") == "/campaigns/149/edit"


def test_a_send_at_is_the_scheduled_date_in_utc() -> None:
    later = datetime(2027, 1, 15, 9, 30, 5, tzinfo=timezone(timedelta(hours=2)))

    body = campaigns.edit_body(send(send_at=later), "31")

    assert body["scheduledDate"] == "2027-01-15 07:30:05"
    assert campaigns.scheduled_date(datetime(2027, 1, 15, 7, 30)) == "2027-01-15 07:30:00"


def test_only_the_exact_name_is_found_and_one_past_draft_wins() -> None:
    rows: list[dict[str, Any]] = [
        {"id": "12", "name": "cmp-1 A", "status": "0"},
        {"id": "9", "name": "cmp-1 A", "status": 0},
        {"id": "30", "name": "cmp-1 A", "status": "5"},
        {"id": "31", "name": "cmp-1 AB", "status": "0"},
        {"name": "cmp-1 A", "status": "0"},
    ]
    found = campaigns.named(rows, "cmp-1 A")

    assert [each.id for each in found] == ["12", "9", "30"]
    assert campaigns.chosen(found) == campaigns.Campaign("30", "cmp-1 A", "5")
    assert campaigns.chosen(found[:2]) == campaigns.Campaign("9", "cmp-1 A", "0"), "the oldest"
    assert campaigns.chosen([]) is None


# --- limits and the import into a list ----------------------------------------------------


def test_a_send_draws_from_the_account_each_request_paced() -> None:
    assert LIMITS.rates[SEND_CAMPAIGN] == (ACCOUNT,)
    assert SEND_CAMPAIGN in LIMITS.paces_requests


def test_an_imported_contact_is_subscribed_to_the_campaigns_list() -> None:
    profile = Profile("ada@example.com", first_name="Ada")

    assert bodies.import_contact(profile, {}, "7") == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "subscribe": [{"listid": 7}],
    }
    assert "subscribe" not in bodies.import_contact(profile, {})
    assert bodies.numeric_id("9" * 20) == "9" * 20, "too large for a JSON number: as text"
    assert bodies.numeric_id("٣") == "٣", "digits, but not ASCII ones"


def test_the_lists_of_a_full_import_fit_in_its_counted_wrapping() -> None:
    profiles = [Profile(f"p{i}@example.com") for i in range(MAX_CONTACTS_PER_IMPORT)]
    longest = "9" * MAX_LIST_ID_DIGITS

    def size(list_id: str | None) -> int:
        contacts = [bodies.import_contact(p, {}, list_id) for p in profiles]
        return len(orjson.dumps({"contacts": contacts, "exclude_automations": True}))

    contacts_alone = size(None) - len(b'{"contacts":[],"exclude_automations":true}')
    assert size(longest) <= IMPORT_WRAPPING_BYTES + contacts_alone
