"""Enrolling a contact in an automation: the contactAutomation ActiveCampaign answers, counted
in the automation's `entered`, and, when the automation has messages (automation_flows.py),
the run that sends them, keyed by the enrolment's id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatcher.sandbox.activecampaign.store import Account, Row, timestamp
from dispatcher.sandbox.common.flows import Person

ACTIVE, COMPLETED = "1", "2"  # a contactAutomation's status


def add_enrolment(
    account: Account,
    contact: Row,
    automation: Row,
    now: float,
    event: Mapping[str, Any] | None = None,
) -> Row:
    """A new enrolment; `event` is the tracked event that started it, if one did."""
    stamp = timestamp(now)
    flow = account.flows.get(automation["id"])
    row = account.contact_automations.insert(
        {"contact": contact["id"], "seriesid": automation["id"], "automation": automation["id"]}
        | {"status": ACTIVE, "adddate": stamp, "remdate": None, "lastblock": "1"}
        | {"lastdate": stamp, "completed": 0, "completeValue": 0, "completedElements": 0}
        | {"totalElements": 1 if flow is None else len(flow.steps)}
    )
    automation["entered"] = str(int(automation["entered"]) + 1)
    if flow is not None:
        person = Person(contact["email"], contact.get("phone") or None)
        context = {} if event is None else event
        account.flows.start(flow.key, person, now, context=context, run_key=row["id"])
    return row


def complete(row: Row, now: float) -> None:
    """Every message of the enrolment's run was sent or skipped: it has completed (the
    sandbox ASSUMES status "2" and `completed` 1, as an enrolment that reached its end shows)."""
    total = row.get("totalElements", 1)
    row |= {"status": COMPLETED, "completed": 1, "completeValue": 100}
    row |= {"completedElements": total, "lastdate": timestamp(now)}


def in_automation(account: Account, contact: Row, automation_id: str) -> bool:
    """Whether the contact has an enrolment in the automation that has not completed."""
    return any(
        row["automation"] == automation_id and row.get("completed") != 1
        for row in account.contact_automations.where(contact=contact["id"])
    )
