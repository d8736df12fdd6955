"""Each person's consent state at the provider, replayed from the requests the
sandbox accepted (it keeps no per-profile subscription state of its own), and
the state our own consent state must leave there.

Klaviyo's rules, as the sandbox stands in for them: a subscription create job
subscribes the channels it names and lifts a suppression (the only call that
does, short of a suppression delete job); a subscription delete job
unsubscribes them; a suppression create job suppresses. To follow a new kind
of call, add its path to TRANSITIONS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dispatcher.sandbox import Sandbox
from tests.system.consent_traffic import ConsentState


@dataclass(frozen=True)
class ProviderConsent:
    email_subscribed: bool = False
    suppressed: bool = False


def _email_consent(profile: dict[str, Any]) -> str | None:
    consent: str | None = (
        profile.get("subscriptions", {}).get("email", {}).get("marketing", {}).get("consent")
    )
    return consent


def _subscribe(state: ProviderConsent, profile: dict[str, Any]) -> ProviderConsent:
    if _email_consent(profile) != "SUBSCRIBED":
        return state
    return ProviderConsent(email_subscribed=True, suppressed=False)


def _unsubscribe(state: ProviderConsent, profile: dict[str, Any]) -> ProviderConsent:
    if _email_consent(profile) != "UNSUBSCRIBED":
        return state
    return replace(state, email_subscribed=False)


def _suppress(state: ProviderConsent, profile: dict[str, Any]) -> ProviderConsent:
    return replace(state, suppressed=True)


def _unsuppress(state: ProviderConsent, profile: dict[str, Any]) -> ProviderConsent:
    return replace(state, suppressed=False)


TRANSITIONS: dict[str, Callable[[ProviderConsent, dict[str, Any]], ProviderConsent]] = {
    "/api/profile-subscription-bulk-create-jobs": _subscribe,
    "/api/profile-subscription-bulk-delete-jobs": _unsubscribe,
    "/api/profile-suppression-bulk-create-jobs": _suppress,
    "/api/profile-suppression-bulk-delete-jobs": _unsuppress,
}


def _profiles(body: Any) -> list[dict[str, Any]]:
    data = body.get("data", {}) if isinstance(body, dict) else {}
    profiles = data.get("attributes", {}).get("profiles", {}).get("data", [])
    return [p.get("attributes", {}) for p in profiles]


def provider_consent(provider: Sandbox) -> dict[str, ProviderConsent]:
    """email (lower case) -> its state after every accepted request, in order."""
    states: dict[str, ProviderConsent] = {}
    for request in sorted(provider.requests(), key=lambda r: r["seq"]):
        transition = TRANSITIONS.get(request["path"])
        if transition is None:
            continue
        for profile in _profiles(request["body"]):
            email = str(profile.get("email", "")).lower()
            states[email] = transition(states.get(email, ProviderConsent()), profile)
    return states


def expected_at_provider(ours: ConsentState) -> ProviderConsent:
    """A suppressed address gets nothing, whatever its opt-in says."""
    return ProviderConsent(
        email_subscribed=ours.email_opt_in and not ours.suppressed, suppressed=ours.suppressed
    )
