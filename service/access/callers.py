"""Who may call the service: the callers of the auth file and the rules that admit a call.

The file (TOML) lists callers, each with a name, the SHA-256 of its bearer token
(the token itself is never stored) and the methods it may call:

    [[callers]]
    name = "checkout"
    token_sha256 = "<64 hex digits>"
    methods = ["TrackEvent", "TrackEvents", "UpsertContact"]   # "*": every method

Nothing here knows about gRPC: the interceptor (service/api/auth.py) passes the
`authorization` header and the method name in and turns refusals into statuses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.errors import PermissionDeniedError, UnauthenticatedError

ALL_METHODS = "*"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_CALLER_KEYS = frozenset({"name", "token_sha256", "methods"})
_BEARER = "bearer "  # the scheme is case-insensitive (RFC 7235)
# The digest of no token at all: a file listing it would admit "Bearer " alone.
_EMPTY_TOKEN_DIGEST = hashlib.sha256(b"").hexdigest()


class AuthFileError(ValueError):
    """The auth file cannot be used; the message says which caller and why."""


@dataclass(frozen=True)
class Caller:
    name: str
    token_digest: bytes  # SHA-256 of the token
    methods: frozenset[str]

    def may_call(self, method: str) -> bool:
        return ALL_METHODS in self.methods or method in self.methods


@dataclass(frozen=True)
class Callers:
    callers: tuple[Caller, ...]

    @property
    def names(self) -> list[str]:
        return [caller.name for caller in self.callers]

    def authenticate(self, token: str) -> Caller | None:
        """The caller whose token this is, or None. Every caller's digest is
        compared, each in constant time, so the time taken tells nothing about
        which digest (or how much of one) matched. No token is nobody's."""
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for caller in self.callers:
            if hmac.compare_digest(digest, caller.token_digest):
                found = caller
        return found

    def admit(self, authorization: str | None, method: str) -> Caller:
        """The caller of a call to `method` with this `authorization` header;
        UnauthenticatedError without a known bearer token, PermissionDeniedError
        when the caller may not call the method."""
        if not authorization:
            raise UnauthenticatedError(
                "MISSING_CREDENTIALS", "send the header authorization: Bearer <token>"
            )
        if authorization[: len(_BEARER)].lower() != _BEARER:
            raise UnauthenticatedError(
                "MISSING_CREDENTIALS", "the authorization header is not of the form Bearer <token>"
            )
        token = authorization[len(_BEARER) :].strip()
        if not token:
            raise UnauthenticatedError(
                "MISSING_CREDENTIALS", "the bearer token is empty: send Bearer <token>"
            )
        caller = self.authenticate(token)
        if caller is None:
            raise UnauthenticatedError("UNKNOWN_TOKEN", "the bearer token is not a known caller's")
        if not caller.may_call(method):
            raise PermissionDeniedError(
                "METHOD_NOT_ALLOWED", f"caller {caller.name!r} may not call {method}"
            )
        return caller


def parse_callers(text: str, known_methods: Collection[str]) -> Callers:
    """The callers of an auth file's text; AuthFileError naming the caller and
    the problem when anything is off (a typo must not silently lock a caller out
    or let one in)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuthFileError(f"not valid TOML: {exc}") from None
    unknown = set(document) - {"callers"}
    if unknown:
        raise AuthFileError(f"unknown top-level keys {sorted(unknown)}: only [[callers]] tables")
    entries = document.get("callers")
    if not isinstance(entries, list) or not entries:
        raise AuthFileError("no [[callers]] tables: nobody could call the service")
    callers = tuple(_caller(i, entry, known_methods) for i, entry in enumerate(entries))
    _refuse_duplicates(callers)
    return Callers(callers)


def _caller(index: int, entry: Any, known_methods: Collection[str]) -> Caller:
    if not isinstance(entry, Mapping):
        raise AuthFileError(f"callers[{index}] is not a table")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AuthFileError(f"callers[{index}] has no name")
    where = f"caller {name!r}"
    unknown = set(entry) - _CALLER_KEYS
    if unknown:
        raise AuthFileError(f"{where}: unknown keys {sorted(unknown)}")
    digest = entry.get("token_sha256")
    if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
        raise AuthFileError(f"{where}: token_sha256 must be 64 hex digits (a SHA-256 digest)")
    if digest.lower() == _EMPTY_TOKEN_DIGEST:
        raise AuthFileError(
            f"{where}: token_sha256 is the SHA-256 of the empty string: give the caller a token"
        )
    methods = entry.get("methods")
    if not isinstance(methods, list) or not methods:
        raise AuthFileError(f'{where}: methods must list method names, or "*" for every method')
    allowed = {*known_methods, ALL_METHODS}
    unknown_methods = [m for m in methods if m not in allowed]
    if unknown_methods:
        raise AuthFileError(f"{where}: unknown methods {unknown_methods}")
    return Caller(name, bytes.fromhex(digest), frozenset(methods))


def _refuse_duplicates(callers: tuple[Caller, ...]) -> None:
    seen_names: set[str] = set()
    seen_digests: dict[bytes, str] = {}
    for caller in callers:
        if caller.name in seen_names:
            raise AuthFileError(f"caller {caller.name!r} is listed twice")
        seen_names.add(caller.name)
        other = seen_digests.setdefault(caller.token_digest, caller.name)
        if other != caller.name:
            raise AuthFileError(
                f"callers {other!r} and {caller.name!r} have the same token: give each its own"
            )


def caller_table(name: str, token: str, methods: Sequence[str]) -> str:
    """The auth file's [[callers]] table for a caller with this token."""
    # JSON strings, and arrays of them, are valid TOML.
    return (
        f"[[callers]]\nname = {json.dumps(name)}\n"
        f'token_sha256 = "{token_digest_hex(token)}"\nmethods = {json.dumps(list(methods))}\n'
    )


def token_digest_hex(token: str) -> str:
    """What goes into token_sha256 for `token` (also `sha256sum` of it without a newline)."""
    return hashlib.sha256(token.encode()).hexdigest()
