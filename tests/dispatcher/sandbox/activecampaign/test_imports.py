"""Bulk import: queued, then completed after the configured delay (virtual clock), success
contact ids and failure emails, the exclusion list skipped, payload validation, and its
per-minute limits answered 400."""

from __future__ import annotations

import json
from typing import Any

import httpx

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from tests.dispatcher.helpers import EpochClock
from tests.dispatcher.sandbox.activecampaign.conftest import (
    API_KEY,
    IMPORT_DELAY_S,
    answer,
    create_field,
    create_list,
    list_status_body,
    sync_contact,
)

RATE_LIMITED = "Rate limit exceeded."


def start(api: httpx.Client, *contacts: dict[str, Any]) -> httpx.Response:
    return api.post("/import/bulk_import", json={"contacts": list(contacts)})


def people(count: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{n}@example.com"} for n in range(count)]


def test_an_import_is_queued_then_completes_after_the_delay(
    api: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    city, list_id = create_field(api, "City"), create_list(api)
    ada: dict[str, Any] = {"email": "ada@example.com", "first_name": "Ada", "tags": ["vip"]}
    ada |= {"fields": [{"id": int(city), "value": "London"}], "subscribe": [{"listid": list_id}]}
    bad: list[dict[str, Any]] = [
        {"email": "not-an-address"},
        {"email": "bob@example.com", "subscribe": [{"listid": 9}]},
    ]

    queued = answer(start(api, ada, *bad), 200)
    batch = queued["batchId"]
    statuses = []
    for _ in range(3):
        statuses.append(answer(api.get("/import/info", params={"batchId": batch}), 200))
        clock.advance(IMPORT_DELAY_S / 2)

    assert (
        queued | {"success": 1, "queued_contacts": 3, "message": "Contact import queued"} == queued
    )
    assert [s["status"] for s in statuses] == ["queued", "processing", "completed"]
    assert statuses[0]["success"] == [] and statuses[0]["failure"] == []
    (contact,) = ac.contacts()
    assert statuses[2] == {
        "status": "completed",
        "success": [contact["id"]],
        "failure": ["not-an-address", "bob@example.com"],
    }
    assert (contact["firstName"], contact["fields"], contact["tags"]) == (
        "Ada",
        {city: "London"},
        ["vip"],
    )
    assert contact["lists"] == {list_id: "1"}


def test_an_address_on_the_exclusion_list_is_skipped_named_neither_way(
    api: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    excluded = httpx.post(
        f"{ac.base_url}/_sandbox/exclusions", json={"emails": ["P1@Example.com"]}, timeout=10
    )
    assert excluded.status_code == 204
    batch = answer(start(api, *people(3)), 200)["batchId"]
    clock.advance(IMPORT_DELAY_S)

    info = answer(api.get("/import/info", params={"batchId": batch}), 200)

    assert (len(info["success"]), info["failure"]) == (2, [])
    assert [c["email"] for c in ac.contacts()] == ["p0@example.com", "p2@example.com"]


def test_contacts_appear_only_when_the_import_completes(
    api: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    answer(start(api, *people(2)), 200)

    assert answer(api.get("/contacts"), 200)["contacts"] == []
    clock.advance(IMPORT_DELAY_S)
    assert [c["email"] for c in answer(api.get("/contacts"), 200)["contacts"]] == [
        "p0@example.com",
        "p1@example.com",
    ]
    assert ac.view("imports")[0]["done"] is True


def test_an_import_cannot_resubscribe_an_unsubscribed_contact(
    api: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    contact, list_id = sync_contact(api, "ada@example.com")["id"], create_list(api)
    answer(api.post("/contactLists", json=list_status_body(contact, list_id, 2)), 200)

    answer(start(api, {"email": "ada@example.com", "subscribe": [{"listid": list_id}]}), 200)
    clock.advance(IMPORT_DELAY_S)

    assert ac.contacts("ada@example.com")[0]["lists"] == {list_id: "2"}
    answer(start(api, {"email": "ada@example.com", "unsubscribe": [{"listid": list_id}]}), 200)


def test_structural_errors_are_the_400_validation_body(api: httpx.Client) -> None:
    refused = answer(start(api, {"email": "a@example.com"}, {"first_name": "No email"}), 400)
    too_many = answer(start(api, *people(251)), 400)
    empty = answer(start(api), 400)
    bad_field = answer(
        start(api, {"email": "a@example.com", "fields": [{"id": "x", "value": "1"}]}), 400
    )

    assert refused == {
        "success": 0,
        "message": "JSON payload did not pass validation",
        "failureReasons": [{"contact": 1, "failureReason": "'email' is required."}],
    }
    assert too_many["success"] == 0 and "250" in too_many["failureReasons"][0]
    assert empty["success"] == 0
    assert bad_field["failureReasons"][0]["contact"] == 0


def sized(size: int) -> bytes:
    """A two-contact import body of exactly `size` bytes."""
    body = {"contacts": [{"email": "a@example.com", "first_name": ""}, {"email": "b@example.com"}]}
    padding = size - len(json.dumps(body).encode())
    body["contacts"][0]["first_name"] = "x" * padding
    return json.dumps(body).encode()


def test_250_contacts_and_399999_bytes_are_accepted_but_no_more(api: httpx.Client) -> None:
    assert answer(start(api, *people(250)), 200)["queued_contacts"] == 250
    assert answer(api.post("/import/bulk_import", content=sized(399_999)), 200)["success"] == 1

    refused = answer(api.post("/import/bulk_import", content=sized(400_000)), 400)

    assert refused["failureReasons"] == [
        "The payload is 400000 bytes; at most 399,999 are accepted."
    ]


def test_the_101st_multi_contact_import_in_a_minute_is_a_400_rate_limit(
    api: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    accepted = [start(api, *people(2)).status_code for _ in range(100)]
    refused = answer(start(api, *people(2)), 400)

    assert accepted == [200] * 100
    assert refused["success"] == 0 and refused["message"] == RATE_LIMITED
    assert refused["failureReasons"] == ["Up to 100 imports may be requested per minute."]
    throttled = ac.throttled()
    assert (
        throttled["answers"][-1] | {"status": 400, "bucket": "bulk_import", "window_s": 60}
        == (throttled["answers"][-1])
    )
    assert (throttled["total"], throttled["buckets"]["bulk_import"]["refused"]) == (1, 1)
    clock.advance(60 - (clock.now % 60))  # the next epoch minute
    assert start(api, *people(2)).status_code == 200


def test_single_contact_imports_allow_20_a_minute(api: httpx.Client) -> None:
    statuses = [start(api, {"email": f"s{n}@example.com"}).status_code for n in range(21)]

    assert statuses == [200] * 20 + [400]
    assert start(api, *people(2)).status_code == 200, "multi-contact calls have their own count"


def test_import_info_needs_a_known_batch_id(api: httpx.Client) -> None:
    assert answer(api.get("/import/info"), 400) == {
        "success": 0,
        "message": "'batchId' is a required field.",
    }
    assert api.get("/import/info", params={"batchId": "nope"}).status_code == 404


def test_the_import_overview_lists_outstanding_and_completed_batches(
    api: httpx.Client, clock: EpochClock
) -> None:
    answer(start(api, *people(3)), 200)
    clock.advance(IMPORT_DELAY_S)
    answer(start(api, *people(2, "q")), 200)

    overview = answer(api.get("/import/bulk_import"), 200)

    day = "2027-01-15"
    assert overview == {
        "outstanding": [{"forDate": day, "batches": 1, "contacts": 2}],
        "recentlyCompleted": [{"forDate": day, "batches": 1, "contacts": 3}],
    }


def test_imports_draw_from_the_accounts_5_per_second_too(
    raw: httpx.Client, clock: EpochClock
) -> None:
    token = {"Api-Token": API_KEY}
    body = {"contacts": people(2)}
    statuses = [raw.post("/api/3/import/bulk_import", json=body, headers=token) for _ in range(5)]
    refused = raw.get("/api/3/automations", headers=token)

    assert [s.status_code for s in statuses] == [200] * 5
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")


def test_without_rate_limits_imports_have_no_minute_limit(clock: EpochClock) -> None:
    with start_activecampaign_sandbox(api_key=API_KEY, rate_limits=False, clock=clock) as sandbox:
        with httpx.Client(
            base_url=f"{sandbox.base_url}/api/3", headers={"Api-Token": API_KEY}
        ) as c:
            statuses = {start(c, {"email": f"s{n}@example.com"}).status_code for n in range(25)}

        assert statuses == {200}
        buckets = sandbox.throttled()["buckets"]
        assert buckets["bulk_import_single_contact"]["windows"]["60"] == {"limit": 20, "peak": 25}
