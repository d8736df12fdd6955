"""ActiveCampaign's personalization tags and conditional content, as a campaign's subject and
HTML use them (the syntax the dispatcher writes; shared/PROVIDERS-API.md and the campaign
contract):

    %EMAIL%  %FIRSTNAME%  %LASTNAME%  %PHONE%  %<PERSTAG>% (a custom field's)
    %IF $TAG != ''%%TAG%%ELSE%fallback%/IF%      the value, or the fallback when it is empty

A `%WORD%` is a tag only when WORD is one of the known tags (the four standard ones and the
account's field perstags, compared exactly); anything else (a lone `%`, `50%OFF%`) is copied
as text, as ActiveCampaign leaves unknown tags. A conditional on a tag the account does not
know renders its fallback: the sandbox ASSUMES an unknown variable is empty, as a missing value
is. In an email's HTML the value and the fallback are HTML-escaped (`html.escape`, quotes
too); the subject is not. ASSUMED: ActiveCampaign copies a conditional's ELSE branch as
template HTML; the sandbox escapes it like a value, as the contract has Klaviyo escape its
`default`, so that both sandboxes render one template alike.

Templates are compiled once per campaign against one `Slots` (the tags both texts use, in
order), so a recipient's render inputs are a tuple of values, rendered only when viewed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from dispatcher.sandbox.common.campaign_sends import Values

STANDARD_TAGS = ("EMAIL", "FIRSTNAME", "LASTNAME", "PHONE")
_TAG = re.compile(r"%([A-Za-z0-9_-]+)%")
# The fallback ends at the first %/IF%: the dispatcher refuses a fallback containing one.
_CONDITIONAL = re.compile(r"%IF \$([A-Za-z0-9_-]+) != ''%%\1%%ELSE%(.*?)%/IF%", re.DOTALL)


@dataclass(frozen=True)
class Slot:
    """A tag's place in the render inputs; `fallback` None for a plain %TAG%."""

    index: int | None  # None: a tag the account does not know (a conditional's)
    fallback: str | None = None


Part = str | Slot


@dataclass
class Slots:
    """The known tags, and the order in which a recipient's values are recorded: each tag a
    compiled text uses gets the next index."""

    known: Collection[str]
    names: list[str] = field(default_factory=list)

    def index(self, name: str) -> int | None:
        if name not in self.known:
            return None
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


@dataclass(frozen=True)
class Template:
    parts: tuple[Part, ...]
    escape: bool  # HTML-escape values (an email's HTML)

    def render(self, values: Values) -> str:
        return "".join(
            part if isinstance(part, str) else self._value(part, values) for part in self.parts
        )

    def _value(self, slot: Slot, values: Values) -> str:
        value = values[slot.index] if slot.index is not None else None
        text = value if value else (slot.fallback or "")
        return html.escape(text, quote=True) if self.escape else text


def compile_template(text: str, slots: Slots, *, escape: bool) -> Template:
    """`text` as parts: literal text, and a slot for each tag or conditional."""
    parts: list[Part] = []
    literal: list[str] = []
    position = 0
    while (start := text.find("%", position)) != -1:
        literal.append(text[position:start])
        slot, end = _tag_at(text, start, slots)
        if slot is None:
            literal.append("%")  # not a tag: the next % may start one
            position = start + 1
            continue
        parts.extend(_flushed(literal))
        parts.append(slot)
        position = end
    literal.append(text[position:])
    parts.extend(_flushed(literal))
    return Template(tuple(parts), escape)


def _tag_at(text: str, start: int, slots: Slots) -> tuple[Slot | None, int]:
    """The conditional or known tag starting at `start`, and where it ends; (None, start)."""
    conditional = _CONDITIONAL.match(text, start)
    if conditional is not None:
        name, fallback = conditional.groups()
        return Slot(slots.index(name), fallback), conditional.end()
    tag = _TAG.match(text, start)
    if tag is not None and tag.group(1) in slots.known:
        return Slot(slots.index(tag.group(1))), tag.end()
    return None, start


def _flushed(literal: list[str]) -> list[str]:
    """The literal text gathered so far as one part (none when empty); `literal` emptied."""
    joined = "".join(literal)
    literal.clear()
    return [joined] if joined else []
