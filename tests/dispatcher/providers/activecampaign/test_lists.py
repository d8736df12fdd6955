"""Segments' lists against the ActiveCampaign sandbox: a list found by name or made once
(`find_list`), and people put into it and taken out of it by list status (`plan_lists`),
never made as contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from dispatcher.delivery.calls import split_by_limits
from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.limits import (
    ACCOUNT,
    LIMITS,
    LIST_JOIN,
    LIST_LEAVE,
    RATES,
)
from dispatcher.providers.activecampaign.lists import MAX_SLUG, ListSender, slug
from dispatcher.providers.base import FIND_LIST, ListChange
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
)
from tests.dispatcher.providers.activecampaign.conftest import (
    API_KEY,
    api,
    paths,
    with_client,
)
from tests.dispatcher.providers.activecampaign.test_consent_and_automations import (
    apply,
    consent,
)
from tests.dispatcher.providers.activecampaign.test_contacts import new_list
from tests.dispatcher.providers.activecampaign.test_pacing import Pacer

ADA, BOB, CY = "ada@example.com", "bob@example.com", "cy@example.com"


def make_list(sandbox: ActiveCampaignSandbox, name: str, stringid: str | None = None) -> str:
    """A list made by another program on the account; its id."""
    body = new_list(name)
    body["list"] |= {"stringid": stringid or name.lower()}  # type: ignore[operator]
    list_id: str = api(sandbox, "POST", "/lists", body)["list"]["id"]
    return list_id


def queries(sandbox: ActiveCampaignSandbox, method: str, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"]) for r in sandbox.requests(path) if r["method"] == method]


def make_contacts(sandbox: ActiveCampaignSandbox, *emails: str) -> None:
    for email in emails:
        api(sandbox, "POST", "/contact/sync", {"contact": {"email": email}})


async def run(client: ActiveCampaignClient, changes: Sequence[ListChange]) -> list[str]:
    """The planned calls as the contacts worker runs them: split by `limits.lists`, in order.
    The owners (emails) the provider refused by name; a refusal naming none is raised."""
    planned = client.plan_lists([(change.email, change) for change in changes])
    refused: list[str] = []
    for call in split_by_limits(planned, client.limits.lists):
        try:
            await call.send(call.owners)
        except PermanentProviderError as exc:
            if not exc.item_indexes:
                raise
            refused.extend(call.owners[i] for i in exc.item_indexes)
    return refused


# --- find_list --------------------------------------------------------------------------------


def test_a_list_is_found_by_its_name_ignoring_case(ac: ActiveCampaignSandbox) -> None:
    make_list(ac, "Newsletter")
    vip = make_list(ac, "VIP buyers", "vip")

    found = with_client(ac, lambda c: c.find_list("  vip BUYERS "))

    assert found == vip
    assert paths(ac)[2:] == ["GET /api/3/lists"]
    assert queries(ac, "GET", "/api/3/lists")[-1]["filters[name]"] == ["vip BUYERS"]


def test_a_missing_list_is_made_once_with_the_sender_given(ac: ActiveCampaignSandbox) -> None:
    sender = ListSender("https://shop.example", "You joined at shop.example.")

    async def twice(client: ActiveCampaignClient) -> tuple[str, str]:
        return await client.find_list("VIP Buyers (EU)"), await client.find_list("vip buyers (eu)")

    first, again = with_client(ac, twice, list_sender=sender)
    later = with_client(ac, lambda c: c.find_list("VIP Buyers (EU)"))  # another replica, later

    assert first == again == later
    [made] = ac.view("lists")
    assert made["id"] == first
    assert (made["name"], made["stringid"], made["channel"]) == (
        "VIP Buyers (EU)",
        "vip-buyers-eu",
        "email",
    )
    assert (made["sender_url"], made["sender_reminder"]) == (sender.url, sender.reminder)
    assert paths(ac) == ["GET /api/3/lists", "POST /api/3/lists", "GET /api/3/lists"]


def test_a_list_is_made_with_the_default_sender(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: c.find_list("Winback"))

    [made] = ac.view("lists")
    assert (made["sender_url"], made["sender_reminder"]) == (
        ListSender().url,
        ListSender().reminder,
    )


def test_a_taken_stringid_gets_a_number(ac: ActiveCampaignSandbox) -> None:
    make_list(ac, "VIP (old)", "vip")
    make_list(ac, "VIP (older)", "vip-2")

    found = with_client(ac, lambda c: c.find_list("VIP"))

    made = {row["id"]: row for row in ac.view("lists")}[found]
    assert (made["name"], made["stringid"]) == ("VIP", "vip-3")
    assert [r["status"] for r in ac.rejections()] == [422, 422]


def test_a_list_made_by_another_replica_meanwhile_is_taken(ac: ActiveCampaignSandbox) -> None:
    """Requests: 1 look (none), 2 create. Another replica makes the list before our 2: ours
    is refused as a duplicate stringid, and a look finds theirs."""
    theirs: list[str] = []
    pacer = Pacer({2: lambda: theirs.append(make_list(ac, "VIP"))})

    async def find(client: ActiveCampaignClient) -> str:
        client.pace_requests(pacer)
        return await client.find_list("VIP")

    found = with_client(ac, find)

    assert [found] == theirs
    assert len(ac.view("lists")) == 1
    assert pacer.asked == [(FIND_LIST, ("account",))] * 3


def test_an_exact_name_is_preferred_and_every_page_is_read(ac: ActiveCampaignSandbox) -> None:
    with httpx.Client(base_url=ac.base_url + "/api/3", headers={"Api-Token": API_KEY}) as http:
        for n in range(100):  # a whole page of lists so named, ignoring case
            body = new_list("vip")
            body["list"] |= {"stringid": f"vip-{n}"}  # type: ignore[operator]
            http.post("/lists", json=body).raise_for_status()
    exact = make_list(ac, "VIP", "vip-exact")

    found = with_client(ac, lambda c: c.find_list("VIP"))

    assert found == exact
    looks = queries(ac, "GET", "/api/3/lists")
    assert [(q["offset"], q["limit"]) for q in looks] == [(["0"], ["100"]), (["100"], ["100"])]


def test_an_sms_list_of_that_name_is_not_taken(ac: ActiveCampaignSandbox) -> None:
    body = new_list("VIP")
    body["list"] |= {"channel": "sms"}  # type: ignore[operator]
    sms = api(ac, "POST", "/lists", body)["list"]["id"]

    found = with_client(ac, lambda c: c.find_list("VIP"))

    assert found != sms
    assert {row["stringid"] for row in ac.view("lists")} == {"vip", "vip-2"}


def test_a_list_needs_a_name(ac: ActiveCampaignSandbox) -> None:
    with pytest.raises(PermanentProviderError):
        with_client(ac, lambda c: c.find_list("  "))

    assert ac.requests() == []


def test_a_throttled_look_is_retryable_and_nothing_is_made(ac: ActiveCampaignSandbox) -> None:
    ac.add_fault(path="/api/3/lists", status=429, retry_after=1)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(ac, lambda c: c.find_list("VIP"))

    assert (caught.value.status, caught.value.retry_after) == (429, 1)
    assert ac.view("lists") == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VIP Buyers (EU)", "vip-buyers-eu"),
        ("  Café crème -- fans ", "cafe-creme-fans"),
        ("!!!", "list"),
        ("日本", "list"),
        ("x" * 100, "x" * MAX_SLUG),
    ],
)
def test_a_stringid_is_the_name_as_a_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_a_sender_needs_a_url_and_a_reminder() -> None:
    with pytest.raises(ValueError):
        ListSender(url=" ")
    with pytest.raises(ValueError):
        ListSender(reminder="")


# --- plan_lists -------------------------------------------------------------------------------


def test_joins_subscribe_and_leaves_unsubscribe_on_that_list_only(
    ac: ActiveCampaignSandbox,
) -> None:
    newsletter, vip, other = (make_list(ac, name) for name in ("Newsletter", "VIP", "Other"))
    with_client(ac, lambda c: apply(c, [consent(True)], newsletter))  # ada: newsletter 1
    make_contacts(ac, BOB, CY)
    before = ac.view("contacts")
    joins = [ListChange(ADA, vip, True), ListChange(BOB, vip, True), ListChange(CY, vip, True)]

    with_client(ac, lambda c: run(c, joins))
    ac.state.clear_log()
    refused = with_client(ac, lambda c: run(c, [ListChange(BOB, vip, False)]))

    assert refused == []
    assert ac.members(vip) == {ADA: "1", BOB: "2", CY: "1"}
    assert ac.members(other) == {}
    assert ac.members(newsletter) == {ADA: "1"}
    after = {row["email"]: row for row in ac.view("contacts")}
    for contact in before:  # consent fields, tags and the rest as they were
        assert after[contact["email"]]["fields"] == contact["fields"]
        assert after[contact["email"]]["tags"] == contact["tags"]
    assert paths(ac) == ["GET /api/3/contacts", "POST /api/3/contactLists"]
    [sent] = ac.requests("/api/3/contactLists")
    assert sent["body"] == {"contactList": {"list": vip, "contact": "2", "status": 2}}


def test_changes_keep_their_order_as_runs_of_joins_and_leaves(ac: ActiveCampaignSandbox) -> None:
    vip = make_list(ac, "VIP")
    make_contacts(ac, ADA, BOB)
    changes = [
        ListChange(ADA, vip, True),
        ListChange(BOB, vip, True),
        ListChange(ADA, vip, False),
        ListChange(BOB, vip, True),
    ]

    async def plan_and_run(client: ActiveCampaignClient) -> list[tuple[str, list[str]]]:
        planned = client.plan_lists([(change.email, change) for change in changes])
        for call in planned:
            await call.send(call.owners)
        return [(call.operation, call.owners) for call in planned]

    operations = with_client(ac, plan_and_run)

    assert operations == [
        (LIST_JOIN, [ADA, BOB]),
        (LIST_LEAVE, [ADA]),
        (LIST_JOIN, [BOB]),
    ]
    assert ac.members(vip) == {ADA: "2", BOB: "1"}


def test_a_person_without_a_contact_is_refused_by_index_and_the_others_go(
    ac: ActiveCampaignSandbox,
) -> None:
    vip = make_list(ac, "VIP")
    make_contacts(ac, ADA, CY)
    joins = [ListChange(ADA, vip, True), ListChange(BOB, vip, True), ListChange(CY, vip, True)]

    async def one_call(client: ActiveCampaignClient) -> None:
        [call] = client.plan_lists([(change.email, change) for change in joins])
        await call.send(call.owners)

    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, one_call)

    assert caught.value.item_indexes == (1,)
    assert caught.value.code == "no_contact"
    assert ac.members(vip) == {ADA: "1", CY: "1"}
    assert ac.contacts(BOB) == []
    assert paths(ac)[3:] == [  # after the setup's list and syncs: no contact made
        "GET /api/3/contacts",
        "POST /api/3/contactLists",
        "GET /api/3/contacts",
        "GET /api/3/contacts",
        "POST /api/3/contactLists",
    ]


def test_split_by_its_limits_only_the_missing_persons_call_is_refused(
    ac: ActiveCampaignSandbox,
) -> None:
    vip = make_list(ac, "VIP")
    make_contacts(ac, ADA, CY)
    joins = [ListChange(ADA, vip, True), ListChange(BOB, vip, True), ListChange(CY, vip, True)]

    refused = with_client(ac, lambda c: run(c, joins))

    assert refused == [BOB]
    assert ac.members(vip) == {ADA: "1", CY: "1"}
    assert ac.contacts(BOB) == []


def test_the_leave_of_someone_without_a_contact_is_done(ac: ActiveCampaignSandbox) -> None:
    vip = make_list(ac, "VIP")
    make_contacts(ac, ADA)
    leaves = [ListChange(ADA, vip, False), ListChange(BOB, vip, False)]

    refused = with_client(ac, lambda c: run(c, leaves))

    assert refused == []
    assert ac.members(vip) == {ADA: "2"}
    assert ac.contacts(BOB) == []


def test_a_contact_erased_elsewhere_is_refused_not_made_again(ac: ActiveCampaignSandbox) -> None:
    """The client remembers ada's id from her join; another program erases her: her next
    join finds the id gone, looks her up again, finds nobody and refuses her (her leave
    is done: she is in no list)."""
    vip = make_list(ac, "VIP")
    make_contacts(ac, ADA)

    async def join_erase_leave_join(client: ActiveCampaignClient) -> list[str]:
        await run(client, [ListChange(ADA, vip, True)])
        [contact] = ac.contacts(ADA)
        api(ac, "DELETE", f"/contacts/{contact['id']}")
        assert await run(client, [ListChange(ADA, vip, False)]) == []
        return await run(client, [ListChange(ADA, vip, True)])

    refused = with_client(ac, join_erase_leave_join)

    assert refused == [ADA]
    assert ac.contacts(ADA) == []
    assert ac.members(vip) == {}


def test_an_unknown_list_fails_the_call_as_a_whole(ac: ActiveCampaignSandbox) -> None:
    make_contacts(ac, ADA)

    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: run(c, [ListChange(ADA, "999", True)]))

    assert (caught.value.status, caught.value.code) == (404, "list_missing")
    assert caught.value.item_indexes == ()
    assert ac.contacts(ADA)[0]["lists"] == {}
    assert [(r["path"], r["status"]) for r in ac.rejections()] == [
        ("/api/3/contactLists", 422),
        ("/api/3/lists/999", 404),
    ]


def test_a_list_found_gone_is_looked_for_again(ac: ActiveCampaignSandbox) -> None:
    make_contacts(ac, ADA)

    async def find_lose_find(client: ActiveCampaignClient) -> tuple[str, str]:
        first = await client.find_list("VIP")
        with ac.state.account() as account:
            account.lists.delete(first)  # deleted in ActiveCampaign's own UI
        with pytest.raises(PermanentProviderError):
            await run(client, [ListChange(ADA, first, True)])
        return first, await client.find_list("VIP")

    first, again = with_client(ac, find_lose_find)

    assert again != first
    assert ac.members(again) == {}
    assert [row["id"] for row in ac.view("lists")] == [again]


def test_every_list_request_is_paced_from_the_account(ac: ActiveCampaignSandbox) -> None:
    make_contacts(ac, ADA)
    pacer = Pacer()

    async def find_and_join(client: ActiveCampaignClient) -> None:
        client.pace_requests(pacer)
        vip = await client.find_list("VIP")
        await run(client, [ListChange(ADA, vip, True), ListChange(ADA, vip, False)])

    with_client(ac, find_and_join)

    assert pacer.asked == [
        (FIND_LIST, ("account",)),
        (FIND_LIST, ("account",)),
        (LIST_JOIN, ("account",)),
        (LIST_JOIN, ("account",)),
        (LIST_LEAVE, ("account",)),  # ada's id is remembered
    ]
    assert len(pacer.asked) == len(ac.requests()) - 1  # make_contacts' own sync


def test_the_list_operations_are_stated_in_the_limits() -> None:
    assert {op: limit.max_items for op, limit in LIMITS.lists.items()} == {
        LIST_JOIN: 1,
        LIST_LEAVE: 1,
    }
    for operation in (FIND_LIST, LIST_JOIN, LIST_LEAVE):
        assert RATES[operation] == (ACCOUNT,)
        assert operation in LIMITS.paces_requests
    assert LIST_LEAVE in LIMITS.compliance
    assert LIST_JOIN not in LIMITS.compliance and FIND_LIST not in LIMITS.compliance


def test_the_accounts_rate_limit_on_list_changes_is_retryable(
    limited: ActiveCampaignSandbox,
) -> None:
    vip = make_list(limited, "VIP")
    make_contacts(limited, ADA, BOB)  # 3 of the window's 5
    joins = [ListChange(ADA, vip, True), ListChange(BOB, vip, True)]

    async def one_call(client: ActiveCampaignClient) -> Any:
        [call] = client.plan_lists([(change.email, change) for change in joins])
        return await call.send(call.owners)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(limited, one_call)

    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert limited.members(vip) == {ADA: "1"}
