"""List status, contact tags, automation enrolments and field values, with their documented
status codes and error bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import (
    answer,
    create_field,
    create_list,
    sync_contact,
)


def list_status(api: httpx.Client, contact: Any, list_id: Any, status: Any) -> httpx.Response:
    membership = {"list": list_id, "contact": contact, "status": status}
    return api.post("/contactLists", json={"contactList": membership})


def test_list_status_subscribes_unsubscribes_and_resubscribes(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact, list_id = sync_contact(api, "ada@example.com")["id"], create_list(api)

    subscribed = answer(list_status(api, contact, list_id, 1), 200)
    assert ac.contacts("ada@example.com")[0]["lists"] == {list_id: "1"}
    unsubscribed = answer(list_status(api, contact, int(list_id), "2"), 200)
    assert ac.contacts("ada@example.com")[0]["lists"] == {list_id: "2"}
    answer(list_status(api, contact, list_id, 1), 200)

    assert subscribed["contactList"]["status"] == "1" and subscribed["contactList"]["sdate"]
    assert unsubscribed["contactList"]["udate"]
    assert subscribed["contacts"][0]["id"] == contact
    assert ac.contacts("ada@example.com")[0]["lists"] == {list_id: "1"}


@pytest.mark.parametrize(
    ("contact", "list_id", "status", "code", "pointer"),
    [
        (None, "1", 1, "field_missing", "/contactList/contact"),
        ("1", "1", 3, "field_invalid", "/contactList/status"),
        ("9", "1", 1, "related_missing", "/contactList/contact"),
        ("1", "9", 1, "related_missing", "/contactList/list"),
    ],
)
def test_list_status_errors_are_422_with_a_pointer(
    api: httpx.Client, contact: Any, list_id: str, status: int, code: str, pointer: str
) -> None:
    sync_contact(api, "ada@example.com")
    create_list(api)

    (error,) = answer(list_status(api, contact, list_id, status), 422)["errors"]

    assert (error["code"], error["source"]["pointer"]) == (code, pointer)


def test_contact_tags_are_201_once_per_pair_and_deleted_by_their_id(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact = sync_contact(api, "ada@example.com")["id"]
    tag = answer(api.post("/tags", json={"tag": {"tag": "vip"}}), 201)["tag"]["id"]

    first = answer(
        api.post("/contactTags", json={"contactTag": {"contact": contact, "tag": tag}}), 201
    )
    again = answer(
        api.post("/contactTags", json={"contactTag": {"contact": contact, "tag": tag}}), 201
    )
    assert ac.contacts("ada@example.com")[0]["tags"] == ["vip"]
    deleted = api.delete(f"/contactTags/{first['contactTag']['id']}")

    assert first["contactTag"]["id"] == again["contactTag"]["id"]
    assert answer(deleted, 200) == {}
    assert ac.contacts("ada@example.com")[0]["tags"] == []
    gone = answer(api.delete(f"/contactTags/{first['contactTag']['id']}"), 404)
    assert gone == {
        "message": f"No Result found for ContactTag with id {first['contactTag']['id']}"
    }


def test_contact_tag_errors(api: httpx.Client) -> None:
    sync_contact(api, "ada@example.com")
    answer(api.post("/tags", json={"tag": {"tag": "vip"}}), 201)

    unknown = answer(api.post("/contactTags", json={"contactTag": {"contact": 9, "tag": 1}}), 404)
    no_tag = answer(api.post("/contactTags", json={"contactTag": {"contact": 1}}), 422)

    assert unknown == {
        "errors": [{"status": 404, "title": "Not Found", "detail": "Contact not found"}]
    }
    assert no_tag == {
        "errors": [
            {"status": 422, "title": "Missing attribute", "source": {"pointer": "/contactTag/tag"}}
        ]
    }


def test_enrolments_are_201_counted_and_removed_by_enrolment_id(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact = sync_contact(api, "ada@example.com")["id"]
    enrol = {"contactAutomation": {"contact": contact, "automation": 2}}

    first = answer(api.post("/contactAutomations", json=enrol), 201)
    second = answer(api.post("/contactAutomations", json=enrol), 201)
    enrolment = first["contactAutomation"]
    assert (enrolment["automation"], enrolment["seriesid"], enrolment["status"]) == ("2", "2", "1")
    assert second["contactAutomation"]["id"] != enrolment["id"], "no idempotency"
    assert answer(api.delete(f"/contactAutomations/{enrolment['id']}"), 200) == {}

    automation = answer(api.get("/automations"), 200)["automations"][1]
    assert (automation["entered"], automation["exited"]) == ("2", "1")
    assert [e["id"] for e in ac.contacts()[0]["automations"]] == [second["contactAutomation"]["id"]]


def test_enrolment_failures_and_unknown_enrolments_are_403_messages(api: httpx.Client) -> None:
    contact = sync_contact(api, "ada@example.com")["id"]

    for enrol in ({"contact": contact, "automation": 99}, {"contact": 42, "automation": 1}):
        refused = api.post("/contactAutomations", json={"contactAutomation": enrol})
        assert answer(refused, 403) == {"message": "Could not create SubscriberSeries"}
    unknown = answer(api.delete("/contactAutomations/3"), 403)
    assert unknown == {"message": "No Result found for SubscriberSeries with id 3"}


def test_field_values_are_200_and_overwrite(api: httpx.Client, ac: ActiveCampaignSandbox) -> None:
    contact = sync_contact(api, "ada@example.com")["id"]
    city = create_field(api, "City")

    first = answer(
        api.post(
            "/fieldValues",
            json={"fieldValue": {"contact": contact, "field": city, "value": "Paris"}},
        ),
        200,
    )
    second = answer(
        api.post(
            "/fieldValues", json={"fieldValue": {"contact": contact, "field": city, "value": ""}}
        ),
        200,
    )
    unknown = api.post(
        "/fieldValues", json={"fieldValue": {"contact": contact, "field": 9, "value": "x"}}
    )

    assert first["fieldValue"]["id"] == second["fieldValue"]["id"]
    assert ac.contacts()[0]["fields"] == {city: ""}
    assert answer(unknown, 422)["errors"][0]["code"] == "related_missing"
