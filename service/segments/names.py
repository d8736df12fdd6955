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
    if not name:
        v.add(field_path, "REQUIRED", "name the segment: segments/{segment_id}")
        return None
    segment_id = name.removeprefix(NAME_PREFIX)
    if not name.startswith(NAME_PREFIX) or not valid_segment_id(segment_id):
        v.add(field_path, "INVALID_NAME", "must look like segments/{segment_id}")
        return None
    return segment_id
