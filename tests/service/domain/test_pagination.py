"""Unit tests for page sizes and opaque page tokens (service.domain.pagination)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import pagination as pg
from service.errors import FieldViolation, InvalidArgumentError, Violations

SCOPE = "contacts"


def reported(v: Violations) -> tuple[FieldViolation, ...]:
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    return exc.value.violations


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def json_token(data: Any) -> str:
    return b64(json.dumps(data).encode())


# --------------------------------------------------------------------------- page size


@pytest.mark.parametrize(
    ("page_size", "expected"),
    [(0, pg.DEFAULT_PAGE_SIZE), (1, 1), (50, 50), (999, 999), (1000, 1000), (1001, 1000)],
)
def test_page_request_size(page_size: int, expected: int) -> None:
    v = Violations()
    request = pg.page_request(v, page_size=page_size, page_token="", scope=SCOPE)
    assert request.size == expected
    assert request.after is None
    assert not v


def test_defaults_are_the_documented_values() -> None:
    assert (pg.DEFAULT_PAGE_SIZE, pg.MAX_PAGE_SIZE) == (50, 1000)


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=10**12))
def test_page_request_caps_positive_sizes(page_size: int) -> None:
    v = Violations()
    request = pg.page_request(v, page_size=page_size, page_token="", scope=SCOPE)
    assert request.size == min(page_size, 1000)
    assert not v


@pytest.mark.parametrize("page_size", [-1, -50, -(2**31)])
def test_page_request_rejects_negative_size(page_size: int) -> None:
    v = Violations()
    pg.page_request(v, page_size=page_size, page_token="", scope=SCOPE)
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_size", "OUT_OF_RANGE")


def test_page_request_prefixes_field_paths() -> None:
    v = Violations()
    pg.page_request(v, page_size=-1, page_token="garbage", scope=SCOPE, prefix="filter.")
    found = reported(v)
    assert [(f.field, f.reason) for f in found] == [
        ("filter.page_size", "OUT_OF_RANGE"),
        ("filter.page_token", "INVALID_PAGE_TOKEN"),
    ]


# --------------------------------------------------------------------------- tokens

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
_cursors = st.dictionaries(
    st.text(max_size=20),
    st.one_of(_json_scalars, st.lists(_json_scalars, max_size=4)),
    max_size=6,
)


@settings(max_examples=300)
@given(scope=st.text(max_size=40), cursor=_cursors)
def test_token_round_trip(scope: str, cursor: dict[str, Any]) -> None:
    token = pg.encode_token(scope, cursor)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token), token  # URL-safe, no padding
    v = Violations()
    assert pg.decode_token(v, token, scope, field="page_token") == cursor
    assert not v


@settings(max_examples=200)
@given(cursor=_cursors)
def test_page_request_returns_decoded_cursor(cursor: dict[str, Any]) -> None:
    v = Violations()
    token = pg.encode_token(SCOPE, cursor)
    request = pg.page_request(v, page_size=10, page_token=token, scope=SCOPE)
    assert request == pg.PageRequest(size=10, after=cursor)
    assert not v


def test_token_is_opaque_base64_of_json() -> None:
    token = pg.encode_token(SCOPE, {"id": 7})
    padded = token + "=" * (-len(token) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"s": SCOPE, "c": {"id": 7}}


@settings(max_examples=200)
@given(scope=st.text(max_size=20), other=st.text(max_size=20), cursor=_cursors)
def test_token_from_another_scope_is_rejected(
    scope: str, other: str, cursor: dict[str, Any]
) -> None:
    token = pg.encode_token(other, cursor)
    v = Violations()
    result = pg.decode_token(v, token, scope, field="page_token")
    if other == scope:
        assert result == cursor
        assert not v
    else:
        assert result is None
        [found] = reported(v)
        assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


def test_page_request_rejects_token_of_another_list() -> None:
    token = pg.encode_token("campaigns", {"id": 1})
    v = Violations()
    request = pg.page_request(v, page_size=5, page_token=token, scope=SCOPE)
    assert request.after is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


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
        pg.encode_token(SCOPE, {"id": 1})[:-3],  # truncated
        pg.encode_token(SCOPE, {"id": 1}) + "x",  # extended
    ],
)
def test_garbage_tokens_are_rejected(token: str) -> None:
    v = Violations()
    assert pg.decode_token(v, token, SCOPE, field="page_token") is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


@pytest.mark.parametrize(
    "token",
    [
        b64(b"hello world"),
        b64(b"\xff\xfe\xfd\xfc"),  # not UTF-8
        b64(b"{"),
        b64(b"{'s': 'contacts', 'c': {}}"),  # Python, not JSON
        b64(b""),
    ],
    ids=["text", "binary", "truncated-json", "python-repr", "empty"],
)
def test_valid_base64_of_non_json_is_rejected(token: str) -> None:
    v = Violations()
    assert pg.decode_token(v, token, SCOPE, field="page_token") is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


@pytest.mark.parametrize(
    "data",
    [
        [SCOPE, {}],
        "contacts",
        42,
        None,
        {"c": {"id": 1}},
        {"s": SCOPE},
        {"s": SCOPE, "c": [1]},
        {"s": SCOPE, "c": "id=1"},
        {"s": SCOPE, "c": None},
        {"s": None, "c": {}},
    ],
)
def test_json_of_the_wrong_shape_is_rejected(data: Any) -> None:
    v = Violations()
    assert pg.decode_token(v, json_token(data), SCOPE, field="page_token") is None
    [found] = reported(v)
    assert (found.field, found.reason) == ("page_token", "INVALID_PAGE_TOKEN")


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=200))
def test_arbitrary_text_never_escapes_as_an_exception(token: str) -> None:
    v = Violations()
    result = pg.decode_token(v, token, SCOPE, field="page_token")
    if result is None:
        [found] = reported(v)
        assert found.reason == "INVALID_PAGE_TOKEN"
    else:
        assert isinstance(result, dict)
        assert not v


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_json_token_is_rejected(depth: int) -> None:
    """Too deep for json (RecursionError) or too long to be ours: both refused."""
    token = b64(b"[" * depth)
    v = Violations()
    assert pg.decode_token(v, token, SCOPE, field="page_token") is None
    [found] = reported(v)
    assert found.reason == "INVALID_PAGE_TOKEN"
