"""Klaviyo's `filter` query parameter, as far as the sandbox reads it: one clause,
`equals(field,"value")` or `any(field,["a","b",...])` (shared/PROVIDERS-API.md, "Conventions
common to every call"). Strings are in double quotes; a quote or a backslash inside one is
escaped with a backslash (Klaviyo documents no escape; this is how the client writes them).
Combined clauses (`and(...)`), other operators and unquoted values are refused with 400."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

EQUALS, ANY = "equals", "any"
_STRING = r'"(?:[^"\\]|\\.)*"'
_CLAUSE = re.compile(
    rf"(?P<operator>[a-z-]+)\((?P<field>[a-z_.]+),(?P<value>{_STRING}|\[.*\])\)", re.DOTALL
)
_ITEM = re.compile(rf"\s*(?P<string>{_STRING})\s*", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class Clause:
    operator: str  # EQUALS (one value) or ANY
    field: str
    values: tuple[str, ...]


def parse(text: str, allowed: Mapping[str, frozenset[str]], resource: str) -> Clause:
    """The clause of `text`, whose field and operator must be among `allowed` (field ->
    operators). Raises ValueError, saying why, for anything else."""
    found = _CLAUSE.fullmatch(text)
    if found is None:
        raise ValueError(f"Invalid filter provided: {text!r}.")
    operator, field, value = found["operator"], found["field"], found["value"]
    if field not in allowed:
        raise ValueError(f"'{field}' is not a valid field for the resource '{resource}'.")
    if operator not in allowed[field]:
        raise ValueError(f"'{operator}' is not a valid operator for the field '{field}'.")
    if operator == EQUALS and not value.startswith("["):
        return Clause(operator, field, (_unquoted(value),))
    if operator == ANY and value.startswith("["):
        values = _items(value[1:-1])
        if values:
            return Clause(operator, field, values)
    raise ValueError(f"Invalid filter provided: {text!r}.")


def _items(text: str) -> tuple[str, ...]:
    """The strings of a list's inside: `"a","b"` (blanks allowed around each)."""
    if not text.strip():
        return ()
    items: list[str] = []
    position = 0
    while True:
        item = _ITEM.match(text, position)
        if item is None:
            raise ValueError("a list of quoted strings is expected")
        items.append(_unquoted(item["string"]))
        position = item.end()
        if position == len(text):
            return tuple(items)
        if text[position] != ",":
            raise ValueError("a list of quoted strings is expected")
        position += 1


def _unquoted(string: str) -> str:
    return _ESCAPED.sub(r"\1", string[1:-1])
