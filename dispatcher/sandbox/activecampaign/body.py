"""Reading request bodies and queries: the resource inside its wrapper key, ids given as
numbers or numeric strings, required and optional fields, limit/offset paging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dispatcher.sandbox.activecampaign.errors import ApiError, invalid, missing
from dispatcher.sandbox.common.windows import RateWindow, Refusal

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass
class Call:
    """One API call as the route functions see it."""

    params: tuple[str, ...]  # the path's captured ids
    query: dict[str, str]  # the last value of each query parameter (a `name[]` one: all, a,b)
    document: Any  # parsed JSON body, or None
    now: float  # epoch seconds, from the sandbox's clock
    # draws a call from a rate window (bulk import's per-minute ones); None admits it
    admit: Callable[[RateWindow], Refusal | None] = field(default=lambda window: None)
    import_delay_s: float = 0.0  # how long a bulk import takes to complete
    size: int = 0  # of the request body, in bytes

    def resource(self, key: str, error: ApiError | None = None) -> dict[str, Any]:
        """`{"<key>": {...}}`'s inner object; `error` (a 422 by default) otherwise."""
        if isinstance(self.document, dict) and isinstance(self.document.get(key), dict):
            inner: dict[str, Any] = self.document[key]
            return inner
        raise error or missing(f"/{key}")


def ref(value: Any) -> str | None:
    """An id given as a number or a numeric string, as ActiveCampaign's examples use both."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and _digits(value.strip()):
        return str(int(value.strip()))
    return None


def required_ref(resource: dict[str, Any], name: str, pointer: str) -> str:
    if resource.get(name) in (None, ""):
        raise missing(f"{pointer}/{name}")
    found = ref(resource[name])
    if found is None:
        raise invalid(f"{pointer}/{name}", f"{name} must be an id")
    return found


def required_text(resource: dict[str, Any], name: str, pointer: str) -> str:
    value = resource.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise missing(f"{pointer}/{name}")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise invalid(f"{pointer}/{name}", f"{name} must be a string")
    return str(value)


def optional_text(resource: dict[str, Any], name: str, pointer: str, default: str = "") -> str:
    value = resource.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(f"{pointer}/{name}", f"{name} must be a string")
    return str(value)


def page(
    items: list[dict[str, Any]], query: dict[str, str], default: int = DEFAULT_PAGE
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A limit/offset page of `items` and its meta (total as a string, as ActiveCampaign
    sends it for contacts and campaigns)."""
    limit = _bounded(query.get("limit"), default, MAX_PAGE)
    offset = _bounded(query.get("offset"), 0, None)
    meta = {"total": str(len(items)), "page_input": {"limit": limit, "offset": offset}}
    return items[offset : offset + limit], meta


def _bounded(raw: str | None, default: int, most: int | None) -> int:
    if raw is None or not _digits(raw.strip()):
        return default
    value = int(raw)
    return min(value, most) if most is not None else value


def _digits(text: str) -> bool:
    """ASCII digits only (str.isdigit also takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit()
