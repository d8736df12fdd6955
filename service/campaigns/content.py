"""A campaign message's content: a Liquid template in a small, checked subset, rendered
per recipient, and written in the provider's own template syntax with the same fallbacks.

The subset is text and `{{ variable | default: "fallback" }}` outputs, nothing else (no
tags, no other filters): exactly what every provider can render itself, so the message a
recipient gets is the one PreviewCampaignMessage shows. The variables are the contact's
fields (CONTACT_FIELDS) and custom properties (`custom.<key>`), each with a fallback
(Property 29: used when the contact lacks the value), `email` (always known), and
`unsubscribe_url`, the recipient's own signed link to their preference page, which also
takes a one-click unsubscribe.

- Email: a subject and an HTML body; the body must show `{{ unsubscribe_url }}` (Property
  32), or the content is refused. Values are HTML-escaped in the body.
- SMS: a body; opt-out wording ("Reply STOP to opt out.") is added when the body has none
  (Property 22).
- Push: a title (the subject) and a body.

Rendering uses python-liquid with limits on what one render may produce."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liquid import Environment
from liquid.builtin.content import ContentNode
from liquid.builtin.output import OutputNode
from liquid.exceptions import LiquidError

from service.errors import Violations


class Channel(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


# The contact's fields a template may name (the contacts table's columns of the same name).
CONTACT_FIELDS = frozenset(
    {"first_name", "last_name", "phone", "loyalty_tier", "location", "language", "timezone"}
)
ALWAYS_KNOWN = frozenset({"email", "unsubscribe_url"})  # need no fallback
UNSUBSCRIBE_URL = "unsubscribe_url"
CUSTOM = "custom"
SMS_OPT_OUT = "Reply STOP to opt out."
# An opt-out instruction: "Reply STOP", "Text STOP to 12345", "txt stop" (not "non-stop").
_STOP = re.compile(r"\b(reply|text|txt|send)\s+[\"'“]?stop\b", re.IGNORECASE)
MAX_TEMPLATE = 100_000  # characters of one template
MAX_SUBJECT = 255
MAX_SMS = 1_600  # ten concatenated segments
MAX_RENDERED = 500_000  # characters one render may write
_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Liquid reads these properties of any object itself (a hash's size, an array's ends):
# a custom property of such a name could not be shown.
_LIQUID_PROPERTIES = frozenset({"size", "first", "last"})


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Variable:
    path: tuple[str, ...]  # ("first_name",) or ("custom", "size")
    fallback: str | None  # None only for ALWAYS_KNOWN


Part = Text | Variable


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[Part, ...]

    def names(self) -> frozenset[tuple[str, ...]]:
        return frozenset(p.path for p in self.parts if isinstance(p, Variable))


@dataclass(frozen=True)
class Content:
    channel: Channel
    subject: Template | None  # email subject, push title; None for SMS
    body: Template


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class _Limited(Environment):
    """Liquid with a cap on what one render writes (python-liquid's own limit)."""

    output_stream_limit = MAX_RENDERED


_TEXT_ENV = _Limited()
_HTML_ENV = _Limited(autoescape=True)


def parse_content(
    v: Violations, prefix: str, channel: Channel, subject: str, body: str
) -> Content | None:
    """The content, or None with what is wrong in `v` (fields under `prefix`)."""
    subject_template = None
    if channel is not Channel.SMS:
        if not subject.strip():
            v.add(f"{prefix}subject", "REQUIRED", "a subject (a push title) is required")
        elif len(subject) > MAX_SUBJECT:
            v.add(f"{prefix}subject", "TOO_LONG", f"at most {MAX_SUBJECT} characters")
        else:
            subject_template = parse_template(v, f"{prefix}subject", subject)
    if channel is Channel.SMS and body.strip() and not _has_opt_out(body):
        body = f"{body.rstrip()} {SMS_OPT_OUT}"
    body_template = None
    if not body.strip():
        v.add(f"{prefix}body", "REQUIRED", "a body is required")
    elif len(body) > (MAX_SMS if channel is Channel.SMS else MAX_TEMPLATE):
        v.add(f"{prefix}body", "TOO_LONG", "the body is too long for its channel")
    else:
        body_template = parse_template(v, f"{prefix}body", body)
    if channel is Channel.EMAIL and body_template is not None and not _links_out(body_template):
        v.add(
            f"{prefix}body",
            "UNSUBSCRIBE_LINK_MISSING",
            "a marketing email must link to its recipient's page: "
            '<a href="{{ unsubscribe_url }}">',
        )
    if body_template is None or (channel is not Channel.SMS and subject_template is None):
        return None
    if v:
        return None
    return Content(channel, subject_template, body_template)


# What stands just before a link's address in HTML: `href="`, `href='` or `href=`.
_HREF = re.compile(r"href\s*=\s*[\"']?$", re.IGNORECASE)


def _links_out(body: Template) -> bool:
    """Whether the body links to the recipient's page: {{ unsubscribe_url }} as an
    href's value (not only in the text, or inside a comment)."""
    before = ""
    for part in body.parts:
        unsubscribe = isinstance(part, Variable) and part.path == (UNSUBSCRIBE_URL,)
        if unsubscribe and _HREF.search(before) and not _in_comment(before):
            return True
        before += part.text if isinstance(part, Text) else "x"
    return False


def _in_comment(html: str) -> bool:
    return html.rfind("<!--") > html.rfind("-->")


def _has_opt_out(body: str) -> bool:
    return _STOP.search(body) is not None


def parse_template(v: Violations, field: str, source: str) -> Template | None:
    """The template's parts, or None with every problem in `v`."""
    if "\x00" in source:
        v.add(field, "INVALID_CHARACTER", "must not contain NUL characters")
        return None
    try:
        parsed = _TEXT_ENV.from_string(source)
    except LiquidError as exc:
        v.add(field, "INVALID_TEMPLATE", f"not a valid template: {exc}")
        return None
    parts: list[Part] = []
    for node in parsed.nodes:
        if isinstance(node, ContentNode):
            parts.append(Text(node.text))
        elif isinstance(node, OutputNode):
            variable = _variable(v, field, node)
            if variable is None:
                return None
            parts.append(variable)
        else:
            v.add(field, "UNSUPPORTED_TEMPLATE", _only_outputs(node))
            return None
    return Template(source, tuple(parts))


def _only_outputs(node: object) -> str:
    return (
        f'only text and {{{{ variable | default: "fallback" }}}} may be used, '
        f"not a {type(node).__name__.removesuffix('Node').lower()} tag"
    )


def _variable(v: Violations, field: str, node: OutputNode) -> Variable | None:
    expression = node.expression  # a FilteredExpression: `left`, then `filters`
    left = getattr(expression, "left", None)
    path = tuple(str(segment) for segment in getattr(left, "path", ()) or ())
    filters = list(getattr(expression, "filters", ()) or ())
    name = ".".join(path) or "an expression"
    if len(path) == 2 and path[0] == CUSTOM and path[1] in _LIQUID_PROPERTIES:
        v.add(field, "UNKNOWN_VARIABLE", f"{name}: Liquid keeps .{path[1]} for itself")
        return None
    if not _known(path):
        v.add(field, "UNKNOWN_VARIABLE", f"{name} is not a variable (see the README)")
        return None
    if len(filters) > 1 or (filters and filters[0].name != "default"):
        v.add(field, "UNSUPPORTED_TEMPLATE", f"{name}: only the default filter may be used")
        return None
    fallback = _fallback(filters[0]) if filters else None
    if filters and (fallback is None or not _portable(fallback)):
        v.add(
            field,
            "INVALID_FALLBACK",
            f"{name}: the fallback must be one quoted text without template delimiters, "
            "using at most one kind of quote",
        )
        return None
    if fallback is None and path[0] not in ALWAYS_KNOWN:
        v.add(
            field,
            "FALLBACK_REQUIRED",
            f'{name} needs a fallback for contacts without it: {{{{ {name} | default: "…" }}}}',
        )
        return None
    return Variable(path, fallback)


def _portable(fallback: str) -> bool:
    """A fallback every provider's template syntax can carry as a literal."""
    delimiters = ("{{", "}}", "{%", "%}", "{#", "#}")
    return not any(d in fallback for d in delimiters) and not ('"' in fallback and "'" in fallback)


def _known(path: tuple[str, ...]) -> bool:
    if len(path) == 1:
        return path[0] in CONTACT_FIELDS or path[0] in ALWAYS_KNOWN
    return len(path) == 2 and path[0] == CUSTOM and _CUSTOM_KEY.fullmatch(path[1]) is not None


def _fallback(default: Any) -> str | None:
    args = list(getattr(default, "args", ()) or ())
    if len(args) != 1:
        return None
    value = getattr(args[0], "value", None)
    literal = getattr(value, "value", value)  # a StringLiteral's value, or the value
    return literal if isinstance(literal, str) else None


class RenderError(ValueError):
    """The message cannot be made for this recipient (it would pass the output limit)."""


def render(content: Content, person: Mapping[str, Any], unsubscribe_url: str) -> Rendered:
    """The message one recipient gets: `person` maps CONTACT_FIELDS, "email" and
    "custom" (their custom properties) to values; missing or empty ones fall back.
    RenderError when it cannot be made."""
    try:
        return _render(content, person, unsubscribe_url)
    except LiquidError as exc:
        raise RenderError(str(exc)) from exc


def _render(content: Content, person: Mapping[str, Any], unsubscribe_url: str) -> Rendered:
    context = {field: person.get(field) for field in CONTACT_FIELDS}
    context |= {
        "email": person.get("email", ""),
        CUSTOM: dict(person.get(CUSTOM) or {}),
        UNSUBSCRIBE_URL: unsubscribe_url,
    }
    body_env = _HTML_ENV if content.channel is Channel.EMAIL else _TEXT_ENV
    subject = "" if content.subject is None else _TEXT_ENV.from_string(content.subject.source)
    return Rendered(
        subject if isinstance(subject, str) else subject.render(**context),
        body_env.from_string(content.body.source).render(**context),
    )
