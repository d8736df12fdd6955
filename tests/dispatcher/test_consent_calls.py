"""The consent calls bring the sandbox's Klaviyo model from any state to ours.

A random history of provider calls puts a person's profile in some state (subscribed or not
per channel, suppressed by us or by an unsubscribe, on a list or not); the calls planned for a
random state of ours, sent in order through the real client over HTTP, must leave the profile
equal to that state whatever the history was.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from dispatcher import consent_calls
from dispatcher.consent_calls import ConsentCalls
from dispatcher.providers.base import ConsentChange
from dispatcher.providers.klaviyo import KlaviyoClient
from dispatcher.sandbox import Sandbox
from dispatcher.translate import ConsentState
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


async def _send(client: KlaviyoClient, calls: ConsentCalls[int]) -> None:
    """Every planned call, in consent_calls.OPERATIONS order, as the worker sends them."""
    for list_id, pairs in calls.subscribe.items():
        await client.subscribe([c for _, c in pairs], list_id)
    await client.unsuppress([e for _, e in calls.unsuppress])
    await client.unsubscribe([c for _, c in calls.unsubscribe])
    await client.suppress([e for _, e in calls.suppress])


@given(
    history=st.lists(history_step, max_size=6),
    email_opt_in=st.booleans(),
    sms_opt_in=st.booleans(),
    member=st.booleans(),
    suppressed=st.booleans(),
)
def test_planned_calls_bring_any_provider_state_to_ours(
    sandbox: Sandbox,
    http: httpx.Client,
    history: list[Any],
    email_opt_in: bool,
    sms_opt_in: bool,
    member: bool,
    suppressed: bool,
) -> None:
    email = f"p-{uuid.uuid4().hex[:12]}@example.com"
    ours = ConsentState(ConsentChange(email, PHONE, email_opt_in, sms_opt_in), member, suppressed)
    calls = consent_calls.plan([(0, ours)], LIST_ID)

    async def run(client: KlaviyoClient) -> None:
        await _history(client, email, history)
        await _send(client, calls)

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
