"""KlaviyoClient.find_list and plan_lists against the sandbox: a list found by its name or
made once, people put into lists and taken out by profile id (looked up 100 emails a
request), and a person Klaviyo holds no profile for refused by item before the list
changes, while the caller sends the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from dispatcher.delivery.calls import CallRunner, split_by_limits
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.base import FIND_LIST, ListChange, RateBucket
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import LIMITS
from dispatcher.providers.klaviyo.lists_calls import ADD_TO_LIST, REMOVE_FROM_LIST
from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY, headers, with_client

PROFILES = "/api/profiles"
START = 1_800_000_000.0  # a whole second (and minute) of epoch time


def addresses(count: int, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i:04d}@example.com" for i in range(count)]


def plant(sandbox: Sandbox, emails: Sequence[str]) -> None:
    for email in emails:
        sandbox.plant_profile(email=email)


def joins(list_id: str, emails: Sequence[str], member: bool = True) -> list[ListChange]:
    return [ListChange(email, list_id, member) for email in emails]


async def send_all(client: KlaviyoClient, changes: Sequence[ListChange]) -> None:
    """Every planned call, split by the limits as the contacts worker splits them."""
    planned = client.plan_lists(list(enumerate(changes)))
    for call in split_by_limits(planned, client.limits.lists):
        await call.send(call.owners)


def members(sandbox: Sandbox, list_id: str) -> list[str]:
    (found,) = [listed for listed in sandbox.lists() if listed["id"] == list_id]
    return list(found["members"])


def create_list(http: httpx.Client, name: str) -> str:
    body = {"data": {"type": "list", "attributes": {"name": name}}}
    created = http.post("/api/lists", content=json.dumps(body), headers=headers())
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


def queried_emails(request: dict[str, Any]) -> int:
    (text,) = parse_qs(request["query"])["filter"]
    assert text.startswith("any(email,[")
    return text.count("@")


def relationship_ids(request: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in request["body"]["data"]]


# --- find_list -----------------------------------------------------------------------------


def test_find_list_finds_an_existing_list_and_creates_nothing(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    list_id = create_list(http, "Spring VIPs")
    sandbox.reset()

    assert with_client(sandbox, lambda c: c.find_list("Spring VIPs")) == list_id

    (asked,) = sandbox.requests()
    assert (asked["method"], asked["path"]) == ("GET", "/api/lists")
    query = parse_qs(asked["query"])
    assert query["filter"] == ['equals(name,"Spring VIPs")']
    assert query["sort"] == ["created"]
    assert [listed["name"] for listed in sandbox.lists()] == ["Spring VIPs"]


def test_a_missing_list_is_created_once_and_found_after(sandbox: Sandbox) -> None:
    name = 'Spring "VIP" \\ list'

    async def twice(client: KlaviyoClient) -> tuple[str, str]:
        return await client.find_list(name), await client.find_list(name)

    first, second = with_client(sandbox, twice)

    assert first == second
    assert [(listed["id"], listed["name"]) for listed in sandbox.lists()] == [(first, name)]
    sent = [(r["method"], r["path"]) for r in sandbox.requests()]
    assert sent == [("GET", "/api/lists"), ("POST", "/api/lists"), ("GET", "/api/lists")]
    assert sandbox.requests()[1]["body"] == {"data": {"type": "list", "attributes": {"name": name}}}


def test_of_lists_sharing_a_name_the_oldest_is_found(sandbox: Sandbox, http: httpx.Client) -> None:
    oldest = sandbox.create_list("Twins")  # as an operator would make it
    create_list(http, "Twins")

    assert with_client(sandbox, lambda c: c.find_list("Twins")) == oldest


def test_a_blank_list_name_is_refused_before_sending(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentProviderError):
        with_client(sandbox, lambda c: c.find_list("  "))
    assert sandbox.requests() == []


# --- plan_lists ----------------------------------------------------------------------------


def test_calls_are_one_per_list_and_direction_in_first_seen_order() -> None:
    changes = [
        ListChange("a@example.com", "L1", True),
        ListChange("b@example.com", "L2", False),
        ListChange("c@example.com", "L1", True),
        ListChange("d@example.com", "L1", False),
        ListChange("e@example.com", "L2", False),
    ]

    async def plan() -> list[tuple[str, list[int]]]:
        async with KlaviyoClient(API_KEY, base_url="http://127.0.0.1:9") as client:
            calls = client.plan_lists(list(enumerate(changes)))
            return [(call.operation, call.owners) for call in calls]

    assert asyncio.run(plan()) == [
        (ADD_TO_LIST, [0, 2]),
        (REMOVE_FROM_LIST, [1, 4]),
        (REMOVE_FROM_LIST, [3]),
    ]


def test_the_limits_name_both_list_calls_and_pace_every_list_request() -> None:
    assert {name: limit.max_items for name, limit in LIMITS.lists.items()} == {
        ADD_TO_LIST: 1000,
        REMOVE_FROM_LIST: 1000,
    }
    assert {FIND_LIST, ADD_TO_LIST, REMOVE_FROM_LIST} <= LIMITS.paces_requests
    (_, create) = LIMITS.rates[FIND_LIST]
    windows = {(w.calls, w.seconds) for w in create.windows}
    assert windows == {(10, 1.0), (150, 60.0), (150, 86_400.0)}


def test_joins_look_up_100_emails_a_request_and_leaves_keep_consent(sandbox: Sandbox) -> None:
    people = addresses(250)
    plant(sandbox, people)
    sandbox.plant_profile(email=people[0], consent={"email": "SUBSCRIBED"})

    async def join_then_leave(client: KlaviyoClient) -> str:
        list_id = await client.find_list("Spring VIPs")
        await send_all(client, joins(list_id, people))
        await send_all(client, joins(list_id, people[:120], member=False))
        return list_id

    list_id = with_client(sandbox, join_then_leave)

    assert members(sandbox, list_id) == people[120:]
    lookups = sandbox.requests(PROFILES)
    assert [queried_emails(r) for r in lookups] == [100, 100, 50, 100, 20]
    assert {parse_qs(r["query"])["page[size]"][0] for r in lookups} == {"100"}
    changed = sandbox.requests(f"/api/lists/{list_id}/relationships/profiles")
    assert [(r["method"], len(relationship_ids(r))) for r in changed] == [
        ("POST", 250),
        ("DELETE", 120),
    ]
    (first,) = sandbox.profiles(email=people[0])
    assert first["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
    assert first["lists"] == []
    (kept,) = sandbox.profiles(email=people[-1])
    assert (kept["subscriptions"]["email"]["marketing"]["consent"], kept["lists"]) == (
        "NEVER_SUBSCRIBED",
        [list_id],
    )


def test_more_than_1000_changes_are_split_by_the_caller(sandbox: Sandbox) -> None:
    people = addresses(1201)
    plant(sandbox, people)

    async def join(client: KlaviyoClient) -> str:
        list_id = await client.find_list("Everyone")
        (call,) = client.plan_lists(list(enumerate(joins(list_id, people))))
        with pytest.raises(ValueError, match="at most 1000"):
            await call.send(call.owners)  # a caller bug: refused before anything is sent
        await send_all(client, joins(list_id, people))
        return list_id

    list_id = with_client(sandbox, join)

    changed = sandbox.requests(f"/api/lists/{list_id}/relationships/profiles")
    assert [len(relationship_ids(r)) for r in changed] == [1000, 201]
    assert len(sandbox.requests(PROFILES)) == 10 + 3
    assert members(sandbox, list_id) == people


def test_one_person_twice_in_a_call_is_one_entry_of_its_body(sandbox: Sandbox) -> None:
    plant(sandbox, ["ada@example.com"])

    async def join(client: KlaviyoClient) -> str:
        list_id = await client.find_list("Twice")
        await send_all(client, joins(list_id, ["ada@example.com", "Ada@Example.com"]))
        return list_id

    list_id = with_client(sandbox, join)

    (lookup,) = sandbox.requests(PROFILES)
    assert queried_emails(lookup) == 1
    (changed,) = sandbox.requests(f"/api/lists/{list_id}/relationships/profiles")
    assert len(relationship_ids(changed)) == 1
    assert members(sandbox, list_id) == ["ada@example.com"]


def test_a_person_klaviyo_does_not_hold_is_refused_by_item_and_the_others_are_sent(
    sandbox: Sandbox,
) -> None:
    """Nobody is created: the call names the unknown people's items before the list changes,
    and the caller (CallRunner, as the contacts worker runs it) fails them and sends the rest."""
    people = ["ann@example.com", "gone@example.com", "cy@example.com", "never@example.com"]
    plant(sandbox, [people[0], people[2]])
    refused: list[int] = []
    gave_up: list[int] = []

    async def no_sleep(seconds: float) -> None:
        return None

    async def join(client: KlaviyoClient) -> tuple[str, PermanentProviderError]:
        list_id = await client.find_list("Survivors")
        (call,) = client.plan_lists(list(enumerate(joins(list_id, people))))
        with pytest.raises(PermanentProviderError) as raised:
            await call.send(call.owners)
        runner: CallRunner[int] = CallRunner(
            gate=ProviderGate(),
            guard=lambda: None,
            refused=lambda owners, reason: refused.extend(owners),
            gave_up=lambda owners, reason: gave_up.extend(owners),
            max_attempts=3,
            backoff_base_s=0.0,
            sleep=no_sleep,
        )
        await runner.run(call)
        return list_id, raised.value

    list_id, error = with_client(sandbox, join)

    assert (error.item_indexes, error.code, error.status) == ((1, 3), "profile_not_found", None)
    assert "gone@example.com" in str(error)
    assert (refused, gave_up) == ([1, 3], [])
    assert members(sandbox, list_id) == [people[0], people[2]]
    (changed,) = sandbox.requests(f"/api/lists/{list_id}/relationships/profiles")
    assert len(relationship_ids(changed)) == 2, "only the narrowed call reached the list"
    assert sandbox.profiles(email="gone@example.com") == []


@pytest.mark.parametrize("member", [True, False])
def test_an_unknown_list_is_a_permanent_error_of_the_whole_call(
    sandbox: Sandbox, member: bool
) -> None:
    plant(sandbox, ["ada@example.com"])
    change = ListChange("ada@example.com", "NoSuch", member)

    async def send(client: KlaviyoClient) -> None:
        (call,) = client.plan_lists([(0, change)])
        await call.send(call.owners)

    with pytest.raises(PermanentProviderError) as raised:
        with_client(sandbox, send)

    method = "POST" if member else "DELETE"
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert raised.value.item_indexes == ()
    assert f"Klaviyo {method} /api/lists/NoSuch/relationships/profiles: HTTP 404" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("what", "path"),
    [
        ("find", "/api/lists"),
        ("lookup", PROFILES),
        ("join", "/api/lists/"),
        ("leave", "/api/lists/"),
    ],
)
def test_a_429_is_retryable_with_its_retry_after(sandbox: Sandbox, what: str, path: str) -> None:
    plant(sandbox, ["ada@example.com"])

    async def attempt(client: KlaviyoClient) -> None:
        if what == "find":
            sandbox.add_fault(path=path, status=429, retry_after=7)
            await client.find_list("Throttled")
            return
        list_id = await client.find_list("Throttled")
        sandbox.add_fault(path=path, status=429, retry_after=7)
        (call,) = client.plan_lists([(0, ListChange("ada@example.com", list_id, what == "join"))])
        await call.send(call.owners)

    with pytest.raises(RetryableProviderError) as raised:
        with_client(sandbox, attempt)

    assert (raised.value.status, raised.value.retry_after) == (429, 7)


def test_a_create_past_klaviyos_burst_is_retryable_and_the_next_try_makes_the_list() -> None:
    """create_list takes 10 a second (the sandbox's clock stands still here): the 11th is
    Klaviyo's 429; trying again in the next second finds no list, so makes it."""
    clock = [START]
    with start_sandbox(api_key=API_KEY, clock=lambda: clock[0]) as sandbox:
        with httpx.Client(base_url=sandbox.base_url) as http:
            for i in range(10):
                create_list(http, f"Burst {i}")

        with pytest.raises(RetryableProviderError) as raised:
            with_client(sandbox, lambda c: c.find_list("Eleventh"))
        clock[0] += 1
        made = with_client(sandbox, lambda c: c.find_list("Eleventh"))

        assert (raised.value.status, raised.value.retry_after) == (429, 1)
        named = [listed["id"] for listed in sandbox.lists() if listed["name"] == "Eleventh"]
        assert named == [made]


def test_each_request_is_paced_in_the_bucket_of_its_endpoint(sandbox: Sandbox) -> None:
    plant(sandbox, addresses(150))
    paced: list[tuple[str, tuple[str, ...]]] = []

    @contextlib.asynccontextmanager
    async def pacer(operation: str, buckets: Sequence[RateBucket]) -> AsyncIterator[None]:
        paced.append((operation, tuple(bucket.name for bucket in buckets)))
        yield

    async def run(client: KlaviyoClient) -> None:
        client.pace_requests(pacer)
        list_id = await client.find_list("Paced")
        await send_all(client, joins(list_id, addresses(150)))
        await send_all(client, joins(list_id, addresses(1), member=False))

    with_client(sandbox, run)

    add = "lists/{id}/relationships/profiles (add)"
    remove = "lists/{id}/relationships/profiles (remove)"
    assert paced == [
        (FIND_LIST, ("lists",)),
        (FIND_LIST, ("lists (create)",)),
        (ADD_TO_LIST, ("profiles",)),
        (ADD_TO_LIST, ("profiles",)),
        (ADD_TO_LIST, (add,)),
        (REMOVE_FROM_LIST, ("profiles",)),
        (REMOVE_FROM_LIST, (remove,)),
    ]
    assert len(sandbox.requests()) == len(paced), "every request went through the pacer"
    for operation, names in paced:
        assert set(names) <= {bucket.name for bucket in LIMITS.rates[operation]}


def test_the_leave_of_someone_klaviyo_does_not_hold_is_done(sandbox: Sandbox) -> None:
    """Nobody without a profile is in a list: such a leave is done, and the others leave."""
    people = ["stays-out@example.com", "never-held@example.com"]
    plant(sandbox, [people[0]])

    async def join_then_leave(client: KlaviyoClient) -> str:
        list_id = await client.find_list("Leavers")
        (join,) = client.plan_lists(list(enumerate(joins(list_id, people[:1]))))
        await join.send(join.owners)
        leaves = [ListChange(email, list_id, False) for email in people]
        (leave,) = client.plan_lists(list(enumerate(leaves)))
        await leave.send(leave.owners)
        return list_id

    list_id = with_client(sandbox, join_then_leave)

    assert members(sandbox, list_id) == []
    assert sandbox.profiles(email="never-held@example.com") == []
