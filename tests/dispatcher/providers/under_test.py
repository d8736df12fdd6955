"""Either provider on its sandbox, behind one face, for the tests that hold for both: a client
factory, where a profile upsert goes (to fault it), and what the provider recorded (events by
our id, a person's consent in the terms of tests.dispatcher.helpers.expected_consent)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.activecampaign.consent_calls import (
    EMAIL_CONSENT_FIELD,
    GRANTED,
    SMS_CONSENT_FIELD,
)
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import start_sandbox
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.dispatcher.helpers import API_KEY, provider_consent

PROVIDERS = ("klaviyo", "activecampaign")
AC_KEY, AC_ACTID, AC_EVENT_KEY = "ac-key", "1234", "event-key"
SUPPRESSION_TAG = "marketing-suppressed"


@dataclass
class ProviderUnderTest:
    name: str
    client: Callable[[], Provider]
    profile_path: str  # where a profile upsert goes, to fault it
    event_path: str  # a prefix of where events go
    add_fault: Callable[..., None]
    delivered: Callable[[], dict[str, int]]
    consent: Callable[[str], dict[str, bool]]
    requests: Callable[[], list[dict[str, Any]]]  # every request it recorded, in order
    newsletter_list_id: str | None = None


@contextmanager
def provider_under_test(name: str) -> Iterator[ProviderUnderTest]:
    if name == "klaviyo":
        with start_sandbox(api_key=API_KEY) as sandbox:
            yield ProviderUnderTest(
                name,
                lambda: KlaviyoClient(API_KEY, base_url=sandbox.base_url),
                "/api/profile-import",
                "/api/event",
                sandbox.add_fault,
                sandbox.event_counts,
                lambda email: provider_consent(sandbox.profiles(email=email)),
                sandbox.requests,
            )
        return
    with activecampaign_sandbox() as ac:
        newsletter = new_list(ac, "Newsletter")
        yield ProviderUnderTest(
            name,
            lambda: ActiveCampaignClient(
                ac.base_url, AC_KEY, TrackingAccount(AC_ACTID, AC_EVENT_KEY, ac.tracking_url)
            ),
            "/api/3/contact/sync",
            "/event",
            ac.add_fault,
            lambda: tracked_event_counts(ac),
            lambda email: activecampaign_consent(ac, email, newsletter),
            ac.requests,
            newsletter,
        )


@contextmanager
def activecampaign_sandbox() -> Iterator[ActiveCampaignSandbox]:
    """The test account's ActiveCampaign sandbox, without rate limits, its imports
    done at once."""
    with start_activecampaign_sandbox(
        api_key=AC_KEY,
        tracking_actid=AC_ACTID,
        tracking_key=AC_EVENT_KEY,
        rate_limits=False,
        import_delay_s=0.0,
    ) as ac:
        yield ac


def _api(sandbox: ActiveCampaignSandbox, method: str, path: str, body: Any = None) -> Any:
    """One call of the account's API. With limits on, the test shares the
    account's 5 requests a second with the dispatcher: a 429 is waited out
    (its Retry-After) and the call made again, as any client of it would."""
    with httpx.Client(base_url=sandbox.base_url + "/api/3", timeout=10) as http:
        for _ in range(_THROTTLED_TRIES):
            # The account's key here; a sandbox told no key takes any.
            response = http.request(method, path, json=body, headers={"Api-Token": AC_KEY})
            if response.status_code != 429:
                break
            time.sleep(_retry_after_s(response))
        response.raise_for_status()
        return response.json()


_THROTTLED_TRIES = 10


def _retry_after_s(response: httpx.Response) -> float:
    """The sandbox's Retry-After in seconds; a second when it is missing or a date."""
    try:
        return float(response.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0


def new_list(sandbox: ActiveCampaignSandbox, name: str) -> str:
    """A new mailing list of the account; its id."""
    body = {
        "list": {
            "name": name,
            "stringid": name.lower(),
            "sender_url": "https://shop.example",
            "sender_reminder": "You signed up at checkout",
        }
    }
    return str(_api(sandbox, "POST", "/lists", body)["list"]["id"])


def tracked_event_counts(sandbox: ActiveCampaignSandbox) -> dict[str, int]:
    """Tracked events by the event id their eventdata carries."""
    ids = (json.loads(e["eventdata"])["event_id"] for e in sandbox.view("events"))
    return dict(Counter(ids))


def field_titles(sandbox: ActiveCampaignSandbox) -> dict[str, str]:
    """Custom field id -> title, read from the account (no API call: none of its budget)."""
    with sandbox.state.account() as account:
        return {str(row["id"]): str(row["title"]) for row in account.fields}


def activecampaign_consent(
    sandbox: ActiveCampaignSandbox, email: str, newsletter: str
) -> dict[str, bool]:
    """A person's consent on ActiveCampaign in Klaviyo's terms: a channel is subscribed when
    its record says granted and the contact is not tagged suppressed; mail reaches them when
    they are subscribed to the newsletter list."""
    contacts = sandbox.contacts(email)
    if not contacts:
        return {"email": False, "sms": False, "suppressed": False, "can_receive_email": False}
    (contact,) = contacts
    titles = field_titles(sandbox)
    fields = {titles[field_id]: text for field_id, text in contact["fields"].items()}
    suppressed = SUPPRESSION_TAG in contact["tags"]
    return {
        "email": fields.get(EMAIL_CONSENT_FIELD) == GRANTED and not suppressed,
        "sms": fields.get(SMS_CONSENT_FIELD) == GRANTED and not suppressed,
        "suppressed": suppressed,
        "can_receive_email": contact["lists"].get(newsletter) == "1",
    }
