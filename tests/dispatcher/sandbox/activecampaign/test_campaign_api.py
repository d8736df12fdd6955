"""The ActiveCampaign sandbox's campaign calls: POST /messages, POST /campaign (singular),
PUT /campaigns/{id}/edit (an ASSUMED shape) and GET /campaigns?filters[name]=, with
ActiveCampaign's answers and error bodies, each call counted in the account's 5/s."""

from __future__ import annotations

import httpx

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from dispatcher.sandbox.activecampaign.campaigns import COUNTERS
from tests.dispatcher.sandbox.activecampaign.campaigning import (
    SENDER,
    campaign_row,
    create_campaign,
    create_message,
    edit,
    scheduled_date,
)
from tests.dispatcher.sandbox.activecampaign.conftest import API_KEY, answer, create_list


def test_a_message_is_created_with_a_string_id(api: httpx.Client) -> None:
    body = {"message": SENDER | {"subject": "Hi %FIRSTNAME%", "html": "<p>50%</p>"}}

    created = answer(api.post("/messages", json=body), 201)["message"]

    assert created["id"] == "1"
    assert {name: created[name] for name in ("fromname", "fromemail", "reply2")} == SENDER
    assert (created["subject"], created["html"], created["text"]) == (
        "Hi %FIRSTNAME%",
        "<p>50%</p>",
        "",
    )


def test_a_message_takes_email_for_fromemail(api: httpx.Client) -> None:
    given = {"fromname": "Shop", "email": "news@shop.example", "reply2": "h@shop.example"}

    created = answer(api.post("/messages", json={"message": given | {"subject": "S"}}), 201)

    assert created["message"]["fromemail"] == "news@shop.example"


def test_a_message_without_its_required_fields_is_422_field_missing_for_each(
    api: httpx.Client,
) -> None:
    refused = answer(api.post("/messages", json={"message": {"fromname": "Shop"}}), 422)

    assert refused["errors"] == [
        {
            "title": "Missing attribute",
            "detail": f"{name} is required",
            "code": "field_missing",
            "source": {"pointer": f"/data/attributes/{name}"},
        }
        for name in ("fromemail", "reply2", "subject")
    ]


def test_a_message_with_a_sender_that_is_no_address_is_422_field_invalid(
    api: httpx.Client,
) -> None:
    body = {"message": SENDER | {"fromemail": "not an address", "subject": "S"}}

    (error,) = answer(api.post("/messages", json=body), 422)["errors"]

    assert (error["code"], error["source"]) == (
        "field_invalid",
        {"pointer": "/data/attributes/fromemail"},
    )


def test_a_campaign_is_created_as_a_draft_with_a_numeric_id(api: httpx.Client) -> None:
    body = {"name": "Spring sale", "type": "single", "canSplitContent": False}

    created = answer(api.post("/campaign", json=body), 200)

    assert created == {"id": 1, "name": "Spring sale", "type": "single", "canSplitContent": False}
    row = campaign_row(api, "1")
    assert (row["status"], row["sdate"], row["basemessageid"]) == ("0", None, "0")
    assert {row[name] for name in COUNTERS} == {"0"}


def test_a_campaign_without_name_or_type_is_400_with_string_errors(api: httpx.Client) -> None:
    assert answer(api.post("/campaign", json={"canSplitContent": False}), 400) == {
        "errors": ["Field name is required", "Field type is required"]
    }
    assert answer(api.post("/campaign", json={"name": "A", "type": "split"}), 400) == {
        "errors": ["The sandbox makes single campaigns only: type must be single"]
    }


def test_an_edit_names_the_lists_and_message_and_answers_the_campaign(
    api: httpx.Client,
) -> None:
    list_id, message_id = create_list(api), create_message(api)
    campaign_id = create_campaign(api)

    edited = answer(edit(api, campaign_id, listIds=[int(list_id)], messageId=message_id), 200)

    campaign = edited["campaign"]
    assert (campaign["id"], campaign["status"], campaign["basemessageid"]) == (
        campaign_id,
        "0",
        message_id,
    )
    assert campaign["listIds"] == [list_id]


