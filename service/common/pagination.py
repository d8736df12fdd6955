"""Page sizes, signed page tokens (AIP-158) and the page query, for every list the service has.

A token is URL-safe base64 of an HMAC-SHA256 tag (16 bytes) followed by the
JSON list of the last returned item's sort key. The tag covers the list's
scope (which list, of which parent) too, so a token from another list, an
edited token or one made up by a caller is rejected as INVALID_ARGUMENT
before anything is decoded. The key values are then checked against their
kinds all the same: a token signed under a leaked or old key still cannot put
an out-of-range value in front of PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from marketing_runtime.timestamps import EPOCH, MAX_SECONDS, MIN_SECONDS
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Our tokens are well under this; longer input is refused before decoding.
MAX_TOKEN_LENGTH = 1024
TAG_BYTES = 16  # a truncated HMAC-SHA256: 128 bits are plenty against forgery
# Bumped if the token layout changes, so old tokens fail the check instead of
# being misread.
_TOKEN_VERSION = b"marketing.page_token.v1"
_INT64_MAX = 2**63 - 1
_MIN_MICROS = MIN_SECONDS * 1_000_000
_MAX_MICROS = MAX_SECONDS * 1_000_000 + 999_999
_UUID_TEXT_MAX = 45  # the longest form uuid.UUID reads ("urn:uuid:{...}")

Row = TypeVar("Row")


class KeyKind(enum.Enum):
    """The kind of one sort-key column, which says how it is written into a
    token and what a decoded value must satisfy before it reaches a query."""

    TIME = "time"  # a timestamptz, as integer microseconds since the epoch
    UUID = "uuid"
    ID = "id"  # a bigint identity: 0 .. 2**63 - 1
    NAME = "name"  # a short text id (a segment's): at most 63 characters


@dataclass(frozen=True)
class Paging:
    """One list: its scope (the list, and the parent it lists within) and the
    kinds of the columns it is ordered by."""

    scope: str
    key: tuple[KeyKind, ...]


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: tuple[Any, ...] | None  # the last item's sort key, None for the first page


class PageTokens:
    """Signs and checks page tokens with one secret key (settings:
    MARKETING_PAGE_TOKEN_KEY). Every replica must share the key for a token
    from one to be taken by another."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a page token key must not be empty")
        self._key = key

    def request(
        self, v: Violations, paging: Paging, *, page_size: int, page_token: str, prefix: str = ""
    ) -> PageRequest:
        """The page a caller asked for; each bad part is added to `v`."""
        if page_size < 0:
            v.add(f"{prefix}page_size", "OUT_OF_RANGE", "must not be negative")
        size = max(min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), 1)
        after = None
        if page_token:
            after = self.decode(page_token, paging)
            if after is None:
                v.add(
                    f"{prefix}page_token",
                    "INVALID_PAGE_TOKEN",
                    "is not a page token this list returned",
                )
        return PageRequest(size=size, after=after)

    def page(
        self,
        paging: Paging,
        request: PageRequest,
        rows: Sequence[Row],
        sort_key: Callable[[Row], tuple[Any, ...]],
    ) -> tuple[list[Row], str]:
        """Given up to `request.size + 1` rows, the page and the token of the
        next one ("" when this is the last)."""
        if len(rows) <= request.size:
            return list(rows), ""
        kept = list(rows[: request.size])
        return kept, self.encode(paging, sort_key(kept[-1]))

    def encode(self, paging: Paging, values: tuple[Any, ...]) -> str:
        if len(values) != len(paging.key):
            raise ValueError(f"{paging.scope}: {len(paging.key)} key values, got {len(values)}")
        raw = [_write(kind, value) for kind, value in zip(paging.key, values, strict=True)]
        return self._seal(paging, json.dumps(raw, separators=(",", ":")).encode())

    def _seal(self, paging: Paging, body: bytes) -> str:
        return base64.urlsafe_b64encode(self._tag(paging, body) + body).decode().rstrip("=")

    def decode(self, token: str, paging: Paging) -> tuple[Any, ...] | None:
        """The sort key a token carries, or None unless we signed it for this
        list and every value is of its column's kind and range."""
        raw = _unbase64(token)
        if raw is None or len(raw) <= TAG_BYTES:
            return None
        tag, body = raw[:TAG_BYTES], raw[TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(paging, body)):
            return None
        try:
            values = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if not isinstance(values, list) or len(values) != len(paging.key):
            return None
        read = [_read(kind, value) for kind, value in zip(paging.key, values, strict=True)]
        return None if any(value is None for value in read) else tuple(read)

    def _tag(self, paging: Paging, body: bytes) -> bytes:
        scope = paging.scope.encode("utf-8", "surrogatepass")
        # Length-prefixed, so no scope and body can run into one another.
        message = b"%s\0%d\0%s%s" % (_TOKEN_VERSION, len(scope), scope, body)
        return hmac.new(self._key, message, hashlib.sha256).digest()[:TAG_BYTES]


def _unbase64(token: str) -> bytes | None:
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


_NAME_MAX = 63


def _write(kind: KeyKind, value: Any) -> int | str:
    if kind is KeyKind.TIME:
        micros: int = (value - EPOCH) // timedelta(microseconds=1)
        return micros
    if kind in (KeyKind.UUID, KeyKind.NAME):
        return str(value)
    return int(value)


def _read(kind: KeyKind, value: Any) -> datetime | uuid.UUID | int | str | None:
    """The value as its column holds it, or None when it is not one."""
    if kind is KeyKind.NAME:
        return value if isinstance(value, str) and len(value) <= _NAME_MAX else None
    if kind is KeyKind.UUID:
        if not isinstance(value, str) or len(value) > _UUID_TEXT_MAX:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    if type(value) is not int:  # bool is an int subclass, and no key is a bool
        return None
    if kind is KeyKind.TIME:
        in_range = _MIN_MICROS <= value <= _MAX_MICROS
        return EPOCH + timedelta(microseconds=value) if in_range else None
    return value if 0 <= value <= _INT64_MAX else None


async def read_page(
    session: AsyncSession,
    tokens: PageTokens,
    paging: Paging,
    request: PageRequest,
    query: Select[Row],
    order: Sequence[InstrumentedAttribute[Any]],
    *,
    descending: bool = False,
) -> tuple[list[Row], str]:
    """The requested page of `query`'s rows and the next page's token ("" on
    the last page). `order` is the list's sort key, one column per kind of
    `paging.key`, unique together; the page starts after the token's key, in
    ascending order or, with `descending`, descending on every column. One
    row more than the page is read to tell whether another page follows."""
    columns = [column.desc() for column in order] if descending else list(order)
    query = query.order_by(*columns).limit(request.size + 1)
    if request.after is not None:
        query = query.where(_after(order, request.after, descending))
    found = list(await session.scalars(query))
    return tokens.page(
        paging, request, found, lambda row: tuple(getattr(row, c.key) for c in order)
    )


def _after(
    order: Sequence[InstrumentedAttribute[Any]], key: tuple[Any, ...], descending: bool
) -> ColumnElement[bool]:
    """Rows past `key` in the list's order: a row-value comparison (one the
    list's index serves), or a plain one for a one-column key."""
    columns: Any = order[0] if len(order) == 1 else tuple_(*order)
    bound = key[0] if len(order) == 1 else key
    past: ColumnElement[bool] = columns < bound if descending else columns > bound
    return past
