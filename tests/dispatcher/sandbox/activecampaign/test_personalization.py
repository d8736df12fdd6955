"""ActiveCampaign's personalization tags as the sandbox renders a campaign: %TAG% for the
tags the account knows (anything else stays text), the dispatcher's conditional with a
fallback, values (and fallbacks) HTML-escaped in an email's HTML only."""

from __future__ import annotations

import pytest

from dispatcher.sandbox.activecampaign.personalization import (
    STANDARD_TAGS,
    Slots,
    compile_template,
)

KNOWN = frozenset({*STANDARD_TAGS, "TIER", "MARKETING_PREFERENCES_URL"})


def render(text: str, escape: bool = True, **values: str | None) -> str:
    slots = Slots(KNOWN)
    template = compile_template(text, slots, escape=escape)
    return template.render(tuple(values.get(name) for name in slots.names))


def test_known_tags_take_the_contacts_values() -> None:
    rendered = render(
        "%FIRSTNAME% %LASTNAME% <%EMAIL%> %PHONE% %TIER%",
        FIRSTNAME="Ada",
        LASTNAME="Lovelace",
        EMAIL="ada@example.com",
        PHONE="+15005550006",
        TIER="gold",
    )

    assert rendered == "Ada Lovelace <ada@example.com> +15005550006 gold"


def test_a_known_tag_without_a_value_renders_empty() -> None:
    assert render("Hi %FIRSTNAME%!") == "Hi !"


@pytest.mark.parametrize(
    "text",
    ["50% off", "50%OFF% today", "100%", "%", "%%", "%firstname%", "%IF", "% EMAIL %"],
)
def test_percent_signs_that_are_no_known_tag_stay_as_written(text: str) -> None:
    assert render(text, FIRSTNAME="Ada", EMAIL="ada@example.com") == text


def test_a_tag_right_after_a_stray_percent_still_renders() -> None:
    assert render("50%%FIRSTNAME%", FIRSTNAME="Ada") == "50%Ada"
    assert render("%OFF%FIRSTNAME%", FIRSTNAME="Ada") == "%OFFAda"


@pytest.mark.parametrize(("value", "expected"), [("Ada", "Ada"), ("", "friend"), (None, "friend")])
def test_the_conditional_renders_the_value_or_else_the_fallback(
    value: str | None, expected: str
) -> None:
    text = "Dear %IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%friend%/IF%,"

    assert render(text, FIRSTNAME=value) == f"Dear {expected},"


def test_a_conditional_on_a_tag_the_account_does_not_know_renders_its_fallback() -> None:
    assert render("%IF $NOPE != ''%%NOPE%%ELSE%member%/IF%") == "member"


def test_several_conditionals_each_end_at_their_own_end() -> None:
    text = "%IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%A%/IF% / %IF $TIER != ''%%TIER%%ELSE%none%/IF%"

    assert render(text, TIER="gold") == "A / gold"


def test_values_and_fallbacks_are_html_escaped_in_html_but_not_in_a_subject() -> None:
    text = "<p>%FIRSTNAME% %IF $LASTNAME != ''%%LASTNAME%%ELSE%Tom & \"Jerry\"%/IF%</p>"

    in_html = render(text, FIRSTNAME="<Ada & Co>")
    in_subject = render(text, escape=False, FIRSTNAME="<Ada & Co>")

    assert in_html == "<p>&lt;Ada &amp; Co&gt; Tom &amp; &quot;Jerry&quot;</p>"
    assert in_subject == '<p><Ada & Co> Tom & "Jerry"</p>'


def test_one_slot_per_tag_however_often_subject_and_body_use_it() -> None:
    slots = Slots(KNOWN)
    subject = compile_template("%FIRSTNAME%, %FIRSTNAME%", slots, escape=False)
    body = compile_template(
        "<a href='%MARKETING_PREFERENCES_URL%'>%FIRSTNAME%</a>", slots, escape=True
    )

    values = ("Ada", "https://shop.example/p?a=1&b=2")

    assert slots.names == ["FIRSTNAME", "MARKETING_PREFERENCES_URL"]
    assert subject.render(values) == "Ada, Ada"
    assert body.render(values) == "<a href='https://shop.example/p?a=1&amp;b=2'>Ada</a>"
