"""Lists: found by name (GET /lists?filters[name]=), read by id, made with their required
fields (POST /lists), and their members through the control view (GET /_sandbox/members)."""

from __future__ import annotations

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import (
    answer,
    create_list,
    list_status_body,
    sync_contact,
)

REQUIRED = ("name", "stringid", "sender_url", "sender_reminder")


def full_list(name: str, **more: str) -> dict[str, dict[str, str]]:
    given = {"name": name, "stringid": name.lower(), "sender_url": "https://shop.example"}
    return {"list": given | {"sender_reminder": "You signed up at our shop."} | more}


def names(api: httpx.Client, **params: str | int) -> list[str]:
    return [row["name"] for row in answer(api.get("/lists", params=params), 200)["lists"]]


def test_the_name_filter_matches_the_whole_name_ignoring_case(api: httpx.Client) -> None:
    for name in ("VIP", "VIP buyers", "Newsletter"):
        create_list(api, name)

    assert names(api, **{"filters[name]": "vip"}) == ["VIP"]
    assert names(api, **{"filters[name]": "VIP BUYERS"}) == ["VIP buyers"]
    assert names(api, **{"filters[name]": "VI"}) == []
    assert names(api) == ["VIP", "VIP buyers", "Newsletter"]
    paged = answer(api.get("/lists", params={"limit": 1, "offset": 1}), 200)
    assert [row["name"] for row in paged["lists"]] == ["VIP buyers"]
    assert paged["meta"]["total"] == "3"


def test_sms_lists_are_listed_only_when_asked_for(api: httpx.Client) -> None:
    create_list(api, "Newsletter")
    answer(api.post("/lists", json=full_list("Texts", channel="sms")), 200)

    assert names(api) == ["Newsletter"]
    assert names(api, **{"filters[channel]": "sms"}) == ["Texts"]
    assert names(api, **{"filters[channel]": "all"}) == ["Newsletter", "Texts"]
    assert names(api, **{"filters[channel]": "all", "filters[name]": "texts"}) == ["Texts"]


def test_a_list_is_read_by_id_and_an_unknown_one_is_404(api: httpx.Client) -> None:
    list_id = create_list(api, "VIP")

    found = answer(api.get(f"/lists/{list_id}"), 200)["list"]
    missing = answer(api.get("/lists/99"), 404)

    assert (found["id"], found["name"], found["stringid"]) == (list_id, "VIP", "vip")
    assert missing == {"message": "No Result found for List with id 99"}


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field_of_a_list_is_checked(api: httpx.Client, field: str) -> None:
    body = full_list("VIP")
    del body["list"][field]

    (error,) = answer(api.post("/lists", json=body), 422)["errors"]

    assert (error["code"], error["source"]["pointer"]) == ("field_missing", f"/list/{field}")


def test_a_blank_field_or_an_unknown_channel_is_refused(api: httpx.Client) -> None:
    blank = answer(api.post("/lists", json=full_list("VIP", sender_url=" ")), 422)
    channel = answer(api.post("/lists", json=full_list("VIP", channel="fax")), 422)

    assert blank["errors"][0]["code"] == "field_missing"
    assert (channel["errors"][0]["code"], channel["errors"][0]["source"]["pointer"]) == (
        "field_invalid",
        "/list/channel",
    )
    assert answer(api.get("/lists"), 200)["lists"] == []


def test_the_members_view_shows_each_contacts_status_on_one_list(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    vip, other = create_list(api, "VIP"), create_list(api, "Other")
    ada = sync_contact(api, "ada@example.com")["id"]
    bob = sync_contact(api, "bob@example.com")["id"]
    answer(api.post("/contactLists", json=list_status_body(ada, vip, 1)), 200)
    answer(api.post("/contactLists", json=list_status_body(bob, vip, 1)), 200)
    answer(api.post("/contactLists", json=list_status_body(bob, vip, 2)), 200)
    answer(api.post("/contactLists", json=list_status_body(bob, other, 1)), 200)

    members = raw.get("/_sandbox/members", params={"list": vip}).json()

    assert [(m["contact"], m["email"], m["status"]) for m in members] == [
        (ada, "ada@example.com", "1"),
        (bob, "bob@example.com", "2"),
    ]
    assert members[1]["sdate"] and members[1]["udate"]
    assert ac.members(vip) == {"ada@example.com": "1", "bob@example.com": "2"}
    assert raw.get("/_sandbox/members", params={"list": "99"}).json() == []
    answer(api.delete(f"/contacts/{ada}"), 200)
    assert ac.members(vip) == {"bob@example.com": "2"}
