"""ActiveCampaign's automations, simulated by the sandbox: an enrolment (through the API, or
an event tracked) sends the automation's messages when due by the sandbox's clock, recorded
rendered; removing the enrolment cancels them; a contact unsubscribed or excluded gets none."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import (
    ACTID,
    TRACKING_KEY,
    answer,
    create_field,
    create_list,
    list_status_body,
    sync_contact,
)

EMAIL = "ada@example.com"
MESSAGES = [
    {"delay_s": 0, "subject": "Hi {{ contact.firstName }}", "body": "{{ automation.name }}"},
    {"delay_s": 86400, "subject": "Back: {{ contact.fields.PRODUCT_URL }}", "body": "b"},
]


def add_automation(raw: httpx.Client, **flow: Any) -> str:
    body = {"name": "Back in stock", "messages": MESSAGES} | flow
    created = answer(raw.post("/_sandbox/automations", json=body), 201)
    assert created["flow"]["automation"] == created["automation"]["id"]
    automation_id: str = created["automation"]["id"]
    return automation_id


def enrol(api: httpx.Client, contact: str, automation: str) -> str:
    body = {"contactAutomation": {"contact": contact, "automation": automation}}
    enrolment_id: str = answer(api.post("/contactAutomations", json=body), 201)[
        "contactAutomation"
    ]["id"]
    return enrolment_id


def ada(api: httpx.Client) -> str:
    url = create_field(api, "Product URL")
    values = [{"field": url, "value": "https://shop.example/p/tea"}]
    contact_id: str = sync_contact(api, EMAIL, firstName="Ada", fieldValues=values)["id"]
    return contact_id


def messages(raw: httpx.Client, **query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = answer(raw.get("/_sandbox/messages", params=query), 200)
    return found


def statuses(raw: httpx.Client) -> list[tuple[str, str | None]]:
    return [(m["status"], m["reason"]) for m in messages(raw, email=EMAIL)]


def advance(raw: httpx.Client, seconds: float) -> None:
    answer(raw.post("/_sandbox/clock", json={"advance_s": seconds}), 200)


def test_an_enrolment_sends_the_first_message_at_once_rendered(
    api: httpx.Client, raw: httpx.Client
) -> None:
    contact, automation = ada(api), add_automation(raw)

    enrolment = enrol(api, contact, automation)

    first, second = messages(raw, email=EMAIL, flow=automation)
    assert (first["status"], first["to"], first["channel"]) == ("sent", EMAIL, "email")
    assert (first["subject"], first["body"]) == ("Hi Ada", "Back in stock")
    assert (first["flow"], first["flow_name"]) == (automation, "Back in stock")
    assert second["status"] == "scheduled"
    assert messages(raw, flow="Back in stock") == [first, second]
    (row,) = answer(api.get(f"/contacts/{contact}/contactAutomations"), 200)["contactAutomations"]
    assert (row["id"], row["status"], row["totalElements"]) == (enrolment, "1", 2)


def test_the_last_message_goes_out_when_the_clock_reaches_it_and_completes_the_enrolment(
    api: httpx.Client, raw: httpx.Client
) -> None:
    contact, automation = ada(api), add_automation(raw)
    enrol(api, contact, automation)

    advance(raw, 86399)
    assert [m["status"] for m in messages(raw)] == ["sent", "scheduled"]
    advance(raw, 1)

    second = messages(raw)[1]
    assert (second["status"], second["subject"]) == ("sent", "Back: https://shop.example/p/tea")
    assert second["decided_at"] == second["due_at"]
    (row,) = answer(api.get(f"/contacts/{contact}/contactAutomations"), 200)["contactAutomations"]
    assert (row["status"], row["completed"]) == ("2", 1)
    enrol(api, contact, automation)  # a new enrolment runs again
    assert len(messages(raw, status="sent")) == 3


def test_deleting_the_enrolment_cancels_its_pending_messages(
    api: httpx.Client, raw: httpx.Client
) -> None:
    contact, automation = ada(api), add_automation(raw)
    enrolment = enrol(api, contact, automation)

    answer(api.delete(f"/contactAutomations/{enrolment}"), 200)
    advance(raw, 86400)

    assert statuses(raw) == [("sent", None), ("cancelled", "enrolment removed")]


def test_a_deleted_contact_gets_nothing_more(api: httpx.Client, raw: httpx.Client) -> None:
    contact, automation = ada(api), add_automation(raw)
    enrol(api, contact, automation)

    answer(api.delete(f"/contacts/{contact}"), 200)
    advance(raw, 86400)

    assert statuses(raw) == [("sent", None), ("cancelled", "enrolment removed")]


@pytest.mark.parametrize("with_list", [True, False])
def test_a_contact_unsubscribed_from_the_list_is_skipped_when_it_is_due(
    api: httpx.Client, raw: httpx.Client, with_list: bool
) -> None:
    contact, newsletter = ada(api), create_list(api)
    automation = add_automation(raw, **({"list": newsletter} if with_list else {}))
    answer(api.post("/contactLists", json=list_status_body(contact, newsletter, 1)), 200)
    enrol(api, contact, automation)

    answer(api.post("/contactLists", json=list_status_body(contact, newsletter, 2)), 200)
    advance(raw, 86400)

    why = f"unsubscribed from list {newsletter}" if with_list else "unsubscribed from every list"
    assert statuses(raw) == [("sent", None), ("skipped", why)]
    assert messages(raw, status="skipped")[0]["subject"] == "Back: https://shop.example/p/tea"


def test_a_contact_on_the_exclusion_list_is_skipped(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact, automation = ada(api), add_automation(raw)
    ac.exclude(EMAIL)

    enrol(api, contact, automation)

    assert statuses(raw)[0] == ("skipped", "on the account's exclusion list")


def track(raw: httpx.Client, event: str, email: str, data: dict[str, Any]) -> None:
    form = {"actid": ACTID, "key": TRACKING_KEY, "event": event, "eventdata": json.dumps(data)}
    form["visit"] = json.dumps({"email": email})
    assert answer(raw.post("/event", data=form), 200)["success"] == 1


def test_a_tracked_event_enrols_the_contact_once_at_a_time(
    api: httpx.Client, raw: httpx.Client
) -> None:
    answer(api.put("/eventTracking", json={"eventTracking": {"enabled": True}}), 200)
    contact = ada(api)
    message = {"subject": "{{ event.data.title }} is back", "body": "{{ event.data.url }}"}
    automation = add_automation(raw, trigger_event="back_in_stock", messages=[message])
    data = {"title": "Green tea", "url": "https://shop.example/p/tea"}

    track(raw, "back_in_stock", EMAIL, data)
    track(raw, "back_in_stock", "nobody@example.com", data)  # no contact: nothing starts

    (sent,) = messages(raw)
    assert (sent["email"], sent["status"], sent["subject"]) == (EMAIL, "sent", "Green tea is back")
    assert sent["body"] == "https://shop.example/p/tea"
    (row,) = answer(api.get(f"/contacts/{contact}/contactAutomations"), 200)["contactAutomations"]
    assert (row["automation"], row["completed"]) == (automation, 1)
    track(raw, "back_in_stock", EMAIL, data)  # completed: a new enrolment
    assert len(messages(raw, status="sent")) == 2


def test_an_event_does_not_enrol_a_contact_still_in_the_automation(
    api: httpx.Client, raw: httpx.Client
) -> None:
    answer(api.put("/eventTracking", json={"eventTracking": {"enabled": True}}), 200)
    ada(api)
    add_automation(raw, trigger_event="back_in_stock")

    track(raw, "back_in_stock", EMAIL, {})
    track(raw, "back_in_stock", EMAIL, {})

    assert [m["status"] for m in messages(raw)] == ["sent", "scheduled"]


def test_reset_forgets_flows_and_messages_and_clearing_the_log_only_what_was_decided(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact, automation = ada(api), add_automation(raw)
    enrol(api, contact, automation)

    assert raw.delete("/_sandbox/requests").status_code == 204
    assert [m["status"] for m in messages(raw)] == ["scheduled"]
    assert raw.post("/_sandbox/reset").status_code == 204

    assert messages(raw) == ac.messages() == []
    assert answer(raw.get("/_sandbox/flows"), 200) == []
    assert [a["name"] for a in ac.view("automations")] == [
        "Welcome series",
        "Abandoned cart reminder",
    ]


def test_a_seeded_automation_gets_messages_through_the_flows_endpoint(
    api: httpx.Client, raw: httpx.Client
) -> None:
    contact = ada(api)
    flow = {"automation": 1, "messages": [{"subject": "Welcome {{ contact.firstName }}"}]}

    (configured,) = answer(raw.post("/_sandbox/flows", json=flow), 201)
    enrol(api, contact, "1")

    assert configured["name"] == "Welcome series" and configured["automation"] == "1"
    assert [m["subject"] for m in messages(raw, flow="Welcome series")] == ["Welcome Ada"]
    unknown = raw.post("/_sandbox/flows", json=flow | {"automation": "99"})
    assert unknown.status_code == 400 and "automation" in unknown.json()["message"]


def test_an_automation_with_bad_messages_is_not_added(
    raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    refused = raw.post("/_sandbox/automations", json={"name": "Win-back", "messages": []})

    assert refused.status_code == 400 and "messages" in refused.json()["message"]
    assert [a["name"] for a in ac.view("automations")] == [
        "Welcome series",
        "Abandoned cart reminder",
    ]
