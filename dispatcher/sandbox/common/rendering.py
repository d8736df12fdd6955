"""Rendering a simulated message's subject and body.

This stands for the provider's template engine (Klaviyo's Django-like tags, ActiveCampaign's
personalization tags) and is deliberately minimal, so the sandbox needs no template library:
`{{ path }}` is replaced by the value at that dotted path of the context (`event.product_url`,
`event.lines.0.title`, `person.first_name`), a number indexing a list. A path that names
nothing renders as the empty string, as both providers render a missing variable. There are no
filters, conditions or loops: fallbacks and links are decided by the service and arrive in the
trigger's properties."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([^\s{}]+)\s*\}\}")


def render(template: str, context: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda found: _text(lookup(context, found.group(1))), template)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; None when a part of it is missing."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list | tuple):
        return json.dumps(value)
    return str(value)
