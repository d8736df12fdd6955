"""What the ActiveCampaign sandbox sends its webhooks: `sent` for each automation email sent and
each engagement told through POST /_sandbox/engagement (after its effect on the account), one
form-encoded POST per event, to the webhooks subscribed to its type and source only, never
retried; a 410 deactivates the webhook. Every attempt in GET /_sandbox/webhook-deliveries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from marketing.bus.v1 import bus_pb2

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from dispatcher.webhooks import activecampaign as receiving
from tests.dispatcher.sandbox.activecampaign.conftest import (
    answer,
    create_list,
    list_status_body,
    sync_contact,
)
from tests.dispatcher.sandbox.receiver import Received, Receiver, running_receiver

EMAIL = "ada@example.com"
PATH = "/webhooks/activecampaign/s3cret"
ALL_EVENTS = ["sent", "open", "click", "bounce", "unsubscribe", "sms_unsub", "sms_sent"]
ALL_SOURCES = ["public", "admin", "api", "system"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def register(
    api: httpx.Client,
    receiver: Receiver,
    events: list[str] = ALL_EVENTS,
    sources: list[str] = ALL_SOURCES,
    path: str = PATH,
    **fields: Any,
) -> str:
    given = {"name": "ours", "url": receiver.url + path, "events": events, "sources": sources}
    webhook_id: str = answer(api.post("/webhooks", json={"webhook": given | fields}), 201)[
        "webhook"
    ]["id"]
    return webhook_id


def form(request: Received) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode(), keep_blank_values=True))


def automation(raw: httpx.Client, channel: str = "email") -> str:
    body = {"name": "Welcome", "messages": [{"delay_s": 0, "channel": channel, "subject": "Hi"}]}
    automation_id: str = answer(raw.post("/_sandbox/automations", json=body), 201)["automation"][
        "id"
    ]
    return automation_id


def enrol(api: httpx.Client, contact: str, automation_id: str) -> None:
    body = {"contactAutomation": {"contact": contact, "automation": automation_id}}
    answer(api.post("/contactAutomations", json=body), 201)


def engage(raw: httpx.Client, **fields: Any) -> dict[str, Any]:
    answered: dict[str, Any] = answer(raw.post("/_sandbox/engagement", json=fields), 202)
    return answered


def test_an_automation_email_sent_is_one_form_post_of_type_sent(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    webhook_id = register(api, receiver)
    contact = sync_contact(api, EMAIL, firstName="Ada", phone="+15005550006")["id"]
    automation_id = automation(raw)

    enrol(api, contact, automation_id)

    (request,) = receiver.wait_for(1)
    (message,) = ac.messages(EMAIL)
    assert request.path == PATH
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = form(request)
    assert fields.pop("date_time").endswith("+00:00")
    assert fields == {
        "type": "sent",
        "initiated_from": "system",
        "initiated_by": "system",
        "list": "0",
        "contact[id]": contact,
        "contact[email]": EMAIL,
        "contact[first_name]": "Ada",
        "contact[last_name]": "",
        "contact[phone]": "+15005550006",
        # As ActiveCampaign has it: an automation's email is a campaign of type
        # "automation", of an id of its own (the account's first campaign here).
        "campaign[type]": "automation",
        "campaign[id]": "1",
        "campaign[name]": "Welcome",
        "campaign[message][id]": str(message["id"]),
        "automation[id]": automation_id,
    }
    assert ac.webhooks_idle()
    (attempt,) = answer(raw.get("/_sandbox/webhook-deliveries"), 200)
    assert (attempt["webhook"], attempt["attempt"], attempt["status"]) == (webhook_id, 1, 200)
    assert attempt["external_ids"] == [hashlib.sha256(request.body).hexdigest()]
    assert attempt["body"] == request.body.decode()


def test_an_sms_sent_is_sms_sent(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    contact = sync_contact(api, EMAIL, phone="+15005550006")["id"]

    enrol(api, contact, automation(raw, "sms"))

    (request,) = receiver.wait_for(1)
    assert form(request)["type"] == "sms_sent"


def create_sms_list(api: httpx.Client) -> str:
    given = {"name": "Texts", "stringid": "texts", "channel": "sms", "sender_url": "u"}
    given["sender_reminder"] = "You signed up for texts."
    list_id: str = answer(api.post("/lists", json={"list": given}), 200)["list"]["id"]
    return list_id


def contact_view(ac: ActiveCampaignSandbox) -> dict[str, Any]:
    (found,) = ac.contacts(EMAIL)
    return found


@pytest.mark.parametrize(
    ("fields", "expected", "lists", "excluded"),
    [
        ({"type": "delivered"}, {"type": "sent", "initiated_from": "system"}, ("1", "1"), False),
        ({"type": "opened"}, {"type": "open", "initiated_from": "public"}, ("1", "1"), False),
        ({"type": "clicked", "url": "https://shop.example/p"},
         {"type": "click", "link[url]": "https://shop.example/p"}, ("1", "1"), False),
        ({"type": "bounced", "bounce_type": "soft"},
         {"type": "bounce", "initiated_from": "system", "bounce[type]": "soft",
          "bounce[code]": "4.2.2", "bounce[description]": "Mailbox full"}, ("1", "1"), False),
        ({"type": "bounced"},
         {"type": "bounce", "bounce[type]": "hard", "bounce[code]": "5.1.1"}, ("3", "1"), True),
        ({"type": "unsubscribed", "reason": "too many"},
         {"type": "unsubscribe", "initiated_from": "public", "unsubscribe[reason]": "too many"},
         ("2", "1"), False),
        ({"type": "spam"}, {"type": "unsubscribe", "unsubscribe[reason]": "spam complaint"},
         ("2", "1"), True),
        ({"type": "sms_unsubscribed"},
         {"type": "sms_unsub", "initiated_from": "public", "sms[phone]": "+15005550006"},
         ("1", "2"), False),
    ],
)  # fmt: skip
def test_an_engagement_changes_the_account_where_activecampaign_would_and_is_reported(
    api: httpx.Client,
    raw: httpx.Client,
    receiver: Receiver,
    ac: ActiveCampaignSandbox,
    fields: dict[str, Any],
    expected: dict[str, str],
    lists: tuple[str, str],
    excluded: bool,
) -> None:
    register(api, receiver)
    contact = sync_contact(api, EMAIL, phone="+15005550006")["id"]
    email_list, sms_list = create_list(api, "News"), create_sms_list(api)
    for list_id in (email_list, sms_list):
        answer(api.post("/contactLists", json=list_status_body(contact, list_id, 1)), 200)

    answered = engage(raw, email=EMAIL, campaign_id="42", **fields)

    (request,) = receiver.wait_for(1)
    sent = form(request)
    assert {name: sent[name] for name in expected} == expected
    assert (sent["contact[email]"], sent["campaign[id]"]) == (EMAIL, "42")
    assert answered["external_ids"] == [hashlib.sha256(request.body).hexdigest()]
    view = contact_view(ac)
    assert (view["lists"][email_list], view["lists"][sms_list]) == lists
    assert view["excluded"] is excluded


def test_the_dispatchers_receiver_reads_what_the_sandbox_sends(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    contact = sync_contact(api, EMAIL)["id"]
    automation_id = automation(raw)
    enrol(api, contact, automation_id)
    (message,) = ac.messages(EMAIL)

    answered = engage(raw, email=EMAIL, type="clicked", url="https://shop.example/p")

    sent, clicked = (receiving.parse(r.body) for r in receiver.wait_for(2))
    assert sent is not None and clicked is not None
    assert (sent.type, sent.email) == (bus_pb2.ENGAGEMENT_TYPE_SENT, EMAIL)
    assert (clicked.type, clicked.url) == (
        bus_pb2.ENGAGEMENT_TYPE_CLICKED,
        "https://shop.example/p",
    )
    assert (clicked.flow_id, clicked.campaign_id) == (automation_id, "")
    assert clicked.message_id == str(message["id"])
    assert [clicked.external_id] == answered["external_ids"]


def test_an_automation_message_sent_is_read_as_the_automations_flow_message(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    planted = answer(raw.post("/_sandbox/campaigns", json={"name": "Summer sale"}), 201)[
        "campaigns"
    ]
    automation_id = automation(raw)
    first, second = sync_contact(api, EMAIL)["id"], sync_contact(api, "bo@example.com")["id"]

    enrol(api, first, automation_id)
    enrol(api, second, automation_id)

    requests = receiver.wait_for(2)
    campaign_ids = {form(r)["campaign[id]"] for r in requests}
    assert len(campaign_ids) == 1, "one campaign for the automation's one email"
    assert campaign_ids.isdisjoint({automation_id, *(c["id"] for c in planted)})
    read = [receiving.parse(r.body) for r in requests]
    assert [(e.type, e.flow_id, e.campaign_id) for e in read if e is not None] == [
        (bus_pb2.ENGAGEMENT_TYPE_SENT, automation_id, ""),
        (bus_pb2.ENGAGEMENT_TYPE_SENT, automation_id, ""),
    ]
    assert {e.message_id for e in read if e is not None} == {str(m["id"]) for m in ac.messages()}


def test_an_engagement_with_a_campaign_names_that_campaign_and_no_automation(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    contact = sync_contact(api, EMAIL)["id"]
    enrol(api, contact, automation(raw))  # a message of an automation sent first

    engage(raw, email=EMAIL, type="opened", campaign_id="42")

    _, opened = receiver.wait_for(2)
    fields = form(opened)
    assert fields["campaign[id]"] == "42"
    assert "automation[id]" not in fields and fields.get("campaign[type]") != "automation"
    found = receiving.parse(opened.body)
    assert found is not None and (found.campaign_id, found.flow_id) == ("42", "")


def test_only_webhooks_subscribed_to_the_event_and_its_source_get_it(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    opens = register(api, receiver, ["open"], path="/opens")
    public_only = register(api, receiver, ["sent", "open"], ["public"], path="/public")
    contact = sync_contact(api, EMAIL)["id"]

    enrol(api, contact, automation(raw))  # sent, from the system
    assert ac.webhooks_idle()
    answered = engage(raw, email=EMAIL, type="opened")
    assert ac.webhooks_idle()

    assert sorted(r.path for r in receiver.requests()) == ["/opens", "/public"]
    assert all(form(r)["type"] == "open" for r in receiver.requests())
    assert answered["webhooks"] == [opens, public_only]
    assert engage(raw, email=EMAIL, type="bounced") == {"external_ids": [], "webhooks": []}


def test_a_webhook_of_a_list_gets_the_events_of_that_list_and_any_sms_event(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    list_id = create_list(api)
    register(api, receiver, listid=list_id)
    contact = sync_contact(api, EMAIL, phone="+15005550006")["id"]
    answer(api.post("/contactLists", json=list_status_body(contact, list_id, 1)), 200)

    engage(raw, email=EMAIL, type="opened")  # about no list
    engage(raw, email=EMAIL, type="unsubscribed")  # of the list
    engage(raw, email=EMAIL, type="sms_unsubscribed")  # listid does not apply
    assert ac.webhooks_idle()

    assert [(form(r)["type"], form(r)["list"]) for r in receiver.requests()] == [
        ("unsubscribe", list_id),
        ("sms_unsub", "0"),
    ]


def test_a_delivery_is_never_retried(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    sync_contact(api, EMAIL)
    receiver.answer(500)

    engage(raw, email=EMAIL, type="opened")

    assert ac.webhooks_idle()
    assert len(receiver.requests()) == 1
    assert [(a["attempt"], a["status"]) for a in ac.webhook_deliveries()] == [(1, 500)]
    assert ac.view("webhooks")[0]["active"] is True


def test_a_410_deactivates_the_webhook(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    gone = register(api, receiver, path="/gone")
    sync_contact(api, EMAIL)
    receiver.answer(410)

    engage(raw, email=EMAIL, type="opened")
    assert ac.webhooks_idle()
    assert answer(raw.get("/_sandbox/webhooks"), 200)[0]["active"] is False

    assert engage(raw, email=EMAIL, type="opened") == {"external_ids": [], "webhooks": []}
    assert ac.webhooks_idle() and len(receiver.requests()) == 1
    answer(api.delete(f"/webhooks/{gone}"), 200)
    again = register(api, receiver, path="/again")
    assert engage(raw, email=EMAIL, type="opened")["webhooks"] == [again]
    assert [r.path for r in receiver.wait_for(2)] == ["/gone", "/again"]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"email": "nobody@example.com", "type": "opened"}, 404, "No contact"),
        ({"email": EMAIL, "type": "liked"}, 400, "type must be one of"),
        ({"email": EMAIL, "type": "clicked"}, 400, "a click needs its url"),
        ({"email": EMAIL, "type": "opened", "message_id": "7"}, 400, "no message 7 was sent"),
        ({"email": EMAIL, "type": "sms_unsubscribed"}, 400, "needs a phone"),
    ],
)
def test_a_bad_engagement_is_refused(
    api: httpx.Client,
    raw: httpx.Client,
    receiver: Receiver,
    fields: dict[str, Any],
    status: int,
    message: str,
) -> None:
    register(api, receiver)
    sync_contact(api, EMAIL)

    assert message in answer(raw.post("/_sandbox/engagement", json=fields), status)["message"]


def test_the_log_reset_forgets_deliveries_and_the_account_reset_the_webhooks(
    api: httpx.Client, raw: httpx.Client, receiver: Receiver, ac: ActiveCampaignSandbox
) -> None:
    register(api, receiver)
    sync_contact(api, EMAIL)
    engage(raw, email=EMAIL, type="opened")
    assert ac.webhooks_idle() and ac.webhook_deliveries()

    assert raw.delete("/_sandbox/requests").status_code == 204
    assert answer(raw.get("/_sandbox/webhook-deliveries"), 200) == []
    assert raw.post("/_sandbox/reset").status_code == 204

    assert ac.view("webhooks") == []
