"""The provider calls that bring a person from whatever consent state the provider holds
to ours.

The provider's consent is changed only by four calls, and each one changes only part of
it (see dispatcher/sandbox/klaviyo/consent.py for Klaviyo's rules): a subscribe grants channels
and is the only call that lifts an unsubscribe-suppression; an unsuppress lifts only our
own suppression; an unsubscribe withdraws channels; a suppress blocks all marketing.
Since we cannot know what earlier batches left behind (a failover, a redelivery, a
change superseded within a batch), every person's whole state is sent every time:

    suppressed:      unsubscribe every channel, then suppress
    not suppressed:  subscribe the granted channels (joining the newsletter list when a
                     member), unsuppress unless email was just subscribed, and
                     unsubscribe the withdrawn channels

The calls run in the order of OPERATIONS (the client's `plan_consent` keeps it); a person
has at most one item in each, so that order is also the order of that person's calls. But
a person's calls leave the same state in any order, as they must: Klaviyo runs the jobs
they start in an order of its own. Each touches what the others of the person leave
alone: a subscribe and an unsubscribe name different channels; an unsuppress lifts only
our own suppression, which only a suppress adds, never planned with it; an email
unsubscribe's suppression is lifted only by an email subscribe, never planned with it
(tests/dispatcher/providers/klaviyo/test_consent_calls.py sends them shuffled).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from dispatcher.providers.base import ConsentChange, ConsentState

# The consent operations, by the name the gate and the metrics give their endpoint.
SUBSCRIBE, UNSUPPRESS, UNSUBSCRIBE, SUPPRESS = "subscribe", "unsuppress", "unsubscribe", "suppress"
OPERATIONS = (SUBSCRIBE, UNSUPPRESS, UNSUBSCRIBE, SUPPRESS)
OwnerT = TypeVar("OwnerT")


@dataclass
class ConsentCalls(Generic[OwnerT]):
    """Items per operation, each with the owner it is sent for."""

    subscribe: dict[str | None, list[tuple[OwnerT, ConsentChange]]] = field(default_factory=dict)
    unsuppress: list[tuple[OwnerT, str]] = field(default_factory=list)
    unsubscribe: list[tuple[OwnerT, ConsentChange]] = field(default_factory=list)
    suppress: list[tuple[OwnerT, str]] = field(default_factory=list)


def plan(
    states: Iterable[tuple[OwnerT, ConsentState]], newsletter_list_id: str | None
) -> ConsentCalls[OwnerT]:
    calls: ConsentCalls[OwnerT] = ConsentCalls()
    for owner, state in states:
        c = state.change
        if state.suppressed:
            withdrawn = ConsentChange(c.email, c.phone, False, False if c.phone else None)
            calls.unsubscribe.append((owner, withdrawn))
            calls.suppress.append((owner, c.email))
            continue
        granted = _channels(c, True)
        if granted is not None:
            list_id = newsletter_list_id if state.newsletter_member else None
            calls.subscribe.setdefault(list_id, []).append((owner, granted))
        if not c.email_marketing:
            calls.unsuppress.append((owner, c.email))
        withdrawn_channels = _channels(c, False)
        if withdrawn_channels is not None:
            calls.unsubscribe.append((owner, withdrawn_channels))
    return calls


def _channels(c: ConsentChange, wanted: bool) -> ConsentChange | None:
    """The change naming only the channels whose consent is `wanted` (None: no such channel).
    SMS counts only with a phone number: without one the provider has no SMS channel."""
    email = wanted if c.email_marketing is wanted else None
    sms = wanted if c.phone and c.sms_marketing is wanted else None
    if email is None and sms is None:
        return None
    return ConsentChange(c.email, c.phone, email, sms)
