"""The consent calls bring the sandbox's Klaviyo model from any state to ours.

A random history of provider calls puts a person's profile in some state (subscribed or not
per channel, suppressed by us or by an unsubscribe, on a list or not); the calls planned for a
random state of ours, sent in order through the real client over HTTP, must leave the profile
equal to that state whatever the history was.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.base import ConsentChange, ConsentState
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from dispatcher.sandbox.klaviyo.consent import (
    SUBSCRIBE_PATH,
    SUPPRESS_PATH,
    UNSUBSCRIBE_PATH,
    UNSUPPRESS_PATH,
    ConsentBook,
    ProfileConsent,
)
from dispatcher.sandbox.klaviyo.validation import ROUTES
from tests.dispatcher.helpers import expected_consent, headers, provider_consent, with_client

PHONE = "+15005550006"
LIST_ID = "LstNews"
channel = st.sampled_from([None, True, False])
history_step = st.one_of(
    st.tuples(st.just("subscribe"), channel, channel, st.sampled_from([None, LIST_ID])),
    st.tuples(st.just("unsubscribe"), channel, channel, st.none()),
    st.tuples(st.sampled_from(["suppress", "unsuppress"]), st.none(), st.none(), st.none()),
)


async def _history(client: KlaviyoClient, email: str, steps: list[Any]) -> None:
    for operation, email_marketing, sms_marketing, list_id in steps:
        if operation == "suppress":
            await client.suppress([email])
        elif operation == "unsuppress":
            await client.unsuppress([email])
        else:
            wanted = operation == "subscribe"
            change = ConsentChange(
                email,
                PHONE,
                wanted if email_marketing else None,
                wanted if sms_marketing else None,
            )
            if operation == "subscribe":
                await client.subscribe([change], list_id)
            else:
                await client.unsubscribe([change])


async def _send(client: KlaviyoClient, ours: ConsentState, order: random.Random) -> None:
    """Every call the client plans, in any order: Klaviyo runs the jobs they start in
    an order of its own."""
    calls = client.plan_consent([(0, ours)], LIST_ID)
    order.shuffle(calls)
    for call in calls:
        await call.send(call.owners)


@given(
    history=st.lists(history_step, max_size=6),
    email_opt_in=st.booleans(),
    sms_opt_in=st.booleans(),
    member=st.booleans(),
    suppressed=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_planned_calls_bring_any_provider_state_to_ours_in_any_order(
    sandbox: Sandbox,
    http: httpx.Client,
    history: list[Any],
    email_opt_in: bool,
    sms_opt_in: bool,
    member: bool,
    suppressed: bool,
    order: random.Random,
) -> None:
    email = f"p-{uuid.uuid4().hex[:12]}@example.com"
    ours = ConsentState(ConsentChange(email, PHONE, email_opt_in, sms_opt_in), member, suppressed)

    async def run(client: KlaviyoClient) -> None:
        await _history(client, email, history)
        await _send(client, ours, order)

    with_client(sandbox, run)

    shown = provider_consent(http.get("/_sandbox/profiles", params={"email": email}).json())
    assert shown == expected_consent(email=email_opt_in, sms=sms_opt_in, suppressed=suppressed)
    assert sandbox.rejections() == []


def test_profiles_endpoint_follows_klaviyos_suppression_rules(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    email = "ada@example.com"

    def profile() -> dict[str, Any]:
        (only,) = http.get("/_sandbox/profiles", params={"email": email.upper()}).json()
        marketing: dict[str, Any] = only["subscriptions"]["email"]["marketing"]
        return marketing

    def reasons() -> list[str]:
        return [s["reason"] for s in profile()["suppression"]]

    async def unsubscribe_and_suppress(client: KlaviyoClient) -> None:
        await client.unsubscribe([ConsentChange(email, email_marketing=False)])
        await client.suppress([email])

    with_client(sandbox, unsubscribe_and_suppress)
    assert profile()["consent"] == "UNSUBSCRIBED"
    assert reasons() == ["UNSUBSCRIBE", "USER_SUPPRESSED"]
    with_client(sandbox, lambda c: c.unsuppress([email]))
    assert reasons() == ["UNSUBSCRIBE"], "unsuppress lifts only USER_SUPPRESSED"
    with_client(sandbox, lambda c: c.suppress([email]))
    with_client(sandbox, lambda c: c.subscribe([ConsentChange(email, email_marketing=True)], "L1"))
    assert reasons() == [], "a subscribe lifts unsubscribes and our suppression"
    assert profile()["consent"] == "SUBSCRIBED" and profile()["can_receive_email_marketing"]
    (listed,) = http.get("/_sandbox/profiles").json()
    assert listed["lists"] == ["L1"]


def test_a_phone_only_sms_subscription_is_kept_under_the_phone(http: httpx.Client) -> None:
    profile = {
        "phone_number": PHONE,
        "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}},
    }
    body = {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": profile}]}},
        }
    }
    response = http.post(
        "/api/profile-subscription-bulk-create-jobs", content=json.dumps(body), headers=headers()
    )
    assert response.status_code == 202
    (kept,) = [p for p in http.get("/_sandbox/profiles").json() if p["phone_number"] == PHONE]
    assert kept["email"] is None
    assert kept["subscriptions"]["sms"]["marketing"]["consent"] == "SUBSCRIBED"


def test_an_unsuppress_job_must_say_so(http: httpx.Client) -> None:
    profiles = {"data": [{"type": "profile", "attributes": {"email": "ada@example.com"}}]}
    body = {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {"profiles": profiles},
        }
    }
    response = http.post(
        "/api/profile-suppression-bulk-delete-jobs", content=json.dumps(body), headers=headers()
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/type"}
    assert http.get("/_sandbox/profiles").json() == []


# --- The sandbox's Klaviyo model against the documented facts -------------------------------
# Each row cites the line of shared/PROVIDERS-API.md ("Consent and suppression jobs") it checks.
# Rows marked BEYOND check what the model decides where that page says nothing; they pin the
# model's choice (explained in dispatcher/sandbox/klaviyo/consent.py), not a fact about Klaviyo.

JOB_TYPES = {
    SUBSCRIBE_PATH: "profile-subscription-bulk-create-job",
    UNSUBSCRIBE_PATH: "profile-subscription-bulk-delete-job",
    SUPPRESS_PATH: "profile-suppression-bulk-create-job",
    UNSUPPRESS_PATH: "profile-suppression-bulk-delete-job",
}
CONSENT_OF = {SUBSCRIBE_PATH: "SUBSCRIBED", UNSUBSCRIBE_PATH: "UNSUBSCRIBED"}
ALL_LIFTED_BY_SUBSCRIBE = {"UNSUBSCRIBE", "SPAM_REPORT", "USER_SUPPRESSED"}


def _profile(path: str, email: str, channels: tuple[str, ...], consent: str | None = None) -> Any:
    """A job's profile: just the email for the suppression jobs; for the subscription jobs
    each channel's marketing consent (by default the one the endpoint takes)."""
    attributes: dict[str, Any] = {"email": email}
    if path in CONSENT_OF:
        setting = {"marketing": {"consent": consent or CONSENT_OF[path]}}
        attributes["subscriptions"] = dict.fromkeys(channels, setting)
        if "sms" in channels:
            attributes["phone_number"] = PHONE
    return {"type": "profile", "attributes": attributes}


