"""Contacts: sync (upsert on email, field values, empty strings overwrite), find, read,
delete, and a contact's memberships."""

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


def test_sync_creates_then_updates_the_contact_with_that_email(api: httpx.Client) -> None:
    city = create_field(api, "City")
    body: dict[str, Any] = {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
    body["fieldValues"] = [{"field": city, "value": "London"}]
    first = answer(api.post("/contact/sync", json={"contact": body}), 201)

    contact = first["contact"]
    assert contact["id"] == "1" and isinstance(contact["id"], str)
    assert (contact["firstName"], contact["lastName"]) == ("Ada", "Lovelace")
    assert (
        first["fieldValues"][0] | {"field": city, "value": "London", "contact": "1"}
        == (first["fieldValues"][0])
    )
    assert contact["fieldValues"] == [first["fieldValues"][0]["id"]]

    again = {"email": "ADA@example.com", "firstName": "", "fieldValues": [{"field": int(city)}]}
    second = answer(api.post("/contact/sync", json={"contact": again}), 201)

    assert second["contact"]["id"] == "1", "upserted on the email, whatever its case"
    assert second["contact"]["firstName"] == "", "an empty string overwrites"
    assert second["contact"]["lastName"] == "Lovelace", "an absent one keeps"
    assert second["fieldValues"][0]["value"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"contact": {"firstName": "Ada"}},
        {"contact": {"email": "not-an-address"}},
        {"contact": {"email": "ada@example.com", "fieldValues": [{"field": "99", "value": "x"}]}},
        {"contact": {"email": "ada@example.com", "firstName": 7}},
        {"email": "ada@example.com"},
    ],
)
def test_an_invalid_sync_is_a_bare_400(api: httpx.Client, body: object) -> None:
    assert answer(api.post("/contact/sync", json=body), 400) == {}


def test_a_body_that_is_not_json_is_a_bare_400(api: httpx.Client) -> None:
    assert answer(api.post("/contact/sync", content=b"{nope"), 400) == {}


def test_find_by_email_is_exact_and_a_miss_is_an_empty_list(api: httpx.Client) -> None:
    sync_contact(api, "ada@example.com")
    sync_contact(api, "adam@example.com")

    found = answer(api.get("/contacts", params={"email": "ada@example.com"}), 200)
    missed = answer(api.get("/contacts", params={"email": "grace@example.com"}), 200)

    assert [c["email"] for c in found["contacts"]] == ["ada@example.com"]
    assert found["meta"]["total"] == "1"
    assert missed["contacts"] == [] and missed["meta"]["total"] == "0"


def test_contacts_page_by_limit_and_offset_and_id_greater(api: httpx.Client) -> None:
    for n in range(5):
        sync_contact(api, f"p{n}@example.com")

    page = answer(api.get("/contacts", params={"limit": 2, "offset": 1}), 200)
    after = answer(api.get("/contacts", params={"id_greater": 3}), 200)

    assert [c["id"] for c in page["contacts"]] == ["2", "3"]
    assert page["meta"]["total"] == "5"
    assert [c["id"] for c in after["contacts"]] == ["4", "5"]


def test_contacts_filter_by_a_list_of_ids(api: httpx.Client) -> None:
    for n in range(4):
        sync_contact(api, f"p{n}@example.com")

    found = answer(api.get("/contacts", params={"ids[]": ["1", "3"]}), 200)

    assert [c["email"] for c in found["contacts"]] == ["p0@example.com", "p2@example.com"]


def test_read_and_delete_a_contact_and_404_messages_when_unknown(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact = sync_contact(api, "ada@example.com", firstName="Ada")

    read = answer(api.get(f"/contacts/{contact['id']}"), 200)
    assert read["contact"]["email"] == "ada@example.com"
    assert answer(api.delete(f"/contacts/{contact['id']}"), 200) == {}

    gone = {"message": f"No result found for contact with id {contact['id']}"}
    assert answer(api.delete(f"/contacts/{contact['id']}"), 404) == gone
    assert answer(api.get(f"/contacts/{contact['id']}"), 404) == gone
    assert ac.contacts() == []


def test_a_contacts_lists_tags_and_automations(api: httpx.Client) -> None:
    contact = sync_contact(api, "ada@example.com")
    list_id = create_list(api)
    tag = answer(api.post("/tags", json={"tag": {"tag": "vip"}}), 201)["tag"]
    membership = {"list": list_id, "contact": contact["id"], "status": 1}
    answer(api.post("/contactLists", json={"contactList": membership}), 200)
    answer(
        api.post("/contactTags", json={"contactTag": {"contact": contact["id"], "tag": tag["id"]}}),
        201,
    )
    enrolment = {"contact": contact["id"], "automation": "1"}
    answer(api.post("/contactAutomations", json={"contactAutomation": enrolment}), 201)

    lists = answer(api.get(f"/contacts/{contact['id']}/contactLists"), 200)["contactLists"]
    tags = answer(api.get(f"/contacts/{contact['id']}/contactTags"), 200)["contactTags"]
    automations = answer(api.get(f"/contacts/{contact['id']}/contactAutomations"), 200)

    assert [(m["list"], m["status"]) for m in lists] == [(list_id, "1")]
    assert [t["tag"] for t in tags] == [tag["id"]]
    assert [a["automation"] for a in automations["contactAutomations"]] == ["1"]
    assert answer(api.get("/contacts", params={"listid": list_id}), 200)["meta"]["total"] == "1"
    assert answer(api.get("/contacts", params={"tagid": tag["id"]}), 200)["meta"]["total"] == "1"
    missing = answer(api.get("/contacts/77/contactAutomations"), 404)
    assert missing == {"message": "No result found for contact with id 77"}


def test_deleting_a_contact_removes_its_memberships(
    api: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    contact = sync_contact(api, "ada@example.com")
    list_id = create_list(api)
    membership = {"list": list_id, "contact": contact["id"], "status": 1}
    answer(api.post("/contactLists", json={"contactList": membership}), 200)

    answer(api.delete(f"/contacts/{contact['id']}"), 200)
    again = sync_contact(api, "ada@example.com")

    assert again["id"] != contact["id"], "a new contact"
    assert ac.contacts("ada@example.com")[0]["lists"] == {}
