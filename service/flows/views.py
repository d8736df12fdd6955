"""What the flow RPCs read back: an enrolment decision as a caller sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from service.flows.definitions import State, TriggerKind


@dataclass(frozen=True)
class EnrolmentView:
    id: uuid.UUID
    flow_id: str
    contact_id: uuid.UUID
    email: str
    state: State
    entry_key: str
    cause_kind: TriggerKind
    cause_ref: str
    cause_time: datetime | None
    created_at: datetime
    ended_at: datetime | None
    exit_reason: str | None
    rejection_reason: str | None
