"""The sandbox's profile bulk import jobs, profile reads and planted drift, over raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY, EpochClock, headers

JOBS = "/api/profile-bulk-import-jobs"
START = 1_800_000_000.0
PROCESSING_S = 2.0


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY, clock=clock, import_processing_s=PROCESSING_S) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10, headers=headers()) as client:
        yield client


def import_job(profiles: list[dict[str, Any]], lists: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-bulk-import-job",
        "attributes": {
            "profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}
        },
    }
    if lists is not None:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": i} for i in lists]}}
    return {"data": data}


def start(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post(JOBS, content=json.dumps(body))


def find(http: httpx.Client, email: str, **params: str) -> httpx.Response:
    query = {"filter": f'equals(email,"{email}")', **params}
    return http.get("/api/profiles", params=query)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/vnd.api+json"
    (error,) = response.json()["errors"]
    assert set(error) >= {"id", "code", "title", "detail"}
    return dict(error)


ADA = {
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "external_id": "c-1",
    "location": {"city": "London"},
    "properties": {"plan": "gold"},
}


# --- bulk import jobs ---------------------------------------------------------------------


def test_an_import_job_is_queued_then_processing_then_complete(
    http: httpx.Client, clock: EpochClock
) -> None:
    accepted = start(http, import_job([ADA, {"email": "bob@example.com"}]))

    assert accepted.status_code == 202
    job = accepted.json()["data"]
    assert job["type"] == "profile-bulk-import-job"
    assert job["attributes"] == {
        "status": "queued",
        "created_at": "2027-01-15T08:00:00.000000+00:00",
        "total_count": 2,
        "completed_count": 0,
        "failed_count": 0,
        "started_at": None,
        "completed_at": None,
        "expires_at": "2027-01-22T08:00:00.000000+00:00",
    }
    assert find(http, "ada@example.com").json()["data"] == [], "not imported before it completes"

    clock.now = START + PROCESSING_S / 2
    polled = http.get(f"{JOBS}/{job['id']}").json()["data"]["attributes"]
    assert (polled["status"], polled["started_at"]) == (
        "processing",
        "2027-01-15T08:00:01.000000+00:00",
    )

    clock.now = START + PROCESSING_S
    done = http.get(f"{JOBS}/{job['id']}")
    assert done.status_code == 200
    attributes = done.json()["data"]["attributes"]
    assert (attributes["status"], attributes["completed_count"], attributes["failed_count"]) == (
        "complete",
        2,
        0,
    )
    assert attributes["completed_at"] == "2027-01-15T08:00:02.000000+00:00"


def test_imported_profiles_are_stored_and_join_the_jobs_lists(
    http: httpx.Client, clock: EpochClock
) -> None:
    start(http, import_job([ADA], lists=["NEWS"]))
    clock.now += PROCESSING_S

    (profile,) = find(http, "ADA@example.com").json()["data"]
    attributes = profile["attributes"]
    assert {k: attributes[k] for k in ("email", "first_name", "last_name", "external_id")} == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "external_id": "c-1",
    }
    assert attributes["location"]["city"] == "London"
    assert attributes["properties"] == {"plan": "gold"}
    assert "subscriptions" not in attributes, "only with additional-fields[profile]"
    lists = http.get(f"/api/profiles/{profile['id']}/lists")
    assert [(item["type"], item["id"]) for item in lists.json()["data"]] == [("list", "NEWS")]


def test_a_later_import_merges_properties(http: httpx.Client, clock: EpochClock) -> None:
    start(http, import_job([ADA]))
    clock.now += PROCESSING_S
    start(http, import_job([{"email": "ada@example.com", "properties": {"city": "Paris"}}]))
    clock.now += PROCESSING_S

    (profile,) = find(http, "ada@example.com").json()["data"]
    assert profile["attributes"]["properties"] == {"plan": "gold", "city": "Paris"}
    assert profile["attributes"]["first_name"] == "Ada"


def test_invalid_profiles_become_import_errors_paged_by_cursor(
    http: httpx.Client, clock: EpochClock
) -> None:
    bad = [{"email": f"not-an-email-{i}"} for i in range(25)]
    job = start(http, import_job([ADA, *bad, {"first_name": "nobody"}])).json()["data"]
    clock.now += PROCESSING_S

    attributes = http.get(f"{JOBS}/{job['id']}").json()["data"]["attributes"]
    assert (attributes["completed_count"], attributes["failed_count"]) == (1, 26)
    errors: list[dict[str, Any]] = []
    url: str | None = f"{JOBS}/{job['id']}/import-errors?page[size]=10"
    pages = 0
    while url:
        page = http.get(url).json()
        errors += page["data"]
        next_url = page["links"]["next"]
        url = (
            None if next_url is None else urlsplit(next_url)._replace(scheme="", netloc="").geturl()
        )
        pages += 1
    assert pages == 3
    assert len(errors) == 26 and len({e["id"] for e in errors}) == 26
    assert errors[0]["type"] == "import-error"
    assert errors[0]["attributes"] | {"detail": "-"} == {
        "code": "invalid",
        "title": "Invalid input.",
        "detail": "-",
        "source": {"pointer": "/data/attributes/profiles/data/1/attributes/email"},
        "original_payload": {"email": "not-an-email-0"},
    }
    assert errors[-1]["attributes"]["source"]["pointer"] == (
        "/data/attributes/profiles/data/26/attributes"
    )
    assert find(http, "not-an-email-0").json()["data"] == []


def test_an_import_job_over_10000_profiles_is_refused(sandbox: Sandbox, http: httpx.Client) -> None:
    profiles = [{"email": f"p{i}@example.com"} for i in range(10_001)]

    refused = start(http, import_job(profiles))

    assert refused.status_code == 400
    assert error_of(refused)["source"] == {"pointer": "/data/attributes/profiles/data"}
    assert sandbox.requests() == []


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"type": "profile-import-job", "attributes": {}}},
        {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": []}}}},
        {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [1]}}}},
        import_job([ADA]) | {"data": import_job([ADA])["data"] | {"relationships": {"lists": {}}}},
    ],
)
def test_a_malformed_import_job_is_400(http: httpx.Client, body: dict[str, Any]) -> None:
    refused = start(http, body)

    assert refused.status_code == 400
    assert error_of(refused)["code"] == "invalid"


@pytest.mark.parametrize("suffix", ["", "/import-errors"])
def test_an_unknown_import_job_is_404(http: httpx.Client, suffix: str) -> None:
    response = http.get(f"{JOBS}/no-such-job{suffix}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_invalid_page_cursor_is_400(http: httpx.Client) -> None:
    job = start(http, import_job([ADA])).json()["data"]

    response = http.get(f"{JOBS}/{job['id']}/import-errors", params={"page[cursor]": "!!"})

    assert response.status_code == 400
    assert error_of(response)["source"] == {"parameter": "page[cursor]"}


# --- profiles -----------------------------------------------------------------------------


def subscribe(email: str, list_id: str) -> dict[str, Any]:
    subscriptions = {"email": {"marketing": {"consent": "SUBSCRIBED"}}}
    profile = {"type": "profile", "attributes": {"email": email, "subscriptions": subscriptions}}
    return {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {"profiles": {"data": [profile]}},
            "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
        }
    }


def test_a_profile_shows_its_consent_and_lists_with_subscriptions(
    http: httpx.Client, clock: EpochClock
) -> None:
    subscribed = http.post(
        "/api/profile-subscription-bulk-create-jobs",
        content=json.dumps(subscribe("eve@example.com", "NEWS")),
    )
    assert subscribed.status_code == 202

    found = find(http, "eve@example.com", **{"additional-fields[profile]": "subscriptions"})

    (profile,) = found.json()["data"]
    assert profile["type"] == "profile"
    marketing = profile["attributes"]["subscriptions"]["email"]["marketing"]
    assert (marketing["consent"], marketing["can_receive_email_marketing"]) == ("SUBSCRIBED", True)
    assert marketing["suppression"] == []
    assert marketing["consent_timestamp"] == "2027-01-15T08:00:00.000000+00:00"
    sms = profile["attributes"]["subscriptions"]["sms"]["marketing"]
    assert sms["consent"] == "NEVER_SUBSCRIBED"
    lists = http.get(f"/api/profiles/{profile['id']}/lists").json()
    assert [item["id"] for item in lists["data"]] == ["NEWS"]


def test_an_unknown_email_is_an_empty_data_array(http: httpx.Client) -> None:
    response = find(http, "nobody@example.com", **{"additional-fields[profile]": "subscriptions"})

    assert response.status_code == 200
    assert response.json()["data"] == []


def test_a_profile_is_found_by_its_other_identifiers(http: httpx.Client, clock: EpochClock) -> None:
    start(http, import_job([ADA | {"phone_number": "+447700900123"}]))
    clock.now += PROCESSING_S

    by_id = http.get("/api/profiles", params={"filter": 'equals(external_id,"c-1")'})
    by_phone = http.get("/api/profiles", params={"filter": 'equals(phone_number,"+447700900123")'})

    assert by_id.json()["data"][0]["attributes"]["email"] == "ada@example.com"
    assert by_phone.json()["data"][0]["id"] == by_id.json()["data"][0]["id"]


def test_two_people_sharing_a_phone_number_are_two_profiles(http: httpx.Client) -> None:
    def import_profile(email: str) -> httpx.Response:
        attributes = {"email": email, "phone_number": "+15005550006"}
        body = {"data": {"type": "profile", "attributes": attributes}}
        return http.post("/api/profile-import", content=json.dumps(body))

    first, second = import_profile("ann@example.com"), import_profile("ben@example.com")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["data"]["id"] != second.json()["data"]["id"]
    (ann,) = find(http, "ann@example.com").json()["data"]
    assert ann["attributes"]["phone_number"] == "+15005550006"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filter": 'equals(first_name,"Ada")'}, "filter"),
        ({"filter": "equals(email,ada@example.com)"}, "filter"),
        ({"filter": 'contains(email,"ada")'}, "filter"),
        ({}, "filter"),
        (
            {"filter": 'equals(email,"a@b.co")', "additional-fields[profile]": "everything"},
            "additional-fields[profile]",
        ),
        ({"filter": 'equals(email,"a@b.co")', "page[size]": "101"}, "page[size]"),
    ],
)
def test_a_bad_profiles_query_is_400_naming_the_parameter(
    http: httpx.Client, params: dict[str, str], parameter: str
) -> None:
    response = http.get("/api/profiles", params=params)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["source"]) == ("invalid", {"parameter": parameter})


def test_lists_of_an_unknown_profile_is_404(http: httpx.Client) -> None:
    response = http.get("/api/profiles/01UNKNOWN/lists")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_reads_need_the_key_and_revision(http: httpx.Client) -> None:
    unauthenticated = http.get(
        "/api/profiles",
        params={"filter": 'equals(email,"a@b.co")'},
        headers={"Authorization": "Klaviyo-API-Key wrong"},
    )
    no_revision = http.get(
        "/api/profiles", params={"filter": 'equals(email,"a@b.co")'}, headers={"revision": ""}
    )

    assert unauthenticated.status_code == 401
    assert no_revision.status_code == 400
    assert error_of(no_revision)["source"] == {"parameter": "revision"}


def test_a_get_is_recorded_and_a_post_to_a_read_endpoint_is_405(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    find(http, "a@b.co")
    refused = http.post("/api/profiles/01X/lists", content=b"{}")

    (recorded,) = sandbox.requests()
    assert (recorded["method"], recorded["path"], recorded["endpoint"]) == (
        "GET",
        "/api/profiles",
        "GET /api/profiles",
    )
    assert recorded["query"].startswith("filter=")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET")


# --- planted drift ------------------------------------------------------------------------


def test_a_planted_profile_shows_as_klaviyo_would_and_is_neither_counted_nor_recorded(
    sandbox: Sandbox, http: httpx.Client, clock: EpochClock
) -> None:
    start(http, import_job([ADA], lists=["NEWS"]))
    clock.now += PROCESSING_S
    planted = {
        "email": "ada@example.com",
        "first_name": "Augusta",
        "properties": {"plan": "silver"},
        "consent": {"email": "UNSUBSCRIBED"},
        "suppression": [{"reason": "HARD_BOUNCE", "timestamp": "2027-01-01T00:00:00+00:00"}],
        "lists": [],
    }
    for _ in range(100):  # past every per-second window: control calls are not limited
        answer = http.post("/_sandbox/profiles", json=planted)
        assert answer.status_code == 200

    (profile,) = find(
        http, "ada@example.com", **{"additional-fields[profile]": "subscriptions"}
    ).json()["data"]
    attributes = profile["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Augusta", "Lovelace")
    assert attributes["properties"] == {"plan": "silver"}, "planting replaces the properties"
    marketing = attributes["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "UNSUBSCRIBED"
    assert marketing["suppression"] == [
        {"reason": "HARD_BOUNCE", "timestamp": "2027-01-01T00:00:00+00:00"}
    ]
    assert marketing["can_receive_email_marketing"] is False
    assert http.get(f"/api/profiles/{profile['id']}/lists").json()["data"] == []
    assert answer.json()["data"]["attributes"] == attributes
    assert [r["method"] for r in sandbox.requests()] == ["POST", "GET", "GET"]
    assert sandbox.throttled()["total"] == 0


def test_planting_through_the_runner_creates_an_unknown_profile(sandbox: Sandbox) -> None:
    resource = sandbox.plant_profile(email="new@example.com", consent={"email": "SUBSCRIBED"})

    assert resource["attributes"]["email"] == "new@example.com"
    assert resource["attributes"]["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"


@pytest.mark.parametrize(
    "planted",
    [
        {"first_name": "no identity"},
        {"email": "a@b.co", "consent": {"email": "MAYBE"}},
        {"email": "a@b.co", "suppression": ["BORED"]},
        {"email": "a@b.co", "colour": "red"},
        [1],
    ],
)
def test_an_invalid_planted_profile_is_400(http: httpx.Client, planted: Any) -> None:
    assert http.post("/_sandbox/profiles", json=planted).status_code == 400
