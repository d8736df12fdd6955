"""Klaviyo campaign sends without a sandbox: the template in Klaviyo's (Django-like) syntax and
what it refuses, the request bodies, a campaign found by name, and the limits of a send."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dispatcher.delivery.packing import estimated_size
from dispatcher.providers.base import (
    SEND_CAMPAIGN,
    CampaignSend,
    Profile,
    TemplatePart,
    TemplateVariable,
)
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo import campaigns
from dispatcher.providers.klaviyo.imports import MAX_LIST_ID_CHARS, job_body
from dispatcher.providers.klaviyo.limits import LIMITS

WHAT = "campaign 'c' body"


def var(*path: str, fallback: str | None = None) -> TemplateVariable:
    return TemplateVariable(tuple(path), fallback)


def send(**fields: Any) -> CampaignSend:
    values: dict[str, Any] = {
        "name": "cmp-1 A",
        "list_id": "LstA",
        "channel": "email",
        "subject": ("Hi ", var("first_name", fallback="there")),
        "body": ("<p>Hello ", var("first_name", fallback="there"), "</p>"),
        "send_at": None,
        "from_email": "news@shop.example",
        "from_label": "Shop",
        "reply_to": "help@shop.example",
    }
    return CampaignSend(**(values | fields))


def translated(*parts: TemplatePart) -> str:
    return campaigns.template(parts, WHAT)


# --- the template --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "written"),
    [
        (var("email"), "{{ email }}"),
        (var("first_name", fallback="FB"), '{{ first_name|default:"FB" }}'),
        (var("last_name", fallback="FB"), '{{ last_name|default:"FB" }}'),
        (var("phone", fallback="FB"), '{{ person|lookup:"phone_number"|default:"FB" }}'),
        (var("location", fallback="FB"), '{{ person|lookup:"location"|default:"FB" }}'),
        (var("loyalty_tier", fallback="FB"), '{{ person|lookup:"loyalty_tier"|default:"FB" }}'),
        (var("language", fallback="FB"), '{{ person|lookup:"language"|default:"FB" }}'),
        (var("timezone", fallback="FB"), '{{ person|lookup:"timezone"|default:"FB" }}'),
        (var("custom", "tier", fallback="FB"), '{{ person|lookup:"tier"|default:"FB" }}'),
        (var("unsubscribe_url"), '{{ person|lookup:"marketing_preferences_url" }}'),
        (var("first_name"), "{{ first_name }}"),
        (var("first_name", fallback=""), '{{ first_name|default:"" }}'),
    ],
)
def test_each_variable_as_the_contract_writes_it(variable: TemplateVariable, written: str) -> None:
    assert translated(variable) == written


@pytest.mark.parametrize(
    ("fallback", "literal"),
    [
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("ends in \\", r'"ends in \\"'),
        ('\\"', r'"\\\""'),
        ("{ } % | : ' <b>&", '"{ } % | : \' <b>&"'),
    ],
)
def test_a_fallback_is_a_string_literal_with_quotes_and_backslashes_escaped(
    fallback: str, literal: str
) -> None:
    assert translated(var("first_name", fallback=fallback)) == (
        "{{ first_name|default:" + literal + " }}"
    )


def test_a_custom_key_is_a_string_literal_too() -> None:
    assert translated(var("custom", 'a"b\\c')) == r'{{ person|lookup:"a\"b\\c" }}'


def test_text_is_copied_as_is_html_and_all() -> None:
    parts = ('<p class="x">50% off & more</p>\n', var("email"), " {single} braces }")
    assert translated(*parts) == '<p class="x">50% off & more</p>\n{{ email }} {single} braces }'


@pytest.mark.parametrize("delimiter", ["{{", "{%", "{#"])
def test_text_opening_a_tag_is_refused(delimiter: str) -> None:
    with pytest.raises(PermanentProviderError) as refused:
        translated("before ", f"a {delimiter} b", var("email"))

    assert refused.value.code == "template"
    assert repr(delimiter) in str(refused.value) and WHAT in str(refused.value)


@pytest.mark.parametrize("closer", ["}}", "%}"])
def test_text_closing_no_tag_is_copied_as_it_is(closer: str) -> None:
    """Minified CSS in an email's HTML is full of `}}`: outside a tag Django copies it."""
    assert translated(f"a{{b{{c:d}}{closer}", var("email")) == f"a{{b{{c:d}}{closer}{{{{ email }}}}"


def test_a_delimiter_split_between_two_texts_is_refused() -> None:
    with pytest.raises(PermanentProviderError, match=re.escape("'{{'")):
        translated("a {", "{ b")


