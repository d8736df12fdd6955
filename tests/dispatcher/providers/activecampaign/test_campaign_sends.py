"""ActiveCampaignClient.send_campaign against the ActiveCampaign sandbox: contacts imported
into a campaign's list, the campaign made and sent to them, rendered from the personalization
tags it was translated into (the fields' perstags learnt, a missing field made), and a send
repeated after a lost answer completed, not made twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.base import (
    PREFERENCES_URL_PROPERTY,
    CampaignSend,
    ImportContact,
    Profile,
)
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.dispatcher.helpers import EpochClock
from tests.dispatcher.providers import campaign_helpers
from tests.dispatcher.providers.activecampaign.conftest import ACTID, API_KEY, EVENT_KEY, api
from tests.dispatcher.providers.campaign_helpers import link, var

START = 1_800_000_000.0
ADA, BOB = "ada@example.com", "bob@example.com"


def email_send(list_id: str, **fields: Any) -> CampaignSend:
    """With a literal percent sign ActiveCampaign must copy as it is."""
    return campaign_helpers.email_send(list_id, extra_text=" 50%OFF% ", **fields)


def person(email: str, **fields: Any) -> Profile:
    properties = {PREFERENCES_URL_PROPERTY: link(email)} | fields.pop("properties", {})
    return Profile(email=email, properties=properties, **fields)


PEOPLE = [person(ADA, first_name="Ada & <Co>", properties={"tier": "gold"}), person(BOB)]


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def ac(clock: EpochClock) -> Iterator[ActiveCampaignSandbox]:
    with start_activecampaign_sandbox(
        api_key=API_KEY,
        tracking_actid=ACTID,
        tracking_key=EVENT_KEY,
        rate_limits=False,
        import_delay_s=0.0,
        clock=clock,
    ) as running:
        yield running


class LosingAnswers(httpx.AsyncBaseTransport):
    """Sends every request to the sandbox, but loses the answer of the first request to each
    of `lose` ("METHOD /path", the path's start): applied, the client told of a timeout."""

    def __init__(self, lose: Sequence[str]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._lose = list(lose)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        call = f"{request.method} {request.url.path}"
        lost = next((each for each in self._lose if call.startswith(each)), None)
        if lost is not None:
            self._lose.remove(lost)
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def client_on(ac: ActiveCampaignSandbox, lose: Sequence[str] = ()) -> ActiveCampaignClient:
    tracking = TrackingAccount(ACTID, EVENT_KEY, ac.tracking_url)
    return ActiveCampaignClient(ac.base_url, API_KEY, tracking, transport=LosingAnswers(lose))


async def filled_list(client: ActiveCampaignClient, name: str, people: Sequence[Profile]) -> str:
    """The campaign's list with `people` imported into it (subscribed), as the dispatcher
    prepares a campaign part."""
    list_id = await client.find_list(name)
    job = await client.start_import([ImportContact(p) for p in people], list_id)
    status = await client.import_status(job)
    assert status.done and status.failed == 0
    return list_id


def messages(ac: ActiveCampaignSandbox, campaign_id: str) -> dict[str, dict[str, Any]]:
    found = ac.campaign_messages(campaign_id=campaign_id)["messages"]
    return {message["email"]: message for message in found}


def campaigns_named(ac: ActiveCampaignSandbox, name: str) -> list[dict[str, Any]]:
    rows = api(ac, "GET", "/campaigns?limit=100")["campaigns"]
    return [row for row in rows if row["name"] == name]


def paths(ac: ActiveCampaignSandbox) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in ac.requests()]


def test_an_email_campaign_reaches_its_list_rendered_from_the_translated_tags(
    ac: ActiveCampaignSandbox,
) -> None:
    async def run() -> tuple[str, str]:
        async with client_on(ac) as client:
            list_id = await filled_list(client, "cmp-1 part A", PEOPLE)
            return list_id, await client.send_campaign(email_send(list_id))

    list_id, campaign_id = asyncio.run(run())

    sent = messages(ac, campaign_id)
    assert {email: m["status"] for email, m in sent.items()} == {ADA: "sent", BOB: "sent"}
    assert sent[ADA]["subject"] == "Hi Ada & <Co> & co", "a subject is not HTML: not escaped"
    assert sent[ADA]["body"] == (
        "<p>Hello Ada &amp; &lt;Co&gt;, tier gold 50%OFF% </p>"
        f'<a href="{link(ADA).replace("&", "&amp;")}">Preferences</a>'
    )
    assert sent[BOB]["body"].startswith("<p>Hello you &quot;there&quot;, tier none 50%OFF% </p>")
    (message,) = ac.requests("/api/3/messages")
    assert message["body"]["message"]["subject"] == (
        "Hi %IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%you \"there\"%/IF% & co"
    )
    assert "%MARKETING_PREFERENCES_URL%" in message["body"]["message"]["html"]
    (edit,) = ac.requests(f"/api/3/campaigns/{campaign_id}/edit")
    assert edit["body"] == edit["body"] | {"listIds": [int(list_id)], "status": 1}
    assert isinstance(edit["body"]["messageId"], int) and "scheduledDate" not in edit["body"]
    assert [p for p in paths(ac) if "campaign" in p or "messages" in p] == [
        "GET /api/3/campaigns",
        "POST /api/3/messages",
        "POST /api/3/campaign",
        f"PUT /api/3/campaigns/{campaign_id}/edit",
    ]


def test_the_import_subscribes_each_contact_to_the_campaigns_list(
    ac: ActiveCampaignSandbox,
) -> None:
    async def run() -> str:
        async with client_on(ac) as client:
            return await filled_list(client, "cmp-1 part B", PEOPLE)

    list_id = asyncio.run(run())

    (request,) = ac.requests("/api/3/import/bulk_import")
    assert [c["subscribe"] for c in request["body"]["contacts"]] == [[{"listid": int(list_id)}]] * 2
    assert sorted(ac.members(list_id).values()) == ["1", "1"]


def test_fields_no_contact_has_are_made_and_render_their_fallback(
    ac: ActiveCampaignSandbox,
) -> None:
    body = ("Hi ", var("custom", "nickname", fallback="pal"), " ", var("unsubscribe_url"))

    async def run() -> str:
        async with client_on(ac) as client:
            list_id = await filled_list(client, "cmp-5", [Profile(email=ADA)])
            return await client.send_campaign(email_send(list_id, name="cmp-5", body=body))

    campaign_id = asyncio.run(run())

    titles = {f["title"]: f["perstag"] for f in api(ac, "GET", "/fields?limit=100")["fields"]}
    assert titles["nickname"] == "NICKNAME"
    assert titles[PREFERENCES_URL_PROPERTY] == "MARKETING_PREFERENCES_URL"
    assert messages(ac, campaign_id)[ADA]["body"] == "Hi pal "


@pytest.mark.parametrize(
    "lost", ["POST /api/3/messages", "POST /api/3/campaign", "PUT /api/3/campaigns/"]
)
def test_a_send_repeated_after_a_lost_answer_completes_the_campaign_once(
    ac: ActiveCampaignSandbox, lost: str
) -> None:
    async def run() -> tuple[str, str]:
        async with client_on(ac, lose=[lost]) as client:
            list_id = await filled_list(client, "cmp-2 all", PEOPLE)
            send = email_send(list_id, name="cmp-2 all")
            with pytest.raises(RetryableProviderError):
                await client.send_campaign(send)
            return await client.send_campaign(send), await client.send_campaign(send)

    campaign_id, once_more = asyncio.run(run())

    assert once_more == campaign_id
    (made,) = campaigns_named(ac, "cmp-2 all")
    assert made["id"] == campaign_id and made["status"] != "0"
    assert set(messages(ac, campaign_id)) == {ADA, BOB}
    assert ac.campaign_messages()["total"] == 2, "each recipient sent one message"
    edits = [p for p in paths(ac) if p.startswith("PUT /api/3/campaigns/")]
    assert len(edits) == 1, "a campaign found past draft is not edited again"


def test_a_campaign_with_a_send_time_is_scheduled_and_sent_when_due(
    ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    later = datetime.fromtimestamp(START + 3600, UTC)

    async def run() -> str:
        async with client_on(ac) as client:
            list_id = await filled_list(client, "cmp-3 A", PEOPLE)
            return await client.send_campaign(email_send(list_id, name="cmp-3 A", send_at=later))

    campaign_id = asyncio.run(run())

    (edit,) = ac.requests(f"/api/3/campaigns/{campaign_id}/edit")
    assert edit["body"]["scheduledDate"] == later.strftime("%Y-%m-%d %H:%M:%S")
    assert campaigns_named(ac, "cmp-3 A")[0]["status"] == "1"
    assert messages(ac, campaign_id) == {}
    clock.advance(3601)
    assert set(messages(ac, campaign_id)) == {ADA, BOB}


def test_a_template_the_tags_cannot_carry_makes_nothing(ac: ActiveCampaignSandbox) -> None:
    async def run() -> None:
        async with client_on(ac) as client:
            list_id = await filled_list(client, "cmp-6", PEOPLE)
            bad = replace(email_send(list_id, name="cmp-6"), body=("write to %EMAIL%",))
            await client.send_campaign(bad)

    with pytest.raises(PermanentProviderError, match="'%EMAIL%'"):
        asyncio.run(run())
    assert not [p for p in paths(ac) if p.startswith("POST /api/3/messages")]
    assert campaigns_named(ac, "cmp-6") == []
