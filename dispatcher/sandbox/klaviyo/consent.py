"""The fake account's marketing consent per profile, as Klaviyo's consent jobs change it.

Documented in shared/PROVIDERS-API.md, "Consent and suppression jobs" (checked row by row in
tests/dispatcher/providers/klaviyo/test_consent_calls.py):

- subscribe sets each named channel's marketing consent to SUBSCRIBED and clears the
  UNSUBSCRIBE, SPAM_REPORT and USER_SUPPRESSED suppressions (line 243); a bounce or an invalid
  address, which that line does not name, stays.
- unsuppress removes USER_SUPPRESSED and nothing else: INVALID_EMAIL, HARD_BOUNCE and
  unsubscribes stay (line 260).
- Profiles of an unsubscribe are matched by email or phone only (line 252).
- add_profiles_to_list and remove_profiles_from_list ("Lists and segments", lines 39-40;
  served by list_routes.py) put profiles into a list and take them out; removing leaves
  consent unchanged (line 40).

Beyond what that page says, the model decides (the tests pin these choices, marked BEYOND; a
real account could differ):

- an unsubscribe of the email channel adds an UNSUBSCRIBE suppression (the page says nothing
  of suppressions for unsubscribes, only that an unsuppress leaves "unsubscribes" in place);
- a suppression job adds USER_SUPPRESSED (the page names no reason for it; it is the one an
  unsuppress removes);
- subscribe clears those suppressions only when the job subscribes the email channel (the
  page does not say whether an SMS-only subscribe does);
- with a list relationship the profile joins that list, and only remove_profiles_from_list
  takes it out of one; adding to a list changes no consent either (the page says so of
  removing only);
- a profile can receive email marketing only when its email consent is SUBSCRIBED and it has
  no suppression at all (the page does not describe can_receive_email_marketing).

Profiles are keyed by lower-cased email, or by phone number when a job names no email; a job
naming a profile the account does not know creates it, as Klaviyo does.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

NEVER_SUBSCRIBED, SUBSCRIBED, UNSUBSCRIBED = "NEVER_SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED"
USER_SUPPRESSED, UNSUBSCRIBE = "USER_SUPPRESSED", "UNSUBSCRIBE"
HARD_BOUNCE, SPAM_COMPLAINT = "HARD_BOUNCE", "SPAM_COMPLAINT"
LIFTED_BY_SUBSCRIBE = frozenset({UNSUBSCRIBE, "SPAM_REPORT", USER_SUPPRESSED})
CHANNELS = ("email", "sms")
CONSENTS = (NEVER_SUBSCRIBED, SUBSCRIBED, UNSUBSCRIBED)
SUPPRESSION_REASONS = frozenset(
    {HARD_BOUNCE, "INVALID_EMAIL", SPAM_COMPLAINT, UNSUBSCRIBE, USER_SUPPRESSED}
)

SUBSCRIBE_PATH = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE_PATH = "/api/profile-subscription-bulk-delete-jobs"
SUPPRESS_PATH = "/api/profile-suppression-bulk-create-jobs"
UNSUPPRESS_PATH = "/api/profile-suppression-bulk-delete-jobs"


@dataclass(slots=True)  # no __dict__ per profile: an account may hold a million
class ProfileConsent:
    email: str | None
    phone_number: str | None = None
    consent: dict[str, str] = field(
        default_factory=lambda: dict.fromkeys(CHANNELS, NEVER_SUBSCRIBED)
    )
    suppressions: dict[str, str] = field(default_factory=dict)  # reason -> when
    lists: set[str] = field(default_factory=set)
    consented_at: dict[str, str] = field(default_factory=dict)  # channel -> last change

    def can_receive_email_marketing(self) -> bool:
        return self.consent["email"] == SUBSCRIBED and not self.suppressions

    def subscriptions(self) -> dict[str, Any]:
        """As Klaviyo's profile shows them (`additional-fields[profile]=subscriptions`)."""
        suppression = [{"reason": r, "timestamp": t} for r, t in sorted(self.suppressions.items())]
        email_at, sms_at = self.consented_at.get("email"), self.consented_at.get("sms")
        return {
            "email": {
                "marketing": {
                    "can_receive_email_marketing": self.can_receive_email_marketing(),
                    "consent": self.consent["email"],
                    "consent_timestamp": email_at,
                    "last_updated": email_at,
                    "method": None,
                    "method_detail": None,
                    "custom_method_detail": None,
                    "double_optin": None,
                    "suppression": suppression,
                    "list_suppressions": [],
                }
            },
            "sms": {
                "marketing": {
                    "can_receive_sms_marketing": self.consent["sms"] == SUBSCRIBED,
                    "consent": self.consent["sms"],
                    "consent_timestamp": sms_at,
                    "method": None,
                    "method_detail": None,
                    "last_updated": sms_at,
                }
            },
        }

    def to_json(self) -> dict[str, Any]:
        suppression = [{"reason": r, "timestamp": t} for r, t in sorted(self.suppressions.items())]
        email = {
            "consent": self.consent["email"],
            "suppression": suppression,
            "can_receive_email_marketing": self.can_receive_email_marketing(),
        }
        return {
            "email": self.email,
            "phone_number": self.phone_number,
            "subscriptions": {
                "email": {"marketing": email},
                "sms": {"marketing": {"consent": self.consent["sms"]}},
            },
            "lists": sorted(self.lists),
        }