def test_a_brace_right_before_a_variable_is_refused_and_after_one_is_not() -> None:
    with pytest.raises(PermanentProviderError, match="right before a variable"):
        translated("price {", var("email"))
    assert translated(var("email"), "} done") == "{{ email }}} done"


@pytest.mark.parametrize("fallback", ["a }} b", "{{", "{% if %}", "{# c", "two\nlines", "cr\r"])
def test_a_fallback_that_would_break_its_tag_is_refused(fallback: str) -> None:
    with pytest.raises(PermanentProviderError) as refused:
        translated(var("first_name", fallback=fallback))

    assert refused.value.code == "template"


def test_a_custom_key_that_would_break_its_tag_is_refused() -> None:
    with pytest.raises(PermanentProviderError, match="property name"):
        translated(var("custom", "x}}y"))


@pytest.mark.parametrize("path", [("nickname",), ("custom",), ("custom", ""), ("email", "x")])
def test_an_unknown_variable_is_refused(path: tuple[str, ...]) -> None:
    with pytest.raises(PermanentProviderError, match="no profile value"):
        translated(TemplateVariable(path, None))


def test_content_per_channel() -> None:
    email = campaigns.content(send())
    sms = campaigns.content(send(channel="sms", subject=(), body=("Hi ", var("email"))))
    push = campaigns.content(send(channel="push", subject=("Title",), body=("Body",)))

    assert email == campaigns.Content(
        "email",
        'Hi {{ first_name|default:"there" }}',
        '<p>Hello {{ first_name|default:"there" }}</p>',
    )
    assert sms == campaigns.Content("sms", "", "Hi {{ email }}")
    assert push == campaigns.Content("mobile_push", "Title", "Body")


def test_a_refused_subject_names_the_subject() -> None:
    with pytest.raises(PermanentProviderError, match="'cmp-1 A' subject"):
        campaigns.content(send(subject=("{{ raw }}",)))


def test_a_channel_without_campaigns_and_a_blank_name_are_refused() -> None:
    with pytest.raises(PermanentProviderError) as unknown:
        campaigns.content(send(channel="whatsapp"))
    with pytest.raises(PermanentProviderError) as unnamed:
        campaigns.content(send(name="  "))

    assert (unknown.value.code, unnamed.value.code) == ("unsupported", "invalid")


# --- the bodies ----------------------------------------------------------------------------


def test_an_email_campaign_body_sends_at_once_with_its_sender_and_subject() -> None:
    email = send()
    assert campaigns.create_body(email, campaigns.content(email)) == {
        "data": {
            "type": "campaign",
            "attributes": {
                "name": "cmp-1 A",
                "audiences": {"included": ["LstA"]},
                "send_strategy": {"method": "immediate"},
                "campaign-messages": {
                    "data": [
                        {
                            "type": "campaign-message",
                            "attributes": {
                                "definition": {
                                    "channel": "email",
                                    "label": "cmp-1 A",
                                    "content": {
                                        "subject": 'Hi {{ first_name|default:"there" }}',
                                        "from_email": "news@shop.example",
                                        "from_label": "Shop",
                                        "reply_to_email": "help@shop.example",
                                    },
                                }
                            },
                        }
                    ]
                },
            },
        }
    }


def test_a_send_at_is_a_static_strategy_in_utc_not_local_time() -> None:
    later = datetime(2027, 1, 15, 9, 30, tzinfo=timezone(timedelta(hours=2)))

    assert campaigns.send_strategy(send(send_at=later)) == {
        "method": "static",
        "datetime": "2027-01-15T09:30:00+02:00",
        "options": {"is_local": False},
    }
    naive = campaigns.send_strategy(send(send_at=datetime(2027, 1, 15, 7, 30)))
    assert naive["datetime"] == "2027-01-15T07:30:00+00:00"


def test_sms_and_push_messages_carry_their_text_in_the_definition() -> None:
    sms = send(channel="sms", subject=(), body=("Sale ", var("first_name", fallback="you")))
    push = send(channel="push", subject=("Sale",), body=("Now",))

    assert campaigns.message_definition(sms, campaigns.content(sms)) == {
        "channel": "sms",
        "content": {"body": 'Sale {{ first_name|default:"you" }}'},
    }
    assert campaigns.message_definition(push, campaigns.content(push)) == {
        "channel": "mobile_push",
        "content": {"title": "Sale", "body": "Now"},
    }


def test_the_template_assignment_and_send_job_bodies() -> None:
    assert campaigns.template_body("cmp-1 A", "<p>x</p>") == {
        "data": {
            "type": "template",
            "attributes": {"name": "cmp-1 A", "editor_type": "CODE", "html": "<p>x</p>"},
        }
    }
    assert campaigns.assign_body("Msg1", "Tpl1") == {
        "data": {
            "type": "campaign-message",
            "id": "Msg1",
            "relationships": {"template": {"data": {"type": "template", "id": "Tpl1"}}},
        }
    }
    assert campaigns.send_job_body("Cmp1") == {"data": {"type": "campaign-send-job", "id": "Cmp1"}}
    assert campaigns.template_path("a/b") == "/api/templates/a%2Fb"


