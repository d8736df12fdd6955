"""KlaviyoClient.send_campaign's requests, and the edges the sandbox does not produce (a
template left over, a send job refused because another try sent the campaign, a found
campaign whose message is not named), through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dispatcher.providers.base import SEND_CAMPAIGN, CampaignSend, RateBucket, TemplateVariable
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import LIMITS

BASE = "https://a.klaviyo.com"
SEND = CampaignSend(
    name="cmp-1 A",
    list_id="LstA",
    channel="email",
    subject=("Hi ", TemplateVariable(("first_name",), "there")),
    body=("<p>", TemplateVariable(("unsubscribe_url",), None), "</p>"),
    send_at=None,
    from_email="news@shop.example",
    from_label="Shop",
    reply_to="help@shop.example",
)
MESSAGES = {"campaign-messages": {"data": [{"type": "campaign-message", "id": "M1"}]}}


def campaign(status: str, relationships: Any = MESSAGES, name: str = SEND.name) -> Any:
    attributes = {"name": name, "status": status, "created_at": "2027-01-01T00:00:00+00:00"}
    return {
        "type": "campaign",
        "id": "C1",
        "attributes": attributes,
        "relationships": relationships,
    }


def error(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"code": "invalid", "detail": detail}]})


@dataclass
class FakeKlaviyo:
    """Answers by "METHOD /path" (each answer used once, in order, the last kept); records
    every request."""

    answers: dict[str, list[httpx.Response]]
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        queue = self.answers[f"{request.method} {request.url.path}"]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    @property
    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.seen]

    def body(self, call: str) -> Any:
        (request,) = [r for r in self.seen if f"{r.method} {r.url.path}" == call]
        return json.loads(request.content)


def new_campaign_answers() -> dict[str, list[httpx.Response]]:
    return {
        "GET /api/campaigns": [httpx.Response(200, json={"data": [], "links": {}})],
        "POST /api/campaigns": [httpx.Response(201, json={"data": campaign("Draft")})],
        "POST /api/templates": [httpx.Response(201, json={"data": {"id": "T1"}})],
        "POST /api/campaign-message-assign-template": [httpx.Response(200, json={})],
        "DELETE /api/templates/T1": [httpx.Response(204)],
        "POST /api/campaign-send-jobs": [httpx.Response(202, json={})],
        "GET /api/campaigns/C1": [httpx.Response(200, json={"data": campaign("Sending")})],
    }


def send_with(fake: FakeKlaviyo, paced: list[tuple[str, ...]] | None = None) -> str:
    @contextlib.asynccontextmanager
    async def pacer(operation: str, buckets: Sequence[RateBucket]) -> AsyncIterator[None]:
        assert operation == SEND_CAMPAIGN
        if paced is not None:
            paced.append(tuple(bucket.name for bucket in buckets))
        yield

    async def run() -> str:
        transport = httpx.MockTransport(fake)
        async with KlaviyoClient("pk_x", base_url=BASE, transport=transport) as client:
            client.pace_requests(pacer)
            return await client.send_campaign(SEND)

    return asyncio.run(run())


def test_a_new_email_campaign_is_created_given_its_template_and_sent() -> None:
    fake = FakeKlaviyo(new_campaign_answers())
    paced: list[tuple[str, ...]] = []

    assert send_with(fake, paced) == "C1"

    assert fake.calls == [
        "GET /api/campaigns",
        "POST /api/campaigns",
        "POST /api/templates",
        "POST /api/campaign-message-assign-template",
        "DELETE /api/templates/T1",
        "POST /api/campaign-send-jobs",
    ]
    assert fake.seen[0].url.params["filter"] == (
        "and(equals(messages.channel,'email'),contains(name,\"cmp-1 A\"))"
    )
    assert fake.body("POST /api/templates")["data"]["attributes"]["html"] == (
        '<p>{{ person|lookup:"marketing_preferences_url" }}</p>'
    )
    assert fake.body("POST /api/campaign-message-assign-template")["data"]["id"] == "M1"
    assert fake.body("POST /api/campaign-send-jobs") == {
        "data": {"type": "campaign-send-job", "id": "C1"}
    }
    assert paced == [
        ("campaigns",),
        ("campaigns (create)",),
        ("templates (create)",),
        ("campaign-message-assign-template",),
        ("templates/{id} (delete)",),
        ("campaign-send-jobs",),
    ]
    allowed = {bucket.name for bucket in LIMITS.rates[SEND_CAMPAIGN]}
    assert {name for names in paced for name in names} <= allowed


def test_a_template_the_syntax_cannot_carry_makes_no_request() -> None:
    fake = FakeKlaviyo(new_campaign_answers())

    async def run() -> None:
        async with KlaviyoClient("pk_x", base_url=BASE, transport=httpx.MockTransport(fake)) as c:
            await c.send_campaign(CampaignSend(**(vars(SEND) | {"body": ("{{ raw }}",)})))

    with pytest.raises(PermanentProviderError, match="template syntax"):
        asyncio.run(run())
    assert fake.seen == []


def test_a_campaign_found_sent_is_left_as_it_is() -> None:
    answers = new_campaign_answers()
    answers["GET /api/campaigns"] = [httpx.Response(200, json={"data": [campaign("Sent")]})]
    fake = FakeKlaviyo(answers)

    assert send_with(fake) == "C1"
    assert fake.calls == ["GET /api/campaigns"]


def test_a_draft_found_on_a_later_page_without_its_message_named_is_completed() -> None:
    answers = new_campaign_answers()
    later = f"{BASE}/api/campaigns?page%5Bcursor%5D=2"
    answers["GET /api/campaigns"] = [
        httpx.Response(
            200, json={"data": [campaign("Draft", name="other")], "links": {"next": later}}
        ),
        httpx.Response(200, json={"data": [campaign("Draft", relationships={})], "links": {}}),
    ]
    answers["GET /api/campaigns/C1"] = [httpx.Response(200, json={"data": campaign("Draft")})]
    fake = FakeKlaviyo(answers)

    assert send_with(fake) == "C1"

    assert fake.calls == [
        "GET /api/campaigns",
        "GET /api/campaigns",
        "GET /api/campaigns/C1",
        "POST /api/templates",
        "POST /api/campaign-message-assign-template",
        "DELETE /api/templates/T1",
        "POST /api/campaign-send-jobs",
    ]
    assert str(fake.seen[1].url) == later, "the next page as Klaviyo links it"


def test_a_refused_assignment_still_deletes_its_template() -> None:
    answers = new_campaign_answers()
    answers["POST /api/campaign-message-assign-template"] = [error(400, "not an email")]
    fake = FakeKlaviyo(answers)

    with pytest.raises(PermanentProviderError) as refused:
        send_with(fake)

    assert refused.value.status == 400
    assert fake.calls[-1] == "DELETE /api/templates/T1"


def test_a_template_left_over_is_logged_and_the_campaign_still_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = new_campaign_answers()
    answers["DELETE /api/templates/T1"] = [httpx.Response(503)]
    fake = FakeKlaviyo(answers)

    assert send_with(fake) == "C1"

    assert fake.calls[-1] == "POST /api/campaign-send-jobs"
    assert "template T1 left over" in caplog.text


def test_a_send_job_refused_for_a_campaign_another_try_sent_is_done() -> None:
    answers = new_campaign_answers()
    answers["POST /api/campaign-send-jobs"] = [error(400, "The campaign is not a draft")]
    fake = FakeKlaviyo(answers)

    assert send_with(fake) == "C1"
    assert fake.calls[-2:] == ["POST /api/campaign-send-jobs", "GET /api/campaigns/C1"]


def test_a_send_job_refused_for_a_draft_is_raised() -> None:
    answers = new_campaign_answers()
    answers["POST /api/campaign-send-jobs"] = [error(400, "no template")]
    answers["GET /api/campaigns/C1"] = [httpx.Response(200, json={"data": campaign("Draft")})]

    with pytest.raises(PermanentProviderError, match="no template"):
        send_with(FakeKlaviyo(answers))
