"""Event tracking: the account switch, event names, and trackcmp's form-encoded POST /event
on the same server."""

from __future__ import annotations

import json

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import ACTID, TRACKING_KEY, answer

SPAWNED = {"success": 1, "message": "Event spawned"}


def enable(api: httpx.Client) -> None:
    answer(api.put("/eventTracking", json={"eventTracking": {"enabled": True}}), 200)


def track(raw: httpx.Client, **fields: str) -> httpx.Response:
    form = {"actid": ACTID, "key": TRACKING_KEY, "event": "viewed_product"} | fields
    return raw.post("/event", data={k: v for k, v in form.items() if v != "-"})


def test_tracking_is_off_until_switched_on(api: httpx.Client, raw: httpx.Client) -> None:
    assert answer(api.get("/eventTracking"), 200) == {"eventTracking": {"enabled": False}}
    refused = answer(track(raw), 200)
    enable(api)

    assert refused["success"] == 0
    assert answer(api.get("/eventTracking"), 200) == {"eventTracking": {"enabled": True}}
    assert answer(track(raw), 200) == SPAWNED


def test_a_tracked_event_is_recorded_for_the_account(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    enable(api)
    visit = json.dumps({"email": "ada@example.com"})

    assert answer(track(raw, eventdata='{"sku": "tea"}', visit=visit), 200) == SPAWNED
    assert answer(track(raw, event="ordered", visit="-"), 200) == SPAWNED

    events = ac.view("events")
    assert [(e["event"], e["email"], e["eventdata"]) for e in events] == [
        ("viewed_product", "ada@example.com", '{"sku": "tea"}'),
        ("ordered", None, ""),
    ]
    assert [
        e["event"] for e in raw.get("/_sandbox/events", params={"event": "ordered"}).json()
    ] == ["ordered"]
    names = answer(api.get("/eventTrackingEvents"), 200)["eventTrackingEvents"]
    assert names == [{"name": "viewed_product"}, {"name": "ordered"}]
    (logged, _) = ac.requests("/event")
    assert logged["body"] == {
        "actid": ACTID,
        "key": TRACKING_KEY,
        "event": "viewed_product",
        "eventdata": '{"sku": "tea"}',
        "visit": visit,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"actid": "1"},
        {"key": "wrong"},
        {"actid": "-"},
        {"event": "x" * 33},
        {"event": "-"},
        {"visit": "not json"},
    ],
)
def test_refused_events_are_the_failure_answer_and_not_recorded(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox, fields: dict[str, str]
) -> None:
    enable(api)

    refused = answer(track(raw, **fields), 200)

    assert refused["success"] == 0 and refused["message"]
    assert ac.view("events") == []
    assert ac.requests("/event") == []
    assert (
        ac.rejections()[-1] | {"path": "/event", "status": 200, "body": refused}
        == (ac.rejections()[-1])
    )


def test_a_32_character_event_name_is_taken(api: httpx.Client, raw: httpx.Client) -> None:
    enable(api)

    assert answer(track(raw, event="x" * 32), 200) == SPAWNED


def test_event_tracking_needs_a_post(raw: httpx.Client) -> None:
    assert raw.get("/event").status_code == 405


def test_event_names_are_created_listed_and_deleted(api: httpx.Client) -> None:
    created = answer(
        api.post("/eventTrackingEvents", json={"eventTrackingEvent": {"name": "signed up"}}), 201
    )
    duplicate = api.post("/eventTrackingEvents", json={"eventTrackingEvent": {"name": "signed up"}})
    too_long = api.post("/eventTrackingEvents", json={"eventTrackingEvent": {"name": "y" * 33}})

    assert created == {"eventTrackingEvent": {"name": "signed up"}}
    assert answer(duplicate, 422)["errors"][0]["code"] == "duplicate"
    assert answer(too_long, 422)["errors"][0]["code"] == "field_invalid"
    assert answer(api.delete("/eventTrackingEvents/signed%20up"), 200) == {}
    assert answer(api.get("/eventTrackingEvents"), 200)["eventTrackingEvents"] == []
    assert api.delete("/eventTrackingEvents/signed%20up").status_code == 404


def test_switching_needs_a_boolean(api: httpx.Client) -> None:
    refused = api.put("/eventTracking", json={"eventTracking": {"enabled": "maybe"}})

    assert answer(refused, 422)["errors"][0]["source"] == {"pointer": "/eventTracking/enabled"}