# --- found by name -------------------------------------------------------------------------


def test_the_query_filters_on_the_channel_and_the_name() -> None:
    assert campaigns.find_query("email", "cmp-1 A") == {
        "filter": "and(equals(messages.channel,'email'),contains(name,\"cmp-1 A\"))"
    }


def test_a_name_with_quotes_is_looked_for_by_its_longest_plain_run() -> None:
    query = campaigns.find_query("sms", 'Sale "big" o\'clock \\ weekend-2027')
    assert query == {
        "filter": "and(equals(messages.channel,'sms'),contains(name,\" weekend-2027\"))"
    }
    assert campaigns.find_query("sms", '""') == {"filter": "equals(messages.channel,'sms')"}


def resource(identifier: str, name: str, status: str, created: str = "", **extra: Any) -> Any:
    attributes = {"name": name, "status": status, "created_at": created}
    return {"type": "campaign", "id": identifier, "attributes": attributes, **extra}


def test_only_the_exact_name_is_found_and_one_already_sent_wins() -> None:
    messages = {"campaign-messages": {"data": [{"type": "campaign-message", "id": "M2"}]}}
    page = {
        "data": [
            resource("C1", "cmp-1 A", "Draft", "2027-01-01T00:00:00+00:00"),
            resource("C2", "cmp-1 A", "Sent", "2027-01-02T00:00:00+00:00", relationships=messages),
            resource("C3", "cmp-1 AB", "Draft"),
            {"type": "campaign", "id": "C4", "attributes": {"name": "other"}},
        ]
    }
    found = campaigns.named(page, "cmp-1 A")

    assert [each.id for each in found] == ["C1", "C2"]
    chosen = campaigns.chosen(found)
    assert chosen is not None and (chosen.id, chosen.draft, chosen.message_ids) == (
        "C2",
        False,
        ("M2",),
    )
    drafts = [campaigns.campaign(resource(i, "n", "Draft", c)) for i, c in [("B", "2"), ("A", "1")]]
    assert campaigns.chosen(drafts) == drafts[1], "of drafts, the oldest"
    assert campaigns.chosen([]) is None


@pytest.mark.parametrize(
    "document",
    [{"data": {"id": "C1"}}, {"data": [resource("C1", "n", "Draft")]}, [], {"data": "x"}],
)
def test_an_answer_that_is_not_a_campaign_is_a_value_error(document: Any) -> None:
    with pytest.raises(ValueError):
        campaigns.campaign_document(document)


def test_a_page_that_is_not_a_collection_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        campaigns.named({"data": {}}, "n")


# --- limits and the import into a list ----------------------------------------------------


def test_a_send_is_paced_per_request_in_each_endpoints_bucket() -> None:
    assert SEND_CAMPAIGN in LIMITS.paces_requests
    windows = {
        bucket.name: [(w.calls, w.seconds) for w in bucket.windows]
        for bucket in LIMITS.rates[SEND_CAMPAIGN]
    }
    campaign_rate, template_rate = [(10, 1.0), (150, 60.0)], [(75, 1.0), (750, 60.0)]
    assert windows == {
        "campaigns": campaign_rate,
        "campaigns/{id}": campaign_rate,
        "campaigns (create)": campaign_rate,
        "campaign-message-assign-template": campaign_rate,
        "campaign-send-jobs": campaign_rate,
        "templates (create)": template_rate,
        "templates/{id} (delete)": template_rate,
    }
    assert LIMITS.campaign_channels == {"email", "sms", "push"}


def test_an_import_into_a_list_names_it_and_its_wrapping_is_counted() -> None:
    profiles = [Profile(email=f"p{i}@example.com", first_name="Ada") for i in range(3)]
    into, _ = job_body(profiles, "LstA")
    limits = LIMITS.import_profiles
    assert limits is not None

    assert b'"relationships":{"lists":{"data":[{"type":"list","id":"LstA"}]}}' in into
    longest, _ = job_body(profiles, "x" * MAX_LIST_ID_CHARS)
    assert len(longest) <= limits.wrapping_bytes + sum(estimated_size(p) for p in profiles)


def test_utc_is_kept_as_given() -> None:
    when = datetime(2027, 1, 15, 7, 30, tzinfo=UTC)
    assert campaigns.send_strategy(send(send_at=when))["datetime"] == "2027-01-15T07:30:00+00:00"
