"""Whether a contact may enter a flow: pure rules over the contact's earlier
decisions in it, so they are tested apart from the database (Properties 12,
13). The database backs the one rule a race could break: at most one running
enrolment per flow, contact and key (a unique index)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.flows.definitions import Entry, EntryRule, State

# Why an attempt was refused (Enrolment.rejection_reason).
NOT_LIVE = "flow_not_live"
SUPPRESSED = "suppressed"
NO_CONSENT = "no_consent"
ALREADY_ENROLLED = "already_enrolled"
ENTERED_BEFORE = "entered_before"
COOLING_DOWN = "cooling_down"


@dataclass(frozen=True, slots=True)
class Prior:
    """An earlier enrolment of the contact in the flow (refused attempts are
    not enrolments and count for nothing)."""

    entry_key: str
    state: State
    created_at: datetime


def refusal(
    entry: Entry,
    key: str,
    priors: Iterable[Prior],
    now: datetime,
    *,
    live: bool,
    suppressed: bool,
    consented: bool = True,
) -> str | None:
    """Why the contact may not enter now with `key`, or None when they may.

    Keys matter only under ONCE_PER_KEY; there an empty key (an event without
    the property) has no history of its own to be once per, so it may enter
    again once no keyless enrolment is running."""
    if not live:
        return NOT_LIVE
    if suppressed:
        return SUPPRESSED
    if not consented:  # consent is never assumed: no email marketing without it
        return NO_CONSENT
    per_key = entry.rule is EntryRule.ONCE_PER_KEY
    relevant: Sequence[Prior] = [p for p in priors if not per_key or p.entry_key == key]
    if any(p.state is State.ACTIVE for p in relevant):
        return ALREADY_ENROLLED
    if not relevant:
        return None
    if entry.rule is EntryRule.ONCE_PER_CONTACT or (per_key and key):
        return ENTERED_BEFORE
    if entry.rule is EntryRule.REENTER_AFTER_COOLDOWN:
        assert entry.cooldown is not None
        newest = max(p.created_at for p in relevant)
        if now - newest < entry.cooldown:
            return COOLING_DOWN
    return None


def entry_key(entry: Entry, body: dict[str, Any] | None) -> str:
    """The key an enrolment is per: the trigger event's `key_property` as
    text, "" when the rule has none or the event lacks it."""
    if entry.rule is not EntryRule.ONCE_PER_KEY or not entry.key_property or body is None:
        return ""
    value: Any = body
    for part in entry.key_property.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    return str(value)[:256]
