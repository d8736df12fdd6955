"""Campaign content: the template subset, fallbacks (Property 29), the unsubscribe link
in every email (Property 32) and opt-out wording in every SMS (Property 22)."""

from __future__ import annotations

import html
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liquid import Environment
from liquid.exceptions import LiquidError

from service.campaigns.content import (
    CONTACT_FIELDS,
    MAX_SUBJECT,
    SMS_OPT_OUT,
    Channel,
    Content,
    parse_content,
    render,
)
from service.errors import Violations

# Text a template may hold around its variables: no Liquid delimiters (and no lone
# carriage return, which the Liquid lexer reads as a line break).
plain = st.text(
    st.characters(exclude_characters="{}%\x00\r", exclude_categories=["Cs"]), max_size=30
)
fallbacks = st.text(
    st.characters(exclude_characters="{}%\"'\\\x00\r", exclude_categories=["Cs"]), max_size=12
)
fields = st.sampled_from(sorted(CONTACT_FIELDS))


def _liquid_reads_as_a_name(key: str) -> bool:
    """Liquid takes some words for its own (`as`, `for`, `and`, `true`, `limit`, ...):
    `custom.as` is not a valid template, so no message can show such a property."""
    try:
        Environment().from_string(f'{{{{ custom.{key} | default: "" }}}}')
    except LiquidError:
        return False
    return True


custom_keys = (
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
    .filter(lambda k: k not in {"size", "first", "last"})
    .filter(_liquid_reads_as_a_name)
)
variables = st.one_of(
    st.tuples(fields.map(lambda f: (f,)), fallbacks),
    st.tuples(custom_keys.map(lambda k: ("custom", k)), fallbacks),
)
values = st.one_of(st.none(), st.just(""), plain.filter(bool))


def _source(parts: list[Any]) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            path, fallback = part
            out.append(f'{{{{ {".".join(path)} | default: "{fallback}" }}}}')
    return "".join(out)


def _expected(parts: list[Any], person: dict[str, Any]) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        path, fallback = part
        value = person.get(path[0]) if len(path) == 1 else person["custom"].get(path[1])
        out.append(value if value else fallback)
    return "".join(out)


def _parsed(channel: Channel, subject: str, body: str) -> Content:
    v = Violations()
    content = parse_content(v, "content.", channel, subject, body)
    assert content is not None and not v, v
    return content


# **Feature: marketing-automation, Property 29: Personalization fallback**
@settings(max_examples=200)
@given(
    parts=st.lists(st.one_of(plain, variables), min_size=1, max_size=8),
    person=st.fixed_dictionaries({f: values for f in sorted(CONTACT_FIELDS)}),
    custom=st.dictionaries(custom_keys, values, max_size=4),
)
def test_property_29_a_missing_value_shows_its_fallback(parts, person, custom) -> None:
    person = {**person, "custom": custom}
    source = _source(parts)
    titled = bool(source.strip()) and len(source) <= MAX_SUBJECT
    content = _parsed(Channel.PUSH, source if titled else "title", source + " body")
    got = render(content, person, "https://prefs.example/p/t")
    assert got.body == _expected(parts, person) + " body"
    assert got.subject == (_expected(parts, person) if titled else "title")


# **Feature: marketing-automation, Property 32: Unsubscribe link in emails**
@settings(max_examples=200)
@given(
    before=st.lists(st.one_of(plain, variables), max_size=4),
    after=st.lists(st.one_of(plain, variables), max_size=4),
    link=st.from_regex(
        r"https://[a-z]{1,10}\.example/preferences/[A-Za-z0-9._&=?-]{1,40}", fullmatch=True
    ),
    person=st.fixed_dictionaries({f: values for f in sorted(CONTACT_FIELDS)}),
)
def test_property_32_every_email_carries_its_recipients_unsubscribe_link(
    before, after, link, person
) -> None:
    body = f'{_source(before)}<a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a>{_source(after)}'
    content = _parsed(Channel.EMAIL, "Hello", body)
    rendered = render(content, {**person, "custom": {}}, link)
    assert f'href="{html.escape(link)}"' in rendered.body
    without = _source(before) + _source(after) or "Hello"
    v = Violations()
    assert parse_content(v, "content.", Channel.EMAIL, "Hello", without) is None
    assert "UNSUBSCRIBE_LINK_MISSING" in str(v)


# **Feature: marketing-automation, Property 22: SMS opt-out link included**
@settings(max_examples=200)
@given(
    parts=st.lists(st.one_of(plain, variables), max_size=6),
    person=st.fixed_dictionaries({f: values for f in sorted(CONTACT_FIELDS)}),
)
def test_property_22_every_sms_says_how_to_opt_out(parts, person) -> None:
    body = _source(parts) + "Sale today"
    content = _parsed(Channel.SMS, "", body)
    rendered = render(content, {**person, "custom": {}}, "https://prefs.example/p/t")
    assert "STOP" in rendered.body.upper().split() or SMS_OPT_OUT in rendered.body
    again = _parsed(Channel.SMS, "", "Sale today. Reply STOP to end.")
    assert again.body.source == "Sale today. Reply STOP to end.", "wording is not added twice"
    loose = _parsed(Channel.SMS, "", "Non-stop deals: shop.example/stop")
    assert loose.body.source.endswith(SMS_OPT_OUT), "a word 'stop' is no instruction"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ first_name }} {{ unsubscribe_url }}", "FALLBACK_REQUIRED"),
        ("{% if first_name %}x{% endif %}{{ unsubscribe_url }}", "UNSUPPORTED_TEMPLATE"),
        ("{{ first_name | upcase }}{{ unsubscribe_url }}", "UNSUPPORTED_TEMPLATE"),
        ('{{ password | default: "x" }}{{ unsubscribe_url }}', "UNKNOWN_VARIABLE"),
        ('{{ custom.size | default: "M" }}{{ unsubscribe_url }}', "UNKNOWN_VARIABLE"),
        ("{{ first_name | default: 3 }}{{ unsubscribe_url }}", "INVALID_FALLBACK"),
        ('{{ first_name | default: "{{" }}{{ unsubscribe_url }}', "INVALID_FALLBACK"),
        ("{{ unsubscribe_url", "INVALID_TEMPLATE"),
        ("Hello", "UNSUBSCRIBE_LINK_MISSING"),
        ("Your page: {{ unsubscribe_url }}", "UNSUBSCRIBE_LINK_MISSING"),
        ('<!-- <a href="{{ unsubscribe_url }}"> -->', "UNSUBSCRIBE_LINK_MISSING"),
        ("", "REQUIRED"),
    ],
)
def test_bad_email_content_is_refused_with_the_reason(body: str, reason: str) -> None:
    v = Violations()
    assert parse_content(v, "content.", Channel.EMAIL, "Subject", body) is None
    assert reason in str(v)


def test_values_are_escaped_in_an_email_body_and_not_in_its_subject() -> None:
    content = _parsed(
        Channel.EMAIL,
        'Hi {{ first_name | default: "there" }}',
        '<p>{{ first_name | default: "friend" }}</p><a href="{{ unsubscribe_url }}">x</a>',
    )
    got = render(content, {"first_name": "<b>Ada</b>"}, "https://p.example/t?a=1&b=2")
    assert got.subject == "Hi <b>Ada</b>"
    assert "<p>&lt;b&gt;Ada&lt;/b&gt;</p>" in got.body
    assert 'href="https://p.example/t?a=1&amp;b=2"' in got.body
