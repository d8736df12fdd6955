"""Page sizes and opaque page tokens (AIP-158).

A token is URL-safe base64 of a small JSON object holding the sort key of the
last item returned and the scope it belongs to; a token from another list, or
one that was tampered with, is rejected as INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from service.errors import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Our tokens are well under this; longer input is refused before decoding.
MAX_TOKEN_LENGTH = 1024


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: dict[str, Any] | None  # the decoded cursor, None for the first page


def page_request(
    v: Violations, *, page_size: int, page_token: str, scope: str, prefix: str = ""
) -> PageRequest:
    if page_size < 0:
        v.add(f"{prefix}page_size", "OUT_OF_RANGE", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = decode_token(v, page_token, scope, field=f"{prefix}page_token") if page_token else None
    return PageRequest(size=max(size, 1), after=after)


def encode_token(scope: str, cursor: dict[str, Any]) -> str:
    raw = json.dumps({"s": scope, "c": cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(v: Violations, token: str, scope: str, *, field: str) -> dict[str, Any] | None:
    data = None
    if len(token) <= MAX_TOKEN_LENGTH:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
            data = None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("c"), dict):
        bad_token(v, field)
        return None
    cursor: dict[str, Any] = data["c"]
    return cursor


def bad_token(v: Violations, field: str = "page_token") -> None:
    """A token that decodes but whose cursor this list cannot use."""
    v.add(field, "INVALID_PAGE_TOKEN", "is not a page token this list returned")
