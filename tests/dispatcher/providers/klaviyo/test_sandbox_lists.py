"""The sandbox's lists over raw HTTP: create_list and get_lists, profiles joining and leaving a
list by id (consent unchanged), a list's members, get_profiles by any(email,[...]), the
endpoints' checks and create_list's daily window, on a virtual clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY, headers
from tests.dispatcher.helpers import EpochClock as Clock

LISTS = "/api/lists"
START = 1_800_000_000.0  # a whole minute (and second) of epoch time
CREATED_AT = "2027-01-15T08:00:00.000000+00:00"


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY, clock=clock) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10, headers=headers()) as client:
        yield client


def create(http: httpx.Client, name: str, **attributes: Any) -> httpx.Response:
    body = {"data": {"type": "list", "attributes": {"name": name, **attributes}}}
    return http.post(LISTS, content=json.dumps(body))


def made(http: httpx.Client, name: str) -> str:
    response = create(http, name)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def relationships(list_id: str) -> str:
    return f"{LISTS}/{list_id}/relationships/profiles"


def profile_ids(*ids: str) -> dict[str, Any]:
    return {"data": [{"type": "profile", "id": i} for i in ids]}


def change(http: httpx.Client, method: str, list_id: str, body: Any) -> httpx.Response:
    return http.request(method, relationships(list_id), content=json.dumps(body))


def lists(http: httpx.Client, **params: str) -> list[str]:
    response = http.get(LISTS, params=params)
    assert response.status_code == 200, response.text
    return [resource["id"] for resource in response.json()["data"]]


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/vnd.api+json"
    (error,) = response.json()["errors"]
    return dict(error)


def planted(sandbox: Sandbox, email: str, **fields: Any) -> str:
    return str(sandbox.plant_profile(email=email, **fields)["id"])


# --- create_list and get_lists -------------------------------------------------------------


def test_a_list_is_created_201_and_found_by_its_name_or_id(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    response = create(http, "Spring VIPs")

    assert response.status_code == 201
    resource = response.json()["data"]
    assert resource["type"] == "list"
    assert re.fullmatch(r"[A-Za-z0-9]{6}", resource["id"])
    assert resource["attributes"] == {
        "name": "Spring VIPs",
        "created": CREATED_AT,
        "updated": CREATED_AT,
        "opt_in_process": "double_opt_in",
    }
    list_id = resource["id"]
    other = made(http, "Autumn")
    assert lists(http, filter='equals(name,"Spring VIPs")') == [list_id]
    assert lists(http, filter=f'any(id,["{other}","nope","{list_id}"])') == [list_id, other]
    assert lists(http, filter='any(name,["Autumn", "Winter"])') == [other]
    assert lists(http) == [list_id, other]
    assert [r["method"] for r in sandbox.requests(LISTS)][:2] == ["POST", "POST"]


def test_an_opt_in_process_may_be_given(http: httpx.Client) -> None:
    response = create(http, "Single", opt_in_process="single_opt_in")

    assert response.json()["data"]["attributes"]["opt_in_process"] == "single_opt_in"


def test_a_name_with_quotes_and_backslashes_is_found_by_its_escaped_filter(
    http: httpx.Client,
) -> None:
    list_id = made(http, 'Say "hi" \\ bye')
    made(http, "Say")

    assert lists(http, filter='equals(name,"Say \\"hi\\" \\\\ bye")') == [list_id]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/data"),
        ({"data": {"type": "lists", "attributes": {"name": "x"}}}, "/data/type"),
        ({"data": {"type": "list"}}, "/data/attributes"),
        ({"data": {"type": "list", "attributes": {}}}, "/data/attributes/name"),
        ({"data": {"type": "list", "attributes": {"name": ""}}}, "/data/attributes/name"),
        ({"data": {"type": "list", "attributes": {"name": "  "}}}, "/data/attributes/name"),
        (
            {"data": {"type": "list", "attributes": {"name": "x", "opt_in_process": "triple"}}},
            "/data/attributes/opt_in_process",
        ),
    ],
)
def test_a_bad_list_body_is_400_with_a_pointer(
    sandbox: Sandbox, http: httpx.Client, body: Any, pointer: str
) -> None:
    response = http.post(LISTS, content=json.dumps(body))

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["source"]) == ("invalid", {"pointer": pointer})
    assert sandbox.lists() == []


def test_lists_come_ten_a_page_oldest_first_and_sort_as_asked(
    http: httpx.Client, clock: Clock
) -> None:
    ids = []
    for i in range(12):  # create_list takes 10 a second
        ids.append(made(http, f"List {11 - i:02d}"))
        clock.now += 1

    first = http.get(LISTS).json()
    second = http.get(first["links"]["next"]).json()

    assert [r["id"] for r in first["data"]] == ids[:10]
    assert [r["id"] for r in second["data"]] == ids[10:]
    assert second["links"]["next"] is None and first["links"]["prev"] is None
    assert lists(http, sort="-created", **{"page[size]": "3"}) == ids[::-1][:3]
    assert lists(http, sort="name", **{"page[size]": "2"}) == [ids[-1], ids[-2]]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"page[size]": "11"}, "page[size]"),
        ({"page[size]": "0"}, "page[size]"),
        ({"sort": "size"}, "sort"),
        ({"filter": 'equals(created,"2027-01-15")'}, "filter"),
        ({"filter": "equals(name,Spring)"}, "filter"),
        ({"filter": 'contains(name,"Spr")'}, "filter"),
        ({"filter": "any(name,[])"}, "filter"),
        ({"filter": 'any(name,["a",])'}, "filter"),
        ({"filter": 'equals(name,["a"])'}, "filter"),
        ({"filter": 'and(equals(name,"a"),equals(id,"b"))'}, "filter"),
    ],
)
def test_a_bad_lists_query_is_400_naming_the_parameter(
    http: httpx.Client, params: dict[str, str], parameter: str
) -> None:
    response = http.get(LISTS, params=params)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["source"]) == ("invalid", {"parameter": parameter})


# --- joining and leaving -------------------------------------------------------------------


def test_profiles_join_and_leave_a_list_by_id_and_consent_stays(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    ada = planted(sandbox, "ada@example.com", consent={"email": "SUBSCRIBED"})
    bob = planted(sandbox, "bob@example.com")
    list_id = made(http, "Spring VIPs")

    joined = change(http, "POST", list_id, profile_ids(ada, bob))
    again = change(http, "POST", list_id, profile_ids(ada))

    assert (joined.status_code, joined.content, again.status_code) == (204, b"", 204)
    members = http.get(f"{LISTS}/{list_id}/profiles").json()["data"]
    assert [(m["type"], m["id"]) for m in members] == [("profile", ada), ("profile", bob)]
    ada_lists = http.get(f"/api/profiles/{ada}/lists").json()["data"]
    assert [(r["id"], r["attributes"]["name"]) for r in ada_lists] == [(list_id, "Spring VIPs")]
    assert sandbox.lists()[0]["members"] == ["ada@example.com", "bob@example.com"]

    left = change(http, "DELETE", list_id, profile_ids(ada))
    not_in = change(http, "DELETE", list_id, profile_ids(ada))

    assert (left.status_code, not_in.status_code) == (204, 204)
    assert sandbox.lists()[0]["members"] == ["bob@example.com"]
    (ada_now,) = sandbox.profiles(email="ada@example.com")
    assert ada_now["lists"] == []
    marketing = ada_now["subscriptions"]["email"]["marketing"]
    assert (marketing["consent"], marketing["can_receive_email_marketing"]) == ("SUBSCRIBED", True)
    (bob_now,) = sandbox.profiles(email="bob@example.com")
    assert bob_now["subscriptions"]["email"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
    recorded = sandbox.requests(relationships(list_id))
    assert [r["method"] for r in recorded] == ["POST", "POST", "DELETE", "DELETE"]
    assert recorded[-1]["body"] == profile_ids(ada)


def test_a_list_relationship_from_a_subscribe_job_shows_among_the_members(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    """One set of lists per profile: the consent jobs' and the list calls' alike."""
    list_id = made(http, "Newsletter")
    planted(sandbox, "eve@example.com", lists=[list_id])

    members = http.get(f"{LISTS}/{list_id}/profiles").json()["data"]

    assert [m["attributes"]["email"] for m in members] == ["eve@example.com"]


def test_members_page_and_filter_by_email(sandbox: Sandbox, http: httpx.Client) -> None:
    list_id = made(http, "Many")
    ids = [planted(sandbox, f"m{i}@example.com") for i in range(5)]
    change(http, "POST", list_id, profile_ids(*ids))
    url = f"{LISTS}/{list_id}/profiles"

    first = http.get(url, params={"page[size]": "3"}).json()
    second = http.get(first["links"]["next"]).json()
    found = http.get(url, params={"filter": 'any(email,["M1@example.com","m4@example.com"])'})
    subscriptions = http.get(url, params={"additional-fields[profile]": "subscriptions"})

    assert [m["id"] for m in first["data"] + second["data"]] == ids
    assert [m["id"] for m in found.json()["data"]] == [ids[1], ids[4]]
    assert "subscriptions" in subscriptions.json()["data"][0]["attributes"]
    too_many = http.get(url, params={"page[size]": "101"})
    assert error_of(too_many)["source"] == {"parameter": "page[size]"}


@pytest.mark.parametrize(("method", "path"), [("POST", "rel"), ("DELETE", "rel"), ("GET", "pro")])
def test_an_unknown_list_is_404(
    sandbox: Sandbox, http: httpx.Client, method: str, path: str
) -> None:
    ada = planted(sandbox, "ada@example.com")
    url = relationships("NoSuch") if path == "rel" else f"{LISTS}/NoSuch/profiles"
    body = json.dumps(profile_ids(ada)) if method != "GET" else None

    response = http.request(method, url, content=body)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert sandbox.profiles(email="ada@example.com")[0]["lists"] == []


def test_an_unknown_profile_id_is_400_pointing_at_it_and_nothing_changes(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    ada = planted(sandbox, "ada@example.com")
    list_id = made(http, "Strict")

    response = change(http, "POST", list_id, profile_ids(ada, "01NOSUCHPROFILE"))

    assert response.status_code == 400
    assert error_of(response)["source"] == {"pointer": "/data/1/id"}
    assert sandbox.lists()[0]["members"] == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"data": []}, "/data"),
        ({"data": {"type": "profile", "id": "x"}}, "/data"),
        (profile_ids(*(f"id{i}" for i in range(1001))), "/data"),
        ({"data": [{"type": "list", "id": "x"}]}, "/data/0/type"),
        ({"data": [{"type": "profile"}]}, "/data/0/id"),
        ({"data": [{"type": "profile", "id": ""}]}, "/data/0/id"),
        ({"data": ["x"]}, "/data/0"),
    ],
)
def test_a_bad_relationships_body_is_400_with_a_pointer(
    sandbox: Sandbox, http: httpx.Client, body: Any, pointer: str
) -> None:
    list_id = made(http, "Strict")

    for method in ("POST", "DELETE"):
        response = change(http, method, list_id, body)

        assert response.status_code == 400
        assert error_of(response)["source"] == {"pointer": pointer}


def test_a_list_change_needs_its_content_type_and_the_others_are_405(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    list_id = made(http, "Typed")
    body = json.dumps(profile_ids(planted(sandbox, "ada@example.com")))

    untyped = http.request(
        "DELETE", relationships(list_id), content=body, headers={"Content-Type": "text/plain"}
    )
    patched = http.patch(LISTS, content=b"{}")
    read = http.get(relationships(list_id))

    assert untyped.status_code == 415
    assert (patched.status_code, patched.headers["allow"]) == (405, "GET, POST")
    assert (read.status_code, read.headers["allow"]) == (405, "POST, DELETE")


# --- get_profiles by any(email) ------------------------------------------------------------


def test_profiles_are_found_by_any_of_their_emails_each_once_and_paged(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    ids = [planted(sandbox, f"p{i}@example.com") for i in range(3)]
    listed = (
        '"p0@example.com","nobody@example.com","P0@Example.com","p2@example.com","p1@example.com"'
    )
    query = {"filter": f"any(email,[{listed}])", "page[size]": "2"}

    first = http.get("/api/profiles", params=query).json()
    second = http.get(first["links"]["next"]).json()

    assert [p["id"] for p in first["data"]] == [ids[0], ids[2]]
    assert [p["id"] for p in second["data"]] == [ids[1]]
    assert second["links"]["next"] is None


# --- rate limits and the control endpoint --------------------------------------------------


def test_create_list_takes_150_a_day(sandbox: Sandbox, http: httpx.Client, clock: Clock) -> None:
    """10 a second, 150 a minute and 150 a UTC day: the 151st of a day waits for midnight."""
    for i in range(150):
        assert create(http, f"L{i}").status_code == 201
        if i % 10 == 9:
            clock.now += 1
    clock.now = START + 120  # a fresh minute

    refused = create(http, "one too many")

    midnight = (START // 86_400 + 1) * 86_400
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == int(midnight - clock.now)
    bucket = sandbox.throttled()["buckets"]["POST /api/lists"]
    assert bucket["refused"] == 1
    assert bucket["windows"]["86400"] == {"limit": 150, "peak": 150}


def test_the_control_endpoint_shows_each_list_with_its_members(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    list_id = made(http, "Shown")
    change(http, "POST", list_id, profile_ids(planted(sandbox, "ada@example.com")))
    sandbox.reset()

    shown = httpx.get(f"{sandbox.base_url}/_sandbox/lists").json()

    assert shown == [
        {
            "id": list_id,
            "name": "Shown",
            "opt_in_process": "double_opt_in",
            "created": CREATED_AT,
            "members": ["ada@example.com"],
        }
    ]
    assert sandbox.requests() == [], "control calls are not recorded"
