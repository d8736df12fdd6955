"""The auth file's rules: what a valid file is, and which calls it admits."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.access.callers import AuthFileError, Caller, Callers, parse_callers, token_digest_hex
from service.errors import PermissionDeniedError, UnauthenticatedError

METHODS = ("TrackEvent", "TrackEvents", "UpsertContact", "DeleteContact")


def _table(name: str, token: str, methods: str) -> str:
    return f'[[callers]]\nname = "{name}"\ntoken_sha256 = "{token_digest_hex(token)}"\n{methods}\n'


CHECKOUT = _table("checkout", "checkout-token", 'methods = ["TrackEvent", "UpsertContact"]')
OPS = _table("ops", "ops-token", 'methods = ["*"]')


def _callers(text: str = CHECKOUT + OPS) -> Callers:
    return parse_callers(text, METHODS)


def test_the_digest_is_the_sha256_of_the_token() -> None:
    assert token_digest_hex("abc") == hashlib.sha256(b"abc").hexdigest()


def test_a_valid_file_gives_its_callers() -> None:
    callers = _callers()
    assert callers.names == ["checkout", "ops"]
    checkout, ops = callers.callers
    assert checkout.may_call("TrackEvent") and not checkout.may_call("DeleteContact")
    assert all(ops.may_call(m) for m in METHODS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("callers = [", "not valid TOML"),
        ("", "no [[callers]]"),
        ("callers = []", "no [[callers]]"),
        ("callers = [1]", "callers[0] is not a table"),
        ('[[callers]]\ntoken_sha256 = "00"\nmethods = ["*"]', "callers[0] has no name"),
        ('admins = ["x"]\n' + CHECKOUT, "unknown top-level keys ['admins']"),
        (CHECKOUT + CHECKOUT.replace("checkout-token", "other"), "'checkout' is listed twice"),
        (
            CHECKOUT + CHECKOUT.replace('"checkout"', '"shop"'),
            "callers 'checkout' and 'shop' have the same token",
        ),
        (
            CHECKOUT.replace('"TrackEvent"', '"TrackEvnet"'),
            "caller 'checkout': unknown methods ['TrackEvnet']",
        ),
        (CHECKOUT.replace("methods = [", "methods = [1, "), "caller 'checkout': unknown methods"),
        (CHECKOUT.replace("methods = [", "methods = []\nx = ["), "unknown keys ['x']"),
        (_table("bare", "t", "methods = []"), "caller 'bare': methods must list"),
        (_table("bare", "t", 'methods = "*"'), "caller 'bare': methods must list"),
        (
            '[[callers]]\nname = "hex"\ntoken_sha256 = "xyz"\nmethods = ["*"]',
            "caller 'hex': token_sha256 must be 64 hex digits",
        ),
        (
            f'[[callers]]\nname = "short"\ntoken_sha256 = "{"ab" * 31}"\nmethods = ["*"]',
            "caller 'short': token_sha256 must be 64 hex digits",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(AuthFileError) as refused:
        _callers(text)
    assert message in str(refused.value)


@pytest.mark.parametrize("digest", [token_digest_hex(""), token_digest_hex("").upper()])
def test_the_digest_of_the_empty_token_is_refused_naming_the_caller(digest: str) -> None:
    text = f'[[callers]]\nname = "blank"\ntoken_sha256 = "{digest}"\nmethods = ["*"]\n'
    with pytest.raises(AuthFileError) as refused:
        _callers(CHECKOUT + text)
    assert "caller 'blank': token_sha256 is the SHA-256 of the empty string" in str(refused.value)


def test_an_empty_token_is_nobodys_even_against_the_empty_digest() -> None:
    """Defence in depth: were the empty digest ever loaded, "Bearer " still gets nobody in."""
    blank = Callers((Caller("blank", hashlib.sha256(b"").digest(), frozenset({"*"})),))
    assert blank.authenticate("") is None
    with pytest.raises(UnauthenticatedError) as refused:
        blank.admit("Bearer ", "TrackEvent")
    assert refused.value.reason == "MISSING_CREDENTIALS"


def test_upper_case_hex_digests_are_accepted() -> None:
    text = CHECKOUT.replace(
        token_digest_hex("checkout-token"), token_digest_hex("checkout-token").upper()
    )
    assert _callers(text).admit("Bearer checkout-token", "TrackEvent").name == "checkout"


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "MISSING_CREDENTIALS"),
        ("", "MISSING_CREDENTIALS"),
        ("Basic b3BzOm9wcw==", "MISSING_CREDENTIALS"),
        ("ops-token", "MISSING_CREDENTIALS"),
        ("Bearer ", "MISSING_CREDENTIALS"),
        ("bearer \t ", "MISSING_CREDENTIALS"),
        ("Bearer not-a-token", "UNKNOWN_TOKEN"),
        ("Bearer ops-token-and-more", "UNKNOWN_TOKEN"),
    ],
)
def test_calls_without_a_known_token_are_unauthenticated(
    authorization: str | None, reason: str
) -> None:
    with pytest.raises(UnauthenticatedError) as refused:
        _callers().admit(authorization, "TrackEvent")
    assert refused.value.reason == reason
    assert "ops-token" not in str(refused.value)


def test_a_method_the_caller_may_not_use_is_denied() -> None:
    with pytest.raises(PermissionDeniedError) as denied:
        _callers().admit("Bearer checkout-token", "DeleteContact")
    assert denied.value.reason == "METHOD_NOT_ALLOWED"
    assert "checkout" in str(denied.value) and "DeleteContact" in str(denied.value)


def test_the_bearer_scheme_is_case_insensitive() -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert _callers().admit(f"{scheme} ops-token", "DeleteContact").name == "ops"


_TOKENS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@given(tokens=st.lists(_TOKENS, min_size=1, max_size=6, unique=True), probe=_TOKENS)
def test_a_token_admits_exactly_its_own_caller(tokens: list[str], probe: str) -> None:
    text = "".join(
        f'[[callers]]\nname = "c{i}"\ntoken_sha256 = "{token_digest_hex(t)}"\nmethods = ["*"]\n'
        for i, t in enumerate(tokens)
    )
    callers = parse_callers(text, METHODS)
    for i, token in enumerate(tokens):
        found = callers.authenticate(token)
        assert found is not None and found.name == f"c{i}"
    found = callers.authenticate(probe)
    expected = f"c{tokens.index(probe)}" if probe in tokens else None
    assert (found.name if found else None) == expected
