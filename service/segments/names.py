"""Segment resource names, `segments/{segment_id}`."""

from __future__ import annotations

import re

from service.errors import Violations

NAME_PREFIX = "segments/"
# Lower case, digits and hyphens, starting with a letter: safe in names, logs
# and URLs. (The built-in newsletter segment is `segments/newsletter`.)
SEGMENT_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def segment_name(segment_id: str) -> str:
    return f"{NAME_PREFIX}{segment_id}"


def valid_segment_id(segment_id: str) -> bool:
    return SEGMENT_ID.fullmatch(segment_id) is not None


def parse_segment_name(v: Violations, field_path: str, name: str) -> str | None:
    """The id in `segments/{segment_id}`; None, with a violation, otherwise."""
    return parse_short_name(v, field_path, name, NAME_PREFIX, "segment")


def parse_short_name(
    v: Violations, field_path: str, name: str, prefix: str, what: str
) -> str | None:
    """The id in `{prefix}{id}` of a resource with a short id (SEGMENT_ID's form:
    segments, campaigns); None, with a violation, otherwise."""
    pattern = f"{prefix}{{{what}_id}}"
    if not name:
        v.add(field_path, "REQUIRED", f"name the {what}: {pattern}")
        return None
    resource_id = name.removeprefix(prefix)
    if not name.startswith(prefix) or not valid_segment_id(resource_id):
        v.add(field_path, "INVALID_NAME", f"must look like {pattern}")
        return None
    return resource_id
