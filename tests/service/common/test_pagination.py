"""Unit tests for page sizes and signed page tokens (service.common.pagination)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.common import pagination as pg
from service.errors import FieldViolation, InvalidArgumentError, Violations

SCOPE = "contacts"
KEY = b"k" * 32
TOKENS = pg.PageTokens(KEY)
CONTACTS = pg.Paging(SCOPE, (pg.KeyKind.TIME, pg.KeyKind.UUID))
CONSENTS = pg.Paging("consents:contacts/1", (pg.KeyKind.TIME, pg.KeyKind.ID))
FAILED = pg.Paging("failedDeliveries", (pg.KeyKind.ID,))
ALL_LISTS = (CONTACTS, CONSENTS, FAILED)


def reported(v: Violations) -> tuple[FieldViolation, ...]:
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    return exc.value.violations


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def request(v: Violations, *, page_size: int = 10, token: str = "", prefix: str = "") -> Any:
    return TOKENS.request(v, CONTACTS, page_size=page_size, page_token=token, prefix=prefix)


# --------------------------------------------------------------------------- page size


@pytest.mark.parametrize(
    ("page_size", "expected"),
    [(0, pg.DEFAULT_PAGE_SIZE), (1, 1), (50, 50), (999, 999), (1000, 1000), (1001, 1000)],
)
def test_page_request_size(page_size: int, expected: int) -> None:
    v = Violations()
    page = request(v, page_size=page_size)
    assert page.size == expected
    assert page.after is None
    assert not v


def test_defaults_are_the_documented_values() -> None:
    assert (pg.DEFAULT_PAGE_SIZE, pg.MAX_PAGE_SIZE) == (50, 1000)


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=10**12))
def test_page_request_caps_positive_sizes(page_size: int) -> None:
    v = Violations()
    page = request(v, page_size=page_size)
    assert page.size == min(page_size, 1000)
    assert not v


@pytest.mark.parametrize("page_size", [-1, -50, -(2**31)])
def test_page_request_rejects_negative_size(page_size: int) -> None:
    v = Violations()
    request(v, page_size=page_size)
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_size", "OUT_OF_RANGE")


def test_page_request_prefixes_field_paths() -> None:
    v = Violations()
    request(v, page_size=-1, token="garbage", prefix="filter.")
    found = reported(v)
    assert [(f.field, f.reason) for f in found] == [
        ("filter.page_size", "OUT_OF_RANGE"),
        ("filter.page_token", "INVALID_PAGE_TOKEN"),
    ]


# --------------------------------------------------------------------------- tokens

_times = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)
).map(lambda d: d.replace(tzinfo=UTC))
_ids = st.integers(min_value=0, max_value=2**63 - 1)
_values = {pg.KeyKind.TIME: _times, pg.KeyKind.UUID: st.uuids(), pg.KeyKind.ID: _ids}


def _sort_keys(paging: pg.Paging) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*(_values[kind] for kind in paging.key))


@given(data=st.data(), paging=st.sampled_from(ALL_LISTS))
def test_token_round_trip(data: st.DataObject, paging: pg.Paging) -> None:
    values = data.draw(_sort_keys(paging))
    token = TOKENS.encode(paging, values)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token), token  # URL-safe, no padding
    assert len(token) <= pg.MAX_TOKEN_LENGTH
    assert TOKENS.decode(token, paging) == values


def test_decoded_times_are_aware_utc() -> None:
    when = datetime(2024, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    after = TOKENS.decode(TOKENS.encode(CONTACTS, (when, uuid.uuid4())), CONTACTS)
    assert after is not None and after[0] == when and after[0].utcoffset() == timedelta(0)


@given(data=st.data(), paging=st.sampled_from(ALL_LISTS), other=st.text(max_size=30))
def test_token_of_another_scope_is_refused(
    data: st.DataObject, paging: pg.Paging, other: str
) -> None:
    token = TOKENS.encode(pg.Paging(other, paging.key), data.draw(_sort_keys(paging)))
    assert (TOKENS.decode(token, paging) is None) == (other != paging.scope)


@given(data=st.data(), paging=st.sampled_from(ALL_LISTS))
def test_token_under_another_key_is_refused(data: st.DataObject, paging: pg.Paging) -> None:
    token = pg.PageTokens(b"another key").encode(paging, data.draw(_sort_keys(paging)))
    assert TOKENS.decode(token, paging) is None


@given(data=st.data(), paging=st.sampled_from(ALL_LISTS))
def test_any_edited_byte_is_refused(data: st.DataObject, paging: pg.Paging) -> None:
    token = TOKENS.encode(paging, data.draw(_sort_keys(paging)))
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    assert TOKENS.decode(b64(bytes(raw)), paging) is None


def test_page_request_rejects_token_of_another_list() -> None:
    token = TOKENS.encode(FAILED, (1,))
    v = Violations()
    assert TOKENS.request(v, CONTACTS, page_size=5, page_token=token).after is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


def test_page_request_returns_the_sort_key() -> None:
    values = (datetime(2024, 1, 1, tzinfo=UTC), uuid.uuid4())
    v = Violations()
    page = request(v, token=TOKENS.encode(CONTACTS, values))
    assert page == pg.PageRequest(size=10, after=values)
    assert not v


_valid = TOKENS.encode(CONTACTS, (datetime(2024, 1, 1, tzinfo=UTC), uuid.UUID(int=7)))


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "not a token",
        "!!!!",
        "a",
        "=",
        "%%%%%%%%",
        "\u00fcn\u00efc\u00f6d\u00e9",
        b64(json.dumps({"s": SCOPE, "c": {"t": "2024-01-01T00:00:00+00:00"}}).encode()),
        b64(b"[" * 100_000),  # too long to be ours
        _valid[:-3],  # truncated
        _valid + "x",  # extended
        _valid[: pg.TAG_BYTES * 4 // 3],  # the tag alone
    ],
)
def test_garbage_tokens_are_rejected(token: str) -> None:
    v = Violations()
    assert request(v, token=token).after is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


@given(st.text(min_size=1, max_size=2000))
def test_arbitrary_text_is_refused_without_an_exception(token: str) -> None:
    for paging in ALL_LISTS:
        assert TOKENS.decode(token, paging) is None


# Signed by us, yet not a sort key of the list: what a leaked key could make.
# The values are still checked, so nothing out of range reaches PostgreSQL.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=50)
    | st.uuids().map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def _fits(kind: pg.KeyKind, value: Any) -> bool:
    if kind is pg.KeyKind.TIME:
        return isinstance(value, datetime) and value.utcoffset() == timedelta(0)
    if kind is pg.KeyKind.UUID:
        return isinstance(value, uuid.UUID)
    return type(value) is int and 0 <= value < 2**63


@given(paging=st.sampled_from(ALL_LISTS), body=st.lists(_json, max_size=3) | _json)
def test_signed_values_are_still_checked(paging: pg.Paging, body: Any) -> None:
    token = TOKENS._seal(paging, json.dumps(body).encode())
    after = TOKENS.decode(token, paging)
    if after is not None:
        assert len(after) == len(paging.key)
        assert all(_fits(kind, value) for kind, value in zip(paging.key, after, strict=True))


@pytest.mark.parametrize(
    ("paging", "body"),
    [
        (FAILED, [2**63]),  # beyond bigint
        (FAILED, [-1]),
        (FAILED, [True]),
        (FAILED, [1.0]),
        (FAILED, ["1"]),
        (FAILED, [1, 2]),
        (FAILED, {"s": 1}),
        (CONSENTS, [0, "1"]),  # a string where an id belongs
        (CONSENTS, [253_402_300_800_000_000, 1]),  # after 9999-12-31
        (CONSENTS, [-62_135_596_800_000_001, 1]),  # before year 1
        (CONTACTS, [0, 12]),  # a number where a uuid belongs
        (CONTACTS, [0, "not-a-uuid"]),
        (CONTACTS, ["2024-01-01T00:00:00", str(uuid.UUID(int=1))]),
    ],
)
def test_signed_but_unusable_values_are_refused(paging: pg.Paging, body: Any) -> None:
    assert TOKENS.decode(TOKENS._seal(paging, json.dumps(body).encode()), paging) is None


def test_page_slices_and_tokens_the_last_row() -> None:
    page = pg.PageRequest(size=2, after=None)
    rows = [(1,), (2,), (3,)]
    kept, token = TOKENS.page(FAILED, page, rows, lambda row: row)
    assert kept == [(1,), (2,)]
    assert TOKENS.decode(token, FAILED) == (2,)
    assert TOKENS.page(FAILED, page, rows[:2], lambda row: row) == ([(1,), (2,)], "")


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        pg.PageTokens(b"")