def _job(path: str, profiles: list[Any], list_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": JOB_TYPES[path], "attributes": {"profiles": {"data": profiles}}}
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


@dataclass(frozen=True)
class Rule:
    job: str  # the path of the job applied
    before: frozenset[str]  # the profile's email suppression reasons before it
    after: frozenset[str]  # ... and after it
    consent_after: str  # the email channel's marketing consent after it (it was UNSUBSCRIBED)
    channels: tuple[str, ...] = ("email",)


def _rule(job: str, before: set[str], after: set[str], consent: str, **more: Any) -> Rule:
    return Rule(job, frozenset(before), frozenset(after), consent, **more)


SUB, UNSUB = "SUBSCRIBED", "UNSUBSCRIBED"
RULES = {
    # :243 "the call clears UNSUBSCRIBE, SPAM_REPORT and USER_SUPPRESSED suppressions"
    "subscribe lifts UNSUBSCRIBE": _rule(SUBSCRIBE_PATH, {"UNSUBSCRIBE"}, set(), SUB),
    "subscribe lifts SPAM_REPORT": _rule(SUBSCRIBE_PATH, {"SPAM_REPORT"}, set(), SUB),
    "subscribe lifts USER_SUPPRESSED": _rule(SUBSCRIBE_PATH, {"USER_SUPPRESSED"}, set(), SUB),
    "subscribe lifts all three": _rule(SUBSCRIBE_PATH, ALL_LIFTED_BY_SUBSCRIBE, set(), SUB),
    # :243 names only those three, so a bounce and an invalid address stay
    "subscribe keeps HARD_BOUNCE": _rule(
        SUBSCRIBE_PATH, {"HARD_BOUNCE", "USER_SUPPRESSED"}, {"HARD_BOUNCE"}, SUB
    ),
    "subscribe keeps INVALID_EMAIL": _rule(
        SUBSCRIBE_PATH, {"INVALID_EMAIL", "UNSUBSCRIBE"}, {"INVALID_EMAIL"}, SUB
    ),
    # :260 "Unsuppressing removes only USER_SUPPRESSED; INVALID_EMAIL, HARD_BOUNCE and
    # unsubscribes stay." (and so it changes no consent)
    "unsuppress lifts USER_SUPPRESSED": _rule(UNSUPPRESS_PATH, {"USER_SUPPRESSED"}, set(), UNSUB),
    "unsuppress keeps INVALID_EMAIL": _rule(
        UNSUPPRESS_PATH, {"USER_SUPPRESSED", "INVALID_EMAIL"}, {"INVALID_EMAIL"}, UNSUB
    ),
    "unsuppress keeps HARD_BOUNCE": _rule(
        UNSUPPRESS_PATH, {"USER_SUPPRESSED", "HARD_BOUNCE"}, {"HARD_BOUNCE"}, UNSUB
    ),
    "unsuppress keeps UNSUBSCRIBE": _rule(
        UNSUPPRESS_PATH, {"USER_SUPPRESSED", "UNSUBSCRIBE"}, {"UNSUBSCRIBE"}, UNSUB
    ),
    "unsuppress keeps SPAM_REPORT": _rule(  # :260 "removes only USER_SUPPRESSED"
        UNSUPPRESS_PATH, {"USER_SUPPRESSED", "SPAM_REPORT"}, {"SPAM_REPORT"}, UNSUB
    ),
    # BEYOND: :246-252 say nothing of suppressions; the model has an email unsubscribe add an
    # UNSUBSCRIBE suppression (the kind :243 lifts and :260 keeps)
    "BEYOND email unsubscribe adds UNSUBSCRIBE": _rule(
        UNSUBSCRIBE_PATH, set(), {"UNSUBSCRIBE"}, UNSUB
    ),
    "BEYOND sms unsubscribe adds no email suppression": _rule(
        UNSUBSCRIBE_PATH, set(), set(), UNSUB, channels=("sms",)
    ),
    # BEYOND: :253-256 name no reason for a suppression job; the model gives it USER_SUPPRESSED,
    # the reason :260 lets an unsuppress remove
    "BEYOND suppress adds USER_SUPPRESSED": _rule(
        SUPPRESS_PATH, {"HARD_BOUNCE"}, {"HARD_BOUNCE", "USER_SUPPRESSED"}, UNSUB
    ),
    # BEYOND: :243 does not say which channels' subscribe clears them; the model clears them
    # only when the job subscribes the email channel
    "BEYOND sms subscribe lifts no email suppression": _rule(
        SUBSCRIBE_PATH, {"USER_SUPPRESSED"}, {"USER_SUPPRESSED"}, UNSUB, channels=("sms",)
    ),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_a_consent_job_changes_suppressions_as_documented(rule: Rule) -> None:
    book = ConsentBook()
    email = "ada@example.com"
    # No job makes a bounce, a spam report or an invalid address (Klaviyo records those when it
    # delivers), so the profile's earlier state is put into the book directly.
    seeded = ProfileConsent(email, suppressions=dict.fromkeys(rule.before, "2026-01-01T00:00:00"))
    seeded.consent["email"] = UNSUB
    book._profiles[email] = seeded
    document = _job(rule.job, [_profile(rule.job, email, rule.channels)])
    ROUTES[rule.job].validate(document)  # a body the sandbox accepts, as the server checks first

    book.apply(rule.job, document, "2026-02-01T00:00:00")

    (shown,) = book.view(email)
    marketing = shown["subscriptions"]["email"]["marketing"]
    assert {s["reason"] for s in marketing["suppression"]} == rule.after
    assert marketing["consent"] == rule.consent_after


# BEYOND: PROVIDERS-API.md does not describe can_receive_email_marketing; the model allows
# email marketing only to a SUBSCRIBED email channel without any suppression.
@pytest.mark.parametrize(
    ("consent", "reasons", "can_receive"),
    [
        (SUB, set(), True),
        (SUB, {"HARD_BOUNCE"}, False),
        (SUB, {"USER_SUPPRESSED"}, False),
        (UNSUB, set(), False),
        ("NEVER_SUBSCRIBED", set(), False),
    ],
)
def test_email_marketing_needs_a_subscription_and_no_suppression(
    consent: str, reasons: set[str], can_receive: bool
) -> None:
    profile = ProfileConsent("ada@example.com", suppressions=dict.fromkeys(reasons, "t"))
    profile.consent["email"] = consent
    email = profile.to_json()["subscriptions"]["email"]["marketing"]
    assert email["can_receive_email_marketing"] is can_receive


def _emails(count: int) -> list[str]:
    return [f"p{i}@example.com" for i in range(count)]


def _request(path: str, count: int, **options: Any) -> tuple[str, dict[str, Any]]:
    channels = options.pop("channels", ("email",))
    profiles = [_profile(path, e, channels, **options) for e in _emails(count)]
    return path, _job(path, profiles)


def _by_id_only(path: str) -> tuple[str, dict[str, Any]]:
    """An unsubscribe naming its profile by id, with no email or phone number."""
    subscriptions = {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    profile = {
        "type": "profile",
        "id": "01HPROFILE",
        "attributes": {"subscriptions": subscriptions},
    }
    return path, _job(path, [profile])


PROFILES = "/data/attributes/profiles/data"
FIRST = f"{PROFILES}/0/attributes"
# name -> (the request, None when it is accepted or the pointer of the 400 refusing it)
REQUESTS = {
    # :229-230 bulk_subscribe_profiles "≤1,000 profiles"
    "subscribe 1,000 profiles": (_request(SUBSCRIBE_PATH, 1000), None),
    "subscribe 1,001 profiles": (_request(SUBSCRIBE_PATH, 1001), PROFILES),
    # :246-247 bulk_unsubscribe_profiles "≤100 profiles"
    "unsubscribe 100 profiles": (_request(UNSUBSCRIBE_PATH, 100), None),
    "unsubscribe 101 profiles": (_request(UNSUBSCRIBE_PATH, 101), PROFILES),
    # :256 suppression jobs: "Give either up to 100 emails"
    "suppress 100 emails": (_request(SUPPRESS_PATH, 100), None),
    "suppress 101 emails": (_request(SUPPRESS_PATH, 101), PROFILES),
    "unsuppress 100 emails": (_request(UNSUPPRESS_PATH, 100), None),
    "unsuppress 101 emails": (_request(UNSUPPRESS_PATH, 101), PROFILES),
    # :239 "`consent` accepts only "SUBSCRIBED" on this endpoint."
    "subscribe with UNSUBSCRIBED": (
        _request(SUBSCRIBE_PATH, 1, consent="UNSUBSCRIBED"),
        f"{FIRST}/subscriptions/email/marketing/consent",
    ),
    "subscribe sms with UNSUBSCRIBED": (
        _request(SUBSCRIBE_PATH, 1, consent="UNSUBSCRIBED", channels=("sms",)),
        f"{FIRST}/subscriptions/sms/marketing/consent",
    ),
    # :251 "`consent` accepts only "UNSUBSCRIBED"."
    "unsubscribe with SUBSCRIBED": (
        _request(UNSUBSCRIBE_PATH, 1, consent="SUBSCRIBED"),
        f"{FIRST}/subscriptions/email/marketing/consent",
    ),
    "unsubscribe sms with SUBSCRIBED": (
        _request(UNSUBSCRIBE_PATH, 1, consent="SUBSCRIBED", channels=("sms",)),
        f"{FIRST}/subscriptions/sms/marketing/consent",
    ),
    # :252 "There is no profile `id` field: profiles are matched by email or phone only."
    "unsubscribe by profile id only": (_by_id_only(UNSUBSCRIBE_PATH), FIRST),
}


@pytest.mark.parametrize(("request_", "refused_at"), REQUESTS.values(), ids=REQUESTS.keys())
def test_the_consent_endpoints_take_what_is_documented(
    http: httpx.Client, request_: tuple[str, dict[str, Any]], refused_at: str | None
) -> None:
    path, body = request_
    response = http.post(path, content=json.dumps(body), headers=headers())
    named = len(body["data"]["attributes"]["profiles"]["data"])
    if refused_at is None:
        assert response.status_code == 202, response.text
        assert len(http.get("/_sandbox/profiles").json()) == named
    else:
        assert response.status_code == 400
        assert response.json()["errors"][0]["source"] == {"pointer": refused_at}
        assert http.get("/_sandbox/profiles").json() == [], "a refused job changes nothing"