class AudienceMember(NamedTuple):
    """A list member's reachability as the account holds it (consent.audience)."""

    email: str | None
    phone_number: str | None
    email_consent: str
    sms_consent: str
    suppressions: tuple[str, ...]  # reasons, sorted


@dataclass(frozen=True)
class Planted:
    """What POST /_sandbox/profiles sets; None leaves a part as it is."""

    consent: dict[str, str]  # channel -> NEVER_SUBSCRIBED | SUBSCRIBED | UNSUBSCRIBED
    suppressions: dict[str, str] | None  # reason -> timestamp
    lists: list[str] | None

    def __post_init__(self) -> None:
        for channel, value in self.consent.items():
            if channel not in CHANNELS or value not in CONSENTS:
                raise ValueError(f"consent {channel}={value!r}: channels {CHANNELS}, {CONSENTS}")
        unknown = set(self.suppressions or ()) - SUPPRESSION_REASONS
        if unknown:
            raise ValueError(f"unknown suppression reasons {sorted(unknown)}")


class ConsentBook:
    """Applies accepted consent jobs (already validated) and answers what each profile holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[str, ProfileConsent] = {}

    @staticmethod
    def applies_to(path: str) -> bool:
        return path in _CHANGES

    def apply(self, path: str, document: dict[str, Any], at: str) -> None:
        change = _CHANGES.get(path)
        if change is None:
            return
        data = document["data"]
        list_id = _list_id(data)
        with self._lock:
            for item in data["attributes"]["profiles"]["data"]:
                attributes = item["attributes"]
                profile = self._profile(attributes)
                change(profile, attributes.get("subscriptions") or {}, list_id, at)

    def _profile(self, attributes: dict[str, Any]) -> ProfileConsent:
        email, phone = attributes.get("email"), attributes.get("phone_number")
        key = email.lower() if email else f"phone:{phone}"
        profile = self._profiles.get(key)
        if profile is None:  # (not setdefault: it would build a record for each known one)
            profile = self._profiles[key] = ProfileConsent(email)
        if phone:
            profile.phone_number = phone
        return profile

    def forget(self, email: str | None, phone: str | None) -> None:
        """A deleted profile's consent, suppression and list memberships go with it."""
        with self._lock:
            for key in ([email.lower()] if email else []) + ([f"phone:{phone}"] if phone else []):
                self._profiles.pop(key, None)

    def find(self, email: str | None, phone: str | None) -> ProfileConsent | None:
        """A copy of the consent of the profile with this email (or, without one, phone)."""
        key = email.lower() if email else f"phone:{phone}"
        with self._lock:
            profile = self._profiles.get(key)
            return None if profile is None else deepcopy(profile)

    def join_lists(self, profiles: list[dict[str, Any]], list_ids: list[str]) -> None:
        """Imported profiles join lists (consent unchanged)."""
        if not list_ids:
            return
        with self._lock:
            for attributes in profiles:
                if attributes.get("email") or attributes.get("phone_number"):
                    self._profile(attributes).lists.update(list_ids)

    def change_lists(self, identities: list[dict[str, Any]], list_id: str, member: bool) -> None:
        """Profiles (by email or phone) join the list, or leave it; consent is unchanged."""
        with self._lock:
            for attributes in identities:
                lists = self._profile(attributes).lists
                if member:
                    lists.add(list_id)
                else:
                    lists.discard(list_id)

    def members(self, list_id: str) -> list[tuple[str | None, str | None]]:
        """(email, phone number) of each profile in the list, in the order the book first
        knew them."""
        with self._lock:
            profiles = self._profiles.values()
            return [(p.email, p.phone_number) for p in profiles if list_id in p.lists]

    def audience(
        self, included: Collection[str], excluded: Collection[str]
    ) -> list[AudienceMember]:
        """Each profile in any `included` list and in no `excluded` one (once, however many
        of the lists hold it), in the order the book first knew them: a campaign's
        recipients. One pass under the lock, no copies of the records (500,000 members)."""
        wanted, unwanted = frozenset(included), frozenset(excluded)
        with self._lock:
            return [
                AudienceMember(
                    p.email,
                    p.phone_number,
                    p.consent["email"],
                    p.consent["sms"],
                    tuple(sorted(p.suppressions)) if p.suppressions else (),
                )
                for p in self._profiles.values()
                if not wanted.isdisjoint(p.lists) and unwanted.isdisjoint(p.lists)
            ]

    def engaged(
        self, attributes: dict[str, Any], channel: str | None, suppression: str | None, at: str
    ) -> None:
        """What a person did with a message (webhook_events.py): `channel`'s marketing
        consent withdrawn, `suppression` added (either may be None)."""
        with self._lock:
            profile = self._profile(attributes)
            if channel is not None:
                profile.consent[channel] = UNSUBSCRIBED
                profile.consented_at[channel] = at
            if suppression is not None:
                profile.suppressions.setdefault(suppression, at)

    def plant(self, attributes: dict[str, Any], planted: Planted) -> ProfileConsent:
        """Set consent, suppressions and lists as given: drift for reconcile tests."""
        with self._lock:
            profile = self._profile(attributes)
            profile.consent.update(planted.consent)
            if planted.suppressions is not None:
                profile.suppressions = dict(planted.suppressions)
            if planted.lists is not None:
                profile.lists = set(planted.lists)
            return deepcopy(profile)

    def view(self, email: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if email is None:
                return [p.to_json() for p in self._profiles.values()]
            profile = self._profiles.get(email.lower())
            return [] if profile is None else [profile.to_json()]


def _list_id(data: dict[str, Any]) -> str | None:
    target = (data.get("relationships") or {}).get("list", {}).get("data")
    return None if target is None else str(target["id"])


def _subscribe(
    profile: ProfileConsent, channels: dict[str, Any], list_id: str | None, at: str
) -> None:
    for channel in channels:
        profile.consent[channel] = SUBSCRIBED
        profile.consented_at[channel] = at
    if "email" in channels:
        for reason in LIFTED_BY_SUBSCRIBE:
            profile.suppressions.pop(reason, None)
    if list_id is not None:
        profile.lists.add(list_id)


def _unsubscribe(
    profile: ProfileConsent, channels: dict[str, Any], list_id: str | None, at: str
) -> None:
    for channel in channels:
        profile.consent[channel] = UNSUBSCRIBED
        profile.consented_at[channel] = at
    if "email" in channels:
        profile.suppressions.setdefault(UNSUBSCRIBE, at)


def _suppress(
    profile: ProfileConsent, channels: dict[str, Any], list_id: str | None, at: str
) -> None:
    profile.suppressions.setdefault(USER_SUPPRESSED, at)


def _unsuppress(
    profile: ProfileConsent, channels: dict[str, Any], list_id: str | None, at: str
) -> None:
    profile.suppressions.pop(USER_SUPPRESSED, None)


_CHANGES = {
    SUBSCRIBE_PATH: _subscribe,
    UNSUBSCRIBE_PATH: _unsubscribe,
    SUPPRESS_PATH: _suppress,
    UNSUPPRESS_PATH: _unsuppress,
}
