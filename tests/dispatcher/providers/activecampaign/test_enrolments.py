"""ActiveCampaignClient.plan_enrolments against the sandbox: a call per change (ActiveCampaign
has no bulk call for automations). A beginning enrols the contact in the change's automation
(looked for first: a repeat enrols nobody twice) and gives the enrolment's id, an end removes
it and makes nobody; without an automation, or at an end while another of the person's
enrolments in the flow runs on, nothing is sent. Every request is paced under its call's
operation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.limits import (
    ACCOUNT,
    ENROL_AUTOMATION,
    LIMITS,
    REMOVE_AUTOMATION,
)
from dispatcher.providers.base import EnrolmentChange
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.helpers import run_enrolments
from tests.dispatcher.providers.activecampaign.conftest import paths, with_client
from tests.dispatcher.providers.activecampaign.test_pacing import Pacer

EMAIL = "ada@example.com"
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def change(automation_id: str, *, active: bool = True, **fields: Any) -> EnrolmentChange:
    values: dict[str, Any] = {
        "flow_id": "welcome",
        "enrolment_id": "0b6e3c1a-5d4f-4a8e-9c2b-7f1e2d3c4b5a",
        "email": EMAIL,
        "time": WHEN,
        "exit_reason": "" if active else "manual",
        "automation_id": automation_id,
    }
    return EnrolmentChange(active=active, **(values | fields))


async def one(client: ActiveCampaignClient, enrolment: EnrolmentChange) -> str | None:
    """The change planned and sent: the provider id it was accepted with (None: not sent)."""
    _, accepted = await run_enrolments(client, [enrolment])
    return accepted.get(0)


def enrolments(sandbox: ActiveCampaignSandbox) -> list[dict[str, str]]:
    [contact] = sandbox.contacts(EMAIL)
    return list(contact["automations"])


def test_a_call_per_change_in_order_none_without_an_automation(
    ac: ActiveCampaignSandbox,
) -> None:
    welcome = ac.add_automation("Welcome series")
    changes = [
        change(welcome),
        change("", enrolment_id="none"),
        change(welcome, active=False, enrolment_id="other", email="bob@example.com"),
    ]

    async def planned(client: ActiveCampaignClient) -> list[tuple[str, list[int]]]:
        calls = client.plan_enrolments(list(enumerate(changes)), lambda owner, id_: None)
        return [(call.operation, call.owners) for call in calls]

    assert with_client(ac, planned) == [(ENROL_AUTOMATION, [0]), (REMOVE_AUTOMATION, [2])]
    assert LIMITS.enrolments[ENROL_AUTOMATION].max_items == 1
    assert LIMITS.enrolments[REMOVE_AUTOMATION].max_items == 1
    assert paths(ac) == [], "planning sends nothing"


def test_a_beginning_enrols_once_and_an_end_removes(ac: ActiveCampaignSandbox) -> None:
    welcome = ac.add_automation("Welcome series")

    async def begin_twice(client: ActiveCampaignClient) -> tuple[str | None, str | None]:
        return await one(client, change(welcome)), await one(client, change(welcome))

    first, again = with_client(ac, begin_twice)
    held = enrolments(ac)
    ended = with_client(ac, lambda c: one(c, change(welcome, active=False)))

    assert first == again != ""
    assert held == [{"id": first, "automation": welcome, "status": "1"}]
    assert paths(ac).count("POST /api/3/contactAutomations") == 1
    assert ended == ""
    assert enrolments(ac) == []


def test_an_end_of_someone_never_enrolled_makes_nobody(ac: ActiveCampaignSandbox) -> None:
    welcome = ac.add_automation("Welcome series")

    ended = with_client(ac, lambda c: one(c, change(welcome, active=False)))

    assert ended == ""
    assert ac.contacts(EMAIL) == []
    assert paths(ac) == ["GET /api/3/contacts"]


def test_without_an_automation_nothing_is_sent(ac: ActiveCampaignSandbox) -> None:
    async def both(client: ActiveCampaignClient) -> list[str | None]:
        return [await one(client, change("")), await one(client, change("", active=False))]

    assert with_client(ac, both) == [None, None]
    assert paths(ac) == []


def test_two_enrolments_in_one_automation_share_activecampaigns_one(
    ac: ActiveCampaignSandbox,
) -> None:
    """ActiveCampaign keeps one running enrolment per contact and automation: a second of
    ours (another cart) finds the first's."""
    welcome = ac.add_automation("Welcome series")
    other = replace(change(welcome), enrolment_id="second", entry_key="cart-2")

    async def both(client: ActiveCampaignClient) -> dict[int, str]:
        _, accepted = await run_enrolments(client, [change(welcome), other])
        return accepted

    accepted = with_client(ac, both)

    assert accepted[0] == accepted[1] != ""
    assert len(enrolments(ac)) == 1


def test_an_end_while_another_enrolment_runs_on_keeps_activecampaigns_one(
    ac: ActiveCampaignSandbox,
) -> None:
    """Two carts share ActiveCampaign's enrolment: the first cart's end sends nothing, the
    second's (the last running) removes it."""
    welcome = ac.add_automation("Welcome series")
    second = replace(change(welcome), enrolment_id="second", entry_key="cart-2")

    async def scenario(client: ActiveCampaignClient) -> list[Any]:
        _, began = await run_enrolments(client, [change(welcome), second])
        first_end = change(welcome, active=False, others_active=True)
        _, first_ended = await run_enrolments(client, [first_end])
        kept = enrolments(ac)
        _, last_ended = await run_enrolments(client, [replace(second, active=False)])
        return [began, first_ended, kept, last_ended]

    began, first_ended, kept, last_ended = with_client(ac, scenario)

    assert began[0] == began[1] != ""
    assert first_ended == {}, "nothing sent"
    assert [enrolment["id"] for enrolment in kept] == [began[0]]
    assert last_ended == {0: ""}
    assert enrolments(ac) == []
    assert paths(ac).count("POST /api/3/contactAutomations") == 1


def test_every_request_is_paced_under_the_changes_operation(ac: ActiveCampaignSandbox) -> None:
    welcome = ac.add_automation("Welcome series")
    pacer = Pacer()

    async def begin_and_end(client: ActiveCampaignClient) -> None:
        client.pace_requests(pacer)
        await one(client, change(welcome))
        await one(client, change(welcome, active=False))

    with_client(ac, begin_and_end)

    operations = [operation for operation, _ in pacer.asked]
    # Begin: look the contact up, make it, its enrolments, enrol. End: its enrolments (the
    # contact's id remembered), remove.
    assert operations == [ENROL_AUTOMATION] * 4 + [REMOVE_AUTOMATION] * 2
    assert {buckets for _, buckets in pacer.asked} == {(ACCOUNT.name,)}
    assert len(ac.requests()) == len(pacer.asked), "every request went through the pacer"
    assert {ENROL_AUTOMATION, REMOVE_AUTOMATION} <= LIMITS.paces_requests
    assert LIMITS.rates[ENROL_AUTOMATION] == LIMITS.rates[REMOVE_AUTOMATION] == (ACCOUNT,)
