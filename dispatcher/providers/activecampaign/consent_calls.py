"""Our consent state in ActiveCampaign, which has no consent object of its own: it mails the
subscribers of a list, and nothing else. Our state maps onto it so:

    email and SMS opt-in, newsletter  ->  custom fields `email_marketing_consent`,
      membership (the record)             `sms_marketing_consent` (granted / withdrawn) and
                                          `newsletter_member` (true / false), by a contact sync
    may receive the newsletter        ->  newsletter list status 1 when a member with email
                                          consent and not suppressed, else 2 (unsubscribed;
                                          AC's own unsubscribe, kept with the list)
    SMS opt-in (with an SMS list)     ->  that list's status 1 / 2 (2 when suppressed)
    suppressed                        ->  the tag `marketing-suppressed` (the name is a
                                          setting) and list status 2 on both lists

As with Klaviyo every person's whole state is sent every time, in the order of OPERATIONS:
the record first (its sync also creates a missing contact and gives its id), then the list
statuses, then the tag is removed or added. Each call carries one person (`limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from dispatcher.providers.activecampaign.limits import (
    CONSENT_RECORD,
    LIST_STATUS,
    SUPPRESS,
    UNSUPPRESS,
)
from dispatcher.providers.base import ConsentState

OPERATIONS = (CONSENT_RECORD, LIST_STATUS, UNSUPPRESS, SUPPRESS)
EMAIL_CONSENT_FIELD = "email_marketing_consent"
SMS_CONSENT_FIELD = "sms_marketing_consent"
NEWSLETTER_FIELD = "newsletter_member"
GRANTED, WITHDRAWN = "granted", "withdrawn"
SUBSCRIBED, UNSUBSCRIBED = 1, 2
OwnerT = TypeVar("OwnerT")


@dataclass(frozen=True)
class Lists:
    """The lists consent is expressed on; None: not configured."""

    newsletter: str | None = None
    sms: str | None = None


@dataclass(frozen=True)
class ListStatuses:
    """The statuses to set on one person's lists (consent here; a segment's list, lists.py)."""

    email: str
    statuses: tuple[tuple[str, int], ...]  # (list id, status)


@dataclass
class ConsentCalls(Generic[OwnerT]):
    record: list[tuple[OwnerT, ConsentState]] = field(default_factory=list)
    lists: list[tuple[OwnerT, ListStatuses]] = field(default_factory=list)
    unsuppress: list[tuple[OwnerT, str]] = field(default_factory=list)
    suppress: list[tuple[OwnerT, str]] = field(default_factory=list)


def plan(states: Sequence[tuple[OwnerT, ConsentState]], lists: Lists) -> ConsentCalls[OwnerT]:
    calls: ConsentCalls[OwnerT] = ConsentCalls()
    for owner, state in states:
        email = state.change.email
        calls.record.append((owner, state))
        statuses = list_statuses(state, lists)
        if statuses:
            calls.lists.append((owner, ListStatuses(email, statuses)))
        (calls.suppress if state.suppressed else calls.unsuppress).append((owner, email))
    return calls


def list_statuses(state: ConsentState, lists: Lists) -> tuple[tuple[str, int], ...]:
    change = state.change
    statuses: list[tuple[str, int]] = []
    if lists.newsletter:
        mailable = state.newsletter_member and change.email_marketing and not state.suppressed
        statuses.append((lists.newsletter, SUBSCRIBED if mailable else UNSUBSCRIBED))
    if lists.sms and change.phone and (state.suppressed or change.sms_marketing is not None):
        texting = change.sms_marketing and not state.suppressed
        statuses.append((lists.sms, SUBSCRIBED if texting else UNSUBSCRIBED))
    return tuple(statuses)


def record_fields(state: ConsentState) -> dict[str, str]:
    """The consent record's custom fields (title -> text); a channel left as is is left out."""
    change = state.change
    fields = {NEWSLETTER_FIELD: "true" if state.newsletter_member else "false"}
    if change.email_marketing is not None:
        fields[EMAIL_CONSENT_FIELD] = GRANTED if change.email_marketing else WITHDRAWN
    if change.sms_marketing is not None:
        fields[SMS_CONSENT_FIELD] = GRANTED if change.sms_marketing else WITHDRAWN
    return fields


def opt_in(text: str | None) -> bool | None:
    """A consent field's text read back: True, False, or None when never recorded."""
    return {GRANTED: True, WITHDRAWN: False}.get((text or "").strip().lower())
