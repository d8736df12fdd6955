"""KlaviyoClient.send_campaign against the Klaviyo sandbox: people imported into a campaign's
list, the campaign created and sent to them on each channel, rendered as Klaviyo renders the
translated template, and a send repeated after a lost answer completed, not made twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dispatcher.providers.base import (
    PREFERENCES_URL_PROPERTY,
    ConsentChange,
    ConsentState,
    ImportContact,
    Profile,
    PushTokenChange,
)
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY, EpochClock
from tests.dispatcher.providers.campaign_helpers import email_send, link, var
from tests.harness import eventually

START = 1_800_000_000.0  # a whole second (and minute) of epoch time
ADA, BOB = "ada@example.com", "bob@example.com"


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY, clock=clock, import_processing_s=0.0) as running:
        yield running


class LosingAnswers(httpx.AsyncBaseTransport):
    """Sends every request to the sandbox, but loses the answer of the first request to each
    of `lose` ("METHOD /path"): applied, and the client told only of a timeout."""

    def __init__(self, lose: Sequence[str]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._lose = set(lose)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        call = f"{request.method} {request.url.path}"
        if call in self._lose:
            self._lose.discard(call)
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def client_on(sandbox: Sandbox, lose: Sequence[str] = ()) -> KlaviyoClient:
    return KlaviyoClient(API_KEY, base_url=sandbox.base_url, transport=LosingAnswers(lose))


async def filled_list(client: KlaviyoClient, name: str, people: Sequence[Profile]) -> str:
    """The campaign's list, with `people` imported into it and subscribed to email and (with
    a phone) SMS marketing, as the dispatcher prepares a campaign part."""
    list_id = await client.find_list(name)
    job = await client.start_import([ImportContact(p) for p in people], list_id)

    async def done() -> bool | None:
        return (await client.import_status(job)).done or None

    await eventually(done, interval_s=0.2)
    states = [
        ConsentState(ConsentChange(p.email, p.phone, True, p.phone is not None), False, False)
        for p in people
    ]
    for call in client.plan_consent(list(enumerate(states)), None):
        await call.send(call.owners)
    return list_id


def person(email: str, **fields: Any) -> Profile:
    properties = {PREFERENCES_URL_PROPERTY: link(email)} | fields.pop("properties", {})
    return Profile(email=email, properties=properties, **fields)


PEOPLE = [
    person(ADA, first_name="Ada & <Co>", properties={"tier": "gold"}),
    person(BOB),
]


def messages(sandbox: Sandbox, campaign_id: str) -> dict[str, dict[str, Any]]:
    found = sandbox.campaign_messages(campaign_id=campaign_id, limit="100")["messages"]
    return {message["email"]: message for message in found}


def campaigns_named(sandbox: Sandbox, name: str, channel: str = "email") -> list[dict[str, Any]]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        answer = http.get(
            "/api/campaigns",
            params={"filter": f"equals(messages.channel,'{channel}')"},
            headers={"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": "2026-07-15"},
        )
    answer.raise_for_status()
    return [c for c in answer.json()["data"] if c["attributes"]["name"] == name]


def paths(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.requests()[since:]]


def test_an_email_campaign_reaches_its_list_rendered_from_the_translated_template(
    sandbox: Sandbox,
) -> None:
    async def run() -> str:
        async with client_on(sandbox) as client:
            list_id = await filled_list(client, "cmp-1 part A", PEOPLE)
            return await client.send_campaign(email_send(list_id))

    before = len(sandbox.requests())
    campaign_id = asyncio.run(run())

    sent = messages(sandbox, campaign_id)
    assert {email: m["status"] for email, m in sent.items()} == {ADA: "sent", BOB: "sent"}
    assert sent[ADA]["subject"] == "Hi Ada & <Co> & co", "a subject is not HTML: not escaped"
    assert sent[ADA]["body"] == (
        "<p>Hello Ada &amp; &lt;Co&gt;, tier gold</p>"
        f'<a href="{link(ADA).replace("&", "&amp;")}">Preferences</a>'
    )
    assert sent[BOB]["subject"] == 'Hi you "there" & co'
    assert sent[BOB]["body"].startswith("<p>Hello you &quot;there&quot;, tier none</p>")
    campaign_calls = [p for p in paths(sandbox, before) if "campaign" in p or "template" in p]
    template = [p for p in campaign_calls if p.startswith("DELETE /api/templates/")]
    assert campaign_calls == [
        "GET /api/campaigns",
        "POST /api/campaigns",
        "POST /api/templates",
        "POST /api/campaign-message-assign-template",
        *template,
        "POST /api/campaign-send-jobs",
    ]
    assert len(template) == 1, "the template deleted once the message had its copy"


def test_the_import_puts_each_person_into_the_campaigns_list(sandbox: Sandbox) -> None:
    async def run() -> str:
        async with client_on(sandbox) as client:
            return await filled_list(client, "cmp-1 part B", PEOPLE)

    list_id = asyncio.run(run())

    (job,) = [r for r in sandbox.requests() if r["path"] == "/api/profile-bulk-import-jobs"]
    assert job["body"]["data"]["relationships"] == {
        "lists": {"data": [{"type": "list", "id": list_id}]}
    }
    (listed,) = [each for each in sandbox.lists() if each["id"] == list_id]
    assert sorted(listed["members"]) == [ADA, BOB]


@pytest.mark.parametrize(
    "lost",
    [
        "POST /api/campaigns",
        "POST /api/templates",
        "POST /api/campaign-message-assign-template",
        "POST /api/campaign-send-jobs",
    ],
)
def test_a_send_repeated_after_a_lost_answer_completes_the_campaign_once(
    sandbox: Sandbox, lost: str
) -> None:
    async def run() -> tuple[str, str]:
        async with client_on(sandbox, lose=[lost]) as client:
            list_id = await filled_list(client, "cmp-2 all", PEOPLE)
            send = email_send(list_id, name="cmp-2 all")
            with pytest.raises(RetryableProviderError):
                await client.send_campaign(send)
            return await client.send_campaign(send), await client.send_campaign(send)

    campaign_id, once_more = asyncio.run(run())

    assert once_more == campaign_id
    (made,) = campaigns_named(sandbox, "cmp-2 all")
    assert made["id"] == campaign_id
    assert made["attributes"]["status"] in ("Sending", "Sent")
    assert sandbox.campaign_messages()["total"] == 2, "each recipient sent one message"
    assert set(messages(sandbox, campaign_id)) == {ADA, BOB}
    sends = [p for p in paths(sandbox) if p == "POST /api/campaign-send-jobs"]
    assert len(sends) == 1, "a campaign found past Draft is not sent again"


def test_a_campaign_with_a_send_time_is_scheduled_and_sent_when_due(
    sandbox: Sandbox,
) -> None:
    later = datetime.fromtimestamp(START + 3600, UTC)

    async def run() -> str:
        async with client_on(sandbox) as client:
            list_id = await filled_list(client, "cmp-3 A", PEOPLE)
            return await client.send_campaign(email_send(list_id, name="cmp-3 A", send_at=later))

    campaign_id = asyncio.run(run())

    (made,) = campaigns_named(sandbox, "cmp-3 A")
    assert made["attributes"]["status"] == "Scheduled"
    assert made["attributes"]["send_strategy"]["method"] == "static"
    assert messages(sandbox, campaign_id) == {}
    sandbox.advance_clock(3601)
    assert set(messages(sandbox, campaign_id)) == {ADA, BOB}


def test_sms_and_push_campaigns_carry_their_text_without_a_template(sandbox: Sandbox) -> None:
    phone_person = person("cy@example.com", phone="+15005550006", first_name="Cy")

    async def run() -> tuple[str, str]:
        async with client_on(sandbox) as client:
            list_id = await filled_list(client, "cmp-4", [phone_person])
            await client.change_push_token(
                PushTokenChange("cy@example.com", None, "tok-1", "ios", "apns", True)
            )
            body = ("Hi ", var("first_name", fallback="you"), " <3 ", var("unsubscribe_url"))
            sms = replace(
                email_send(list_id), name="cmp-4 sms", channel="sms", subject=(), body=body
            )
            push = replace(sms, name="cmp-4 push", channel="push", subject=("Sale",))
            return await client.send_campaign(sms), await client.send_campaign(push)

    sms_id, push_id = asyncio.run(run())

    (sms_message,) = messages(sandbox, sms_id).values()
    (push_message,) = messages(sandbox, push_id).values()
    assert sms_message["status"] == "sent" and sms_message["channel"] == "sms"
    assert sms_message["body"] == f"Hi Cy <3 {link('cy@example.com')}", "SMS is not escaped"
    assert push_message["status"] == "sent" and push_message["subject"] == "Sale"
    assert not [p for p in paths(sandbox) if "template" in p]
    assert campaigns_named(sandbox, "cmp-4 push", "mobile_push")