def test_status_1_schedules_the_campaign_for_its_date(api: httpx.Client) -> None:
    list_id, message_id = create_list(api), create_message(api)
    campaign_id = create_campaign(api)
    answer(edit(api, campaign_id, listIds=[list_id], messageId=message_id), 200)
    when = scheduled_date(3600)

    scheduled = answer(edit(api, campaign_id, scheduledDate=when, status=1), 200)["campaign"]

    assert (scheduled["status"], scheduled["scheduleddate"]) == ("1", when)
    assert scheduled["sdate"] == when.replace(" ", "T") + "+00:00"


def test_a_campaign_no_longer_a_draft_cannot_be_edited(api: httpx.Client) -> None:
    list_id, message_id = create_list(api), create_message(api)
    campaign_id = create_campaign(api)
    fields = {"listIds": [list_id], "messageId": message_id, "scheduledDate": scheduled_date(60)}
    answer(edit(api, campaign_id, **fields, status=1), 200)

    again = edit(api, campaign_id, **fields, status=1)

    assert answer(again, 400) == {"errors": ["Campaign already scheduled"]}


def test_an_edit_naming_unknown_lists_or_messages_lists_every_error_and_changes_nothing(
    api: httpx.Client,
) -> None:
    campaign_id = create_campaign(api)

    refused = edit(api, campaign_id, listIds=[77], messageId=88, scheduledDate="soon", status=3)

    assert answer(refused, 400) == {
        "errors": [
            "List 77 does not exist",
            "Message 88 does not exist",
            "scheduledDate must be a date and time: YYYY-MM-DD HH:MM:SS",
            "status must be 0 (draft) or 1 (scheduled)",
        ]
    }
    assert campaign_row(api, campaign_id)["status"] == "0"


def test_scheduling_needs_lists_and_a_message(api: httpx.Client) -> None:
    campaign_id = create_campaign(api)

    refused = edit(api, campaign_id, status=1)

    assert answer(refused, 400) == {
        "errors": ["A campaign needs listIds and a messageId before it is scheduled"]
    }


def test_editing_an_unknown_campaign_is_404(api: httpx.Client) -> None:
    assert answer(edit(api, "41", status=1), 404) == {
        "message": "No Result found for Campaign with id 41"
    }


def test_campaigns_are_found_by_their_exact_name(api: httpx.Client) -> None:
    for name in ("Spring sale", "Spring sale part 2", "spring sale", "Spring sale"):
        create_campaign(api, name)

    found = answer(api.get("/campaigns", params={"filters[name]": "Spring sale"}), 200)

    assert [(c["id"], c["name"]) for c in found["campaigns"]] == [
        ("1", "Spring sale"),
        ("4", "Spring sale"),
    ]
    assert found["meta"]["total"] == "2"


def test_every_campaign_call_counts_in_the_accounts_5_per_second(
    raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    token = {"Api-Token": API_KEY}
    calls = [
        lambda: raw.post("/api/3/messages", headers=token, json={"message": SENDER}),
        lambda: raw.post("/api/3/campaign", headers=token, json={"name": "A", "type": "single"}),
        lambda: raw.put("/api/3/campaigns/1/edit", headers=token, json={}),
        lambda: raw.get("/api/3/campaigns", headers=token, params={"filters[name]": "A"}),
        lambda: raw.post("/api/3/campaign", headers=token, json={"name": "B", "type": "single"}),
    ]
    statuses = [call().status_code for call in calls]

    refused = raw.put("/api/3/campaigns/1/edit", headers=token, json={})

    assert statuses == [422, 200, 200, 200, 200]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert ac.throttled()["buckets"]["api"]["refused"] == 1
