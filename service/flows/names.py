"""Flow and enrolment resource names: `flows/{flow_id}` and
`flows/{flow_id}/enrolments/{enrolment_id}`; `flows/-` lists every flow's."""

from __future__ import annotations

import re
import uuid

from service.errors import Violations

PREFIX = "flows/"
ANY_FLOW = "flows/-"
FLOW_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_ENROLMENT = re.compile(r"^flows/([a-z][a-z0-9-]{0,62})/enrolments/([0-9a-fA-F-]{32,36})$")


def flow_name(flow_id: str) -> str:
    return f"{PREFIX}{flow_id}"


def enrolment_name(flow_id: str, enrolment_id: uuid.UUID) -> str:
    return f"{PREFIX}{flow_id}/enrolments/{enrolment_id}"


def parse_flow_name(v: Violations, field_path: str, name: str, *, any_flow: bool = False) -> str:
    """The id in `flows/{flow_id}` ("-" for `flows/-` where `any_flow`); ""
    with a violation otherwise."""
    if not name:
        v.add(field_path, "REQUIRED", "name the flow: flows/{flow_id}")
        return ""
    if any_flow and name == ANY_FLOW:
        return "-"
    flow_id = name.removeprefix(PREFIX)
    if not name.startswith(PREFIX) or FLOW_ID.fullmatch(flow_id) is None:
        v.add(field_path, "INVALID_NAME", "must look like flows/{flow_id}")
        return ""
    return flow_id


def parse_enrolment_name(v: Violations, field_path: str, name: str) -> tuple[str, uuid.UUID | None]:
    """(flow id, enrolment id) of `flows/{flow_id}/enrolments/{enrolment_id}`."""
    if not name:
        v.add(field_path, "REQUIRED", "name the enrolment: flows/{flow_id}/enrolments/{id}")
        return "", None
    match = _ENROLMENT.fullmatch(name)
    try:
        enrolment_id = uuid.UUID(match.group(2)) if match else None
    except ValueError:
        enrolment_id = None
    if match is None or enrolment_id is None:
        v.add(field_path, "INVALID_NAME", "must look like flows/{flow_id}/enrolments/{uuid}")
        return "", None
    return match.group(1), enrolment_id
