"""Klaviyo's template tags, as far as the dispatcher writes them (the campaign contract,
"Template syntax ... Klaviyo"), compiled once per campaign and rendered per recipient.

    {{ email }}  {{ first_name }}  {{ last_name|default:"FB" }}   a profile attribute
    {{ person|lookup:"phone_number"|default:"FB" }}               the attribute of that name
    {{ person|lookup:"marketing_preferences_url" }}                when set, else the custom
    {{ person.first_name }}                                         property; the same as lookup

- `default:"FB"` renders FB when the value is missing or empty (Django's `default` replaces
  ""), else the value; without it a missing value renders "". Inside the quotes `\\\\` is a
  backslash and `\\"` a quote.
- In an email's HTML (`html=True`) the value, or the fallback standing for it, is escaped
  with `html.escape(value, quote=True)`; the text around a tag is copied as written. Subjects,
  SMS and push text are not escaped.
- A tag the sandbox cannot read (another filter, a `{% %}` block, a malformed quote) is copied
  as written, so a wrong template shows in the rendered message instead of vanishing. ASSUMED:
  Klaviyo would refuse such a template or render it differently; the dispatcher never writes
  one.

Compiling names each value a template needs (`Slots`): "email", "first_name" (a top-level
name: the profile's attribute, `profiles.FIELDS`) or "person.<key>" (a lookup: the attribute
of that name when the profile has it, else the custom property). The campaign records
one tuple of those values per recipient, read from the profile when the campaign is sent, and
renders from it when a message is viewed (common/campaign_sends.py).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dispatcher.sandbox.klaviyo.profiles import FIELDS, PERSON_PREFIX

_QUOTED = r'"(?:[^"\\]|\\.)*"'
# A tag: {{ ... }} whose inside may hold quoted strings with braces in them.
_TAG = re.compile(r"\{\{((?:[^}\"]|" + _QUOTED + r"|\}(?!\}))*)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*")
_FILTER = re.compile(r"\|\s*([a-z_]+)\s*(?::\s*(" + _QUOTED + r"))?\s*")
_ESCAPE = re.compile(r"\\([\\\"])")
_FIELDS = frozenset(FIELDS)


@dataclass
class Slots:
    """The values a campaign's templates need, each at a fixed index of a recipient's tuple."""

    names: list[str] = field(default_factory=list)

    def index(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


@dataclass(frozen=True)
class Variable:
    slot: int | None  # None: a name no profile holds (renders the fallback)
    fallback: str | None


Part = str | Variable


@dataclass(frozen=True)
class Template:
    """A compiled template: literal text and variables, in order."""

    parts: tuple[Part, ...]

    def render(self, values: Sequence[str | None], *, escape: bool = False) -> str:
        return "".join(
            part if isinstance(part, str) else _value(part, values, escape) for part in self.parts
        )


def _value(variable: Variable, values: Sequence[str | None], escape: bool) -> str:
    value = None if variable.slot is None else values[variable.slot]
    if not value:
        value = variable.fallback or ""
    return html.escape(value, quote=True) if escape else value


def compile_template(text: str, slots: Slots) -> Template:
    """`text` as parts; the names it needs are added to `slots`."""
    parts: list[Part] = []
    position = 0
    for tag in _TAG.finditer(text):
        variable = _variable(tag.group(1), slots)
        if variable is None:
            continue  # left in the literal text around it
        parts.append(text[position : tag.start()])
        parts.append(variable)
        position = tag.end()
    parts.append(text[position:])
    return Template(tuple(part for part in parts if part != ""))


def _variable(inside: str, slots: Slots) -> Variable | None:
    """The variable a tag's inside names, or None when it is not one the sandbox reads."""
    found = _VARIABLE.match(inside)
    if found is None:
        return None
    name, position = found.group(1), found.end()
    lookup: str | None = None
    fallback: str | None = None
    while position < len(inside):
        step = _FILTER.match(inside, position)
        if step is None:
            return None
        filter_name, argument = step.group(1), step.group(2)
        if argument is None:
            return None
        if filter_name == "lookup" and name == "person" and lookup is None and fallback is None:
            lookup = _unquoted(argument)
        elif filter_name == "default" and fallback is None:
            fallback = _unquoted(argument)
        else:
            return None
        position = step.end()
    key = _value_name(name, lookup)
    return Variable(None if key is None else slots.index(key), fallback)


def _value_name(name: str, lookup: str | None) -> str | None:
    """Which recorded value a variable reads (profiles.py `values_many`): a top-level
    attribute ("first_name"), a person lookup ("person.<key>"), or none."""
    if name == "person" and lookup is not None:
        return PERSON_PREFIX + lookup
    if name.startswith(PERSON_PREFIX):
        return name
    return name if name in _FIELDS else None


def _unquoted(argument: str) -> str:
    return _ESCAPE.sub(r"\1", argument[1:-1])
