"""Seeded engagement of a campaign's recipients (POST /_sandbox/campaign-engagement): drawn per
message from the seed, reported through the engagement path POST /_sandbox/engagement takes
(its effect on the account, a webhook naming the campaign that the dispatcher's receiver reads
as the campaign's), and counted in the campaign's counters, as a told engagement is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from marketing.bus.v1 import bus_pb2

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from dispatcher.sandbox.common.campaign_sends import Rates, drawn_engagements
from dispatcher.webhooks import activecampaign as receiving
from tests.dispatcher.sandbox.activecampaign.campaigning import (
    campaign_row,
    send_campaign,
    subscribe,
)
from tests.dispatcher.sandbox.activecampaign.conftest import answer, create_list, sync_contact
from tests.dispatcher.sandbox.activecampaign.test_webhook_deliveries import form, register
from tests.dispatcher.sandbox.receiver import Receiver, running_receiver

ADA, BO = "ada@example.com", "bo@example.com"
EVERYTHING = {"delivered": 1.0, "opened": 1.0, "clicked": 1.0}
HTML = '<p>Hi %FIRSTNAME%</p><a href="https://shop.example/sale">Shop</a>'


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def seed(raw: httpx.Client, **document: Any) -> dict[str, Any]:
    configured: dict[str, Any] = answer(
        raw.post("/_sandbox/campaign-engagement", json=document), 200
    )
    return configured


def subscribed(api: httpx.Client, *emails: str) -> str:
    list_id = create_list(api)
    for email in emails:
        subscribe(api, sync_contact(api, email, firstName=email[:3].title())["id"], list_id)
    return list_id


def test_each_recipient_sent_opens_and_clicks_as_seeded_and_each_webhook_names_the_campaign(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    list_id = subscribed(api, ADA, BO)
    seed(raw, seed=1, default=EVERYTHING)

    campaign_id = send_campaign(api, [list_id], subject="Sale", html=HTML, name="Spring")

    received = [form(r) for r in receiver.wait_for(6)]
    assert [(f["type"], f["contact[email]"]) for f in received] == [
        ("sent", ADA),
        ("open", ADA),
        ("click", ADA),
        ("sent", BO),
        ("open", BO),
        ("click", BO),
    ]
    click = received[2]
    click.pop("date_time")
    assert click == {
        "type": "click",
        "initiated_from": "public",
        "initiated_by": "public",
        "list": list_id,
        "contact[id]": click["contact[id]"],
        "contact[email]": ADA,
        "contact[first_name]": "Ada",
        "contact[last_name]": "",
        "contact[phone]": "",
        "campaign[id]": campaign_id,
        "campaign[name]": "Spring",
        "campaign[type]": "single",
        "campaign[status]": "2",
        "campaign[recipients]": "2",
        "campaign[message][id]": "1",
        "campaign[message][subject]": "Sale",
        "link[url]": "https://shop.example/sale",
    }
    assert ac.webhooks_idle()


def test_the_dispatchers_receiver_reads_a_seeded_engagement_as_the_campaigns(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver
) -> None:
    register(api, receiver)
    seed(raw, seed=1, default={"delivered": 1.0, "opened": 1.0, "clicked": 0.0})

    campaign_id = send_campaign(api, [subscribed(api, ADA)], html=HTML)

    read = [receiving.parse(r.body) for r in receiver.wait_for(2)]
    assert [(e.type, e.email, e.campaign_id, e.flow_id, e.message_id) for e in read if e] == [
        (bus_pb2.ENGAGEMENT_TYPE_SENT, ADA, campaign_id, "", "1"),
        (bus_pb2.ENGAGEMENT_TYPE_OPENED, ADA, campaign_id, "", "1"),
    ]


def test_the_draws_follow_the_seed_and_the_subjects_own_rates(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    emails = [f"p{n}@example.com" for n in range(12)]
    list_id = subscribed(api, *emails)
    seed(
        raw,
        seed=7,
        default={"opened": 0.5},
        by_subject={"Hi %FIRSTNAME%": {"opened": 1.0, "clicked": 0.5}},
    )

    plain = send_campaign(api, [list_id], subject="News", name="Plain")
    personal = send_campaign(api, [list_id], subject="Hi %FIRSTNAME%", name="Personal")

    for campaign_id, rates in ((plain, Rates(opened=0.5)), (personal, Rates(1.0, 1.0, 0.5))):
        sent = ac.campaign_messages(campaign_id)["messages"]
        drawn = [[d.kind for d in drawn_engagements(7, m["id"], rates, str)] for m in sent]
        row = campaign_row(api, campaign_id)
        assert row["uniqueopens"] == row["opens"] == str(sum("opened" in d for d in drawn))
        assert row["subscriberclicks"] == str(sum("clicked" in d for d in drawn))
    assert campaign_row(api, personal)["uniqueopens"] == "12"
    assert 0 < int(campaign_row(api, plain)["uniqueopens"]) < 12


def test_without_a_seed_nothing_is_engaged(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    seed(raw, seed=1, default=EVERYTHING)
    assert raw.delete("/_sandbox/campaign-engagement").status_code == 204

    campaign_id = send_campaign(api, [subscribed(api, ADA)])

    assert ac.campaign_summary()["campaigns"][campaign_id]["sent"] == 1
    assert ac.webhooks_idle() and receiver.requests() == []
    assert raw.get("/_sandbox/campaign-engagement").json() is None


def test_an_engagement_told_for_the_campaign_counts_and_is_reported_the_same_way(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver
) -> None:
    register(api, receiver, events=["open", "unsubscribe"])
    list_id = subscribed(api, ADA, BO)
    campaign_id = send_campaign(api, [list_id], name="Spring")

    for kind in ("opened", "opened"):
        answer(
            raw.post(
                "/_sandbox/engagement",
                json={"email": ADA, "type": kind, "campaign_id": campaign_id},
            ),
            202,
        )
    body = {"email": BO, "type": "unsubscribed", "campaign_id": campaign_id, "reason": "too many"}
    answer(raw.post("/_sandbox/engagement", json=body), 202)

    received = [form(r) for r in receiver.wait_for(3)]
    assert {(f["type"], f["campaign[name]"], f["list"]) for f in received} == {
        ("open", "Spring", list_id),
        ("unsubscribe", "Spring", list_id),
    }
    row = campaign_row(api, campaign_id)
    assert (row["opens"], row["uniqueopens"]) == ("2", "1")
    assert (row["unsubscribes"], row["unsubreasons"]) == ("1", "1")
    members = answer(raw.get("/_sandbox/members", params={"list": list_id}), 200)
    assert {m["email"]: m["status"] for m in members} == {ADA: "1", BO: "2"}


def test_a_told_hard_bounce_counts_and_the_next_campaign_skips_the_address(
    api: httpx.Client, raw: httpx.Client
) -> None:
    list_id = subscribed(api, ADA)
    first = send_campaign(api, [list_id], name="First")
    body = {"email": ADA, "type": "bounced", "campaign_id": first}
    answer(raw.post("/_sandbox/engagement", json=body), 202)

    second = send_campaign(api, [list_id], name="Second")

    assert campaign_row(api, first)["hardbounces"] == "1"
    (message,) = answer(
        raw.get("/_sandbox/campaign-messages", params={"campaign_id": second}), 200
    )["messages"]
    assert (message["status"], message["reason"]) == ("skipped", "on the account's exclusion list")


def test_an_engagement_naming_a_campaign_takes_no_automation_message_id(
    api: httpx.Client, raw: httpx.Client
) -> None:
    campaign_id = send_campaign(api, [subscribed(api, ADA)])
    body = {"email": ADA, "type": "opened", "campaign_id": campaign_id, "message_id": "1"}

    refused = answer(raw.post("/_sandbox/engagement", json=body), 400)

    assert "message_id" in refused["message"]
    assert campaign_row(api, campaign_id)["opens"] == "0"
