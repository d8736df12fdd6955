"""Making and sending a campaign through the ActiveCampaign sandbox's API, as the dispatcher
does: a message, a campaign, an edit that names the lists and the message and schedules it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.dispatcher.sandbox.activecampaign.conftest import START, answer

SENDER = {"fromname": "Shop", "fromemail": "news@shop.example", "reply2": "help@shop.example"}


def create_message(api: httpx.Client, subject: str = "Hello", html: str = "<p>Hi</p>") -> str:
    body = {"message": SENDER | {"subject": subject, "html": html}}
    message_id: str = answer(api.post("/messages", json=body), 201)["message"]["id"]
    return message_id


def create_campaign(api: httpx.Client, name: str = "Spring sale") -> str:
    body = {"name": name, "type": "single", "canSplitContent": False}
    campaign_id = answer(api.post("/campaign", json=body), 200)["id"]
    assert isinstance(campaign_id, int)
    return str(campaign_id)


def edit(api: httpx.Client, campaign_id: str, **fields: Any) -> httpx.Response:
    return api.put(f"/campaigns/{campaign_id}/edit", json=fields)


def send_campaign(
    api: httpx.Client,
    list_ids: list[str],
    *,
    subject: str = "Hello",
    html: str = "<p>Hi</p>",
    name: str = "Spring sale",
    scheduled: str | None = None,
) -> str:
    """A campaign for the lists, scheduled (at `scheduled`, else at once); its id."""
    message_id = create_message(api, subject, html)
    campaign_id = create_campaign(api, name)
    fields: dict[str, Any] = {"listIds": list_ids, "messageId": message_id, "status": 1}
    if scheduled is not None:
        fields["scheduledDate"] = scheduled
    answer(edit(api, campaign_id, **fields), 200)
    return campaign_id


def campaign_row(api: httpx.Client, campaign_id: str) -> dict[str, Any]:
    """The campaign as GET /campaigns lists it."""
    rows = answer(api.get("/campaigns", params={"limit": 100}), 200)["campaigns"]
    (row,) = [row for row in rows if row["id"] == campaign_id]
    return dict(row)


def scheduled_date(after_start_s: float) -> str:
    """A scheduledDate `after_start_s` after the tests' clock starts (UTC)."""
    return datetime.fromtimestamp(START + after_start_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def subscribe(api: httpx.Client, contact: str, list_id: str, status: int = 1) -> None:
    body = {"contactList": {"contact": contact, "list": list_id, "status": status}}
    answer(api.post("/contactLists", json=body), 200)
