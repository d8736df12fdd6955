"""The ActiveCampaign sandbox's campaigns: planted with their counters (POST
/_sandbox/campaigns), listed by GET /api/3/campaigns as ActiveCampaign lists them (every
counter a string, meta.total a string, limit/offset pages); automations alongside."""

from __future__ import annotations

from typing import Any

import httpx

from dispatcher.sandbox.activecampaign.campaigns import COUNTERS
from tests.dispatcher.sandbox.activecampaign.conftest import answer


def _plant(raw: httpx.Client, *campaigns: dict[str, Any]) -> list[dict[str, Any]]:
    planted: list[dict[str, Any]] = answer(
        raw.post("/_sandbox/campaigns", json=list(campaigns)), 201
    )["campaigns"]
    return planted


def test_campaigns_are_listed_with_string_counters(raw: httpx.Client, api: httpx.Client) -> None:
    _plant(
        raw,
        {"name": "Summer", "counters": {"send_amt": 120, "uniqueopens": 48, "hardbounces": 2}},
        {"name": "Next week", "status": 1, "sdate": "2027-01-20T10:00:00-05:00"},
    )

    listed = answer(api.get("/campaigns"), 200)

    summer, later = listed["campaigns"]
    assert listed["meta"]["total"] == "2"
    assert (summer["id"], summer["name"], summer["status"], summer["type"]) == (
        "1",
        "Summer",
        "5",
        "single",
    )
    assert all(isinstance(summer[name], str) for name in COUNTERS)
    assert (summer["send_amt"], summer["uniqueopens"], summer["hardbounces"]) == ("120", "48", "2")
    assert summer["opens"] == "0"
    assert (later["status"], later["sdate"]) == ("1", "2027-01-20T10:00:00-05:00")


def test_campaigns_are_paged_by_limit_and_offset(raw: httpx.Client, api: httpx.Client) -> None:
    _plant(raw, *({"name": f"C{n}"} for n in range(5)))

    page = answer(api.get("/campaigns", params={"limit": 2, "offset": 3}), 200)

    assert [c["name"] for c in page["campaigns"]] == ["C3", "C4"]
    assert page["meta"] == {"total": "5", "page_input": {"limit": 2, "offset": 3}}


def test_a_draft_has_no_send_date_and_a_bad_campaign_plants_nothing(
    raw: httpx.Client, api: httpx.Client
) -> None:
    (draft,) = _plant(raw, {"name": "Draft", "status": 0})
    refused = raw.post(
        "/_sandbox/campaigns",
        json=[{"name": "Fine"}, {"name": "Bad", "counters": {"send_amt": "many"}}],
    )

    assert draft["sdate"] is None
    assert refused.status_code == 400
    assert [c["name"] for c in answer(api.get("/campaigns"), 200)["campaigns"]] == ["Draft"]


def test_automations_are_listed_with_their_counters(api: httpx.Client) -> None:
    listed = answer(api.get("/automations"), 200)

    assert [a["name"] for a in listed["automations"]] == [
        "Welcome series",
        "Abandoned cart reminder",
    ]
    assert {(a["status"], a["entered"], a["exited"]) for a in listed["automations"]} == {
        ("1", "0", "0")
    }
