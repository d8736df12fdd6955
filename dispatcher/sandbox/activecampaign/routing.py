"""Route tables: method and path template (ids as `{id}`) to the function answering it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.sandbox.activecampaign.body import Call
from dispatcher.sandbox.activecampaign.errors import ApiError, message
from dispatcher.sandbox.activecampaign.store import Account

Answer = tuple[int, Any]  # status and JSON body
Handle = Callable[[Account, Call], Answer]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handle: Handle


def route(method: str, template: str, handle: Handle) -> Route:
    pattern = re.escape(template).replace(re.escape("{id}"), "([^/]+)")
    return Route(method, template, re.compile(pattern + "/?"), handle)


def resolve(routes: Sequence[Route], method: str, path: str) -> tuple[Route, tuple[str, ...]]:
    """The route for a call and the ids in its path; a 404, or 405 for a known path."""
    matching = [(r, m) for r in routes if (m := r.pattern.fullmatch(path))]
    for candidate, found in matching:
        if candidate.method == method:
            return candidate, found.groups()
    if matching:
        allowed = ", ".join(sorted({r.method for r, _ in matching}))
        raise ApiError(405, {"message": "Method Not Allowed"}, headers={"Allow": allowed})
    raise message(404, "Not Found")
