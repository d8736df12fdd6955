"""Klaviyo's tags as the sandbox renders them (django_render.py): the syntax the dispatcher
writes, values from a recipient's recorded tuple, fallbacks, escapes and html escaping."""

from __future__ import annotations

import pytest

from dispatcher.sandbox.klaviyo.django_render import Slots, compile_template


def render(text: str, values: dict[str, str | None], *, escape: bool = False) -> str:
    slots = Slots()
    template = compile_template(text, slots)
    return template.render(tuple(values.get(name) for name in slots.names), escape=escape)


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("{{ email }}", {"email": "a@b.c"}, "a@b.c"),
        ("{{email}}", {"email": "a@b.c"}, "a@b.c"),
        ('{{ first_name|default:"there" }}', {"first_name": "Ada"}, "Ada"),
        ('{{ first_name|default:"there" }}', {"first_name": ""}, "there"),
        ('{{ first_name|default:"there" }}', {}, "there"),
        ("{{ last_name }}", {}, ""),
        ('{{ person|lookup:"phone_number"|default:"-" }}', {"person.phone_number": "+1"}, "+1"),
        ('{{ person|lookup:"loyalty_tier"|default:"-" }}', {"person.loyalty_tier": "gold"}, "gold"),
        ("{{ person.first_name }}", {"person.first_name": "Ada"}, "Ada"),
        ('{{ x|default:"a \\"b\\" \\\\ c" }}', {}, 'a "b" \\ c'),
        ('{{ x|default:"}} {{" }}', {}, "}} {{"),
        ("{{ nowhere|default:'single' }}", {}, "{{ nowhere|default:'single' }}"),
        ("{{ email|upper }}", {"email": "a"}, "{{ email|upper }}"),
        ("{% unsubscribe %} 50% {{ email }}", {"email": "a"}, "{% unsubscribe %} 50% a"),
        ("{{ organization }}", {"organization": "Acme"}, "Acme"),
        ('{{ unknown_top_level|default:"fb" }}', {}, "fb"),
    ],
)
def test_the_dispatchers_tags_render_as_klaviyo_would(
    text: str, values: dict[str, str | None], expected: str
) -> None:
    assert render(text, values) == expected


def test_in_html_the_value_and_its_fallback_are_escaped_but_not_the_text_around() -> None:
    text = '<b>{{ first_name|default:"<you>" }}</b> & {{ email }}'

    assert render(text, {"email": 'a"b@c.d'}, escape=True) == "<b>&lt;you&gt;</b> & a&quot;b@c.d"
    assert render(text, {"email": "x"}, escape=False) == "<b><you></b> & x"


def test_each_value_is_named_once_whatever_reads_it() -> None:
    slots = Slots()
    compile_template('{{ email }} {{ person|lookup:"tier" }}', slots)
    compile_template('{{ email }} {{ person|lookup:"tier"|default:"x" }} {{ first_name }}', slots)

    assert slots.names == ["email", "person.tier", "first_name"]
