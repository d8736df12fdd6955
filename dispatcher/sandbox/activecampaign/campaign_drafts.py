"""Making a campaign through the API and scheduling it (shared/PROVIDERS-API.md, "Campaigns
and messages"; the send itself: campaign_sending.py):

    POST /api/3/campaign  {"name", "type": "single", "canSplitContent": false}
        -> 200 {"id": 149 (a number, not a string), "name", "type", "canSplitContent"}: a
           draft (status "0") that GET /campaigns lists with its counters at "0"
        -> 400 {"errors": ["Field name is required", ...]} (strings)
    PUT  /api/3/campaigns/{id}/edit  {"listIds": [id, ...], "messageId": id,
                                      "scheduledDate": "YYYY-MM-DD HH:MM:SS" (UTC)?,
                                      "status": 1?}
        -> 200 {"campaign": {the campaign as GET /campaigns lists it, "listIds": [...]}}
        -> 400 {"errors": ["Campaign already scheduled"]} for a campaign that is no draft
        -> 400 {"errors": [...]} for an unknown list or message, a bad date or status
        -> 404 {"message": "No Result found for Campaign with id N"}

ASSUMED, as no source documents the edit call whole: the body is the object above, not
wrapped in a key; ids are numbers or numeric strings; the fields given replace those of an
earlier edit (a draft may be edited several times; listIds replaces the lists) and the answer
is the campaign with its lists. `status: 1` schedules the campaign, which needs lists (email
lists) and a message, given now or before: it goes at scheduledDate by the sandbox's clock,
or at once without one (or with one already past). scheduledDate may also be ISO 8601 with an
offset; without an offset it is UTC. Scheduling sets status "1", `sdate` to when it goes,
`scheduleddate` as given and `basemessageid` (both real ActiveCampaign campaign fields).
Every error of an edit is listed, and a refused edit changes nothing.

BEYOND (the sandbox sends one message per campaign): only `type` "single" without split
content is made; anything else is a 400 saying so. Names need not be unique, as at
ActiveCampaign.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, ref
from dispatcher.sandbox.activecampaign.campaigns import DRAFT, SCHEDULED, campaign_row
from dispatcher.sandbox.activecampaign.errors import ApiError
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, CampaignPlan, Row, public, timestamp

SINGLE = "single"
_NOT_SPLIT = (False, 0, "0", "false")


def refused(errors: list[str]) -> ApiError:
    """The 400 of these calls: `{"errors": [...]}`, each a sentence."""
    return ApiError(400, {"errors": errors})


def create_campaign(account: Account, call: Call) -> Answer:
    given = call.document if isinstance(call.document, dict) else {}
    errors = [f"Field {name} is required" for name in ("name", "type") if not _filled(given, name)]
    if _filled(given, "type") and given["type"] != SINGLE:
        errors.append("The sandbox makes single campaigns only: type must be single")
    if given.get("canSplitContent", False) not in _NOT_SPLIT:
        errors.append("The sandbox sends no split content: canSplitContent must be false")
    if errors:
        raise refused(errors)
    row = campaign_row({"name": given["name"], "type": SINGLE, "status": 0}, call.now)
    created = account.campaigns.insert(row)
    answer = {"id": int(created["id"]), "name": created["name"], "type": SINGLE}
    return 200, answer | {"canSplitContent": False}


def _filled(given: dict[str, Any], name: str) -> bool:
    value = given.get(name)
    return isinstance(value, str) and bool(value.strip())


def edit_campaign(account: Account, call: Call) -> Answer:
    campaign = account.campaigns.need(call.params[0])
    if campaign["status"] != DRAFT:
        raise refused(["Campaign already scheduled"])
    if not isinstance(call.document, dict):
        raise refused(["Send the campaign's fields as a JSON object"])
    errors: list[str] = []
    plan = _edited(account, account.campaign_plans.get(campaign["id"]), call.document, errors)
    schedule = _schedules(call.document, errors)
    if schedule and not (plan.list_ids and plan.message_id):
        errors.append("A campaign needs listIds and a messageId before it is scheduled")
    if errors:
        raise refused(errors)
    account.campaign_plans[campaign["id"]] = plan
    _apply(campaign, plan, call.document, call.now)
    if schedule:
        _schedule(account, campaign, plan, call.now)
    return 200, {"campaign": public(campaign) | {"listIds": list(plan.list_ids)}}


def _edited(
    account: Account, plan: CampaignPlan | None, given: dict[str, Any], errors: list[str]
) -> CampaignPlan:
    """The campaign's plan with the edit's fields over it (the errors found added)."""
    edited = plan or CampaignPlan()
    if "listIds" in given:
        edited = replace(edited, list_ids=_list_ids(account, given["listIds"], errors))
    if "messageId" in given:
        edited = replace(edited, message_id=_message_id(account, given["messageId"], errors))
    if "scheduledDate" in given:
        edited = replace(edited, scheduled_s=_scheduled_s(given["scheduledDate"], errors))
    return edited


def _list_ids(account: Account, given: Any, errors: list[str]) -> tuple[str, ...]:
    if not isinstance(given, list) or not given:
        errors.append("listIds must be a non-empty array of list ids")
        return ()
    found: list[str] = []
    for item in given:
        list_id = ref(item) or ""
        listed = account.lists.get(list_id)
        if listed is None:
            errors.append(f"List {item} does not exist")
        elif listed["channel"] != "email":
            errors.append(f"List {item} is not an email list")
        elif list_id not in found:
            found.append(list_id)
    return tuple(found)


def _message_id(account: Account, given: Any, errors: list[str]) -> str | None:
    message_id = ref(given)
    if message_id is None or account.email_messages.get(message_id) is None:
        errors.append(f"Message {given} does not exist")
        return None
    return message_id


def _scheduled_s(given: Any, errors: list[str]) -> float | None:
    """Epoch seconds of a scheduledDate (naive: UTC); None for null or a bad one."""
    if given is None:
        return None
    try:
        moment = datetime.fromisoformat(given.strip()) if isinstance(given, str) else None
    except ValueError:
        moment = None
    if moment is None:
        errors.append("scheduledDate must be a date and time: YYYY-MM-DD HH:MM:SS")
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _schedules(given: dict[str, Any], errors: list[str]) -> bool:
    """Whether the edit schedules the campaign (status 1); 0 or none keeps it a draft."""
    status = ref(given.get("status", 0))
    if status not in (DRAFT, SCHEDULED):
        errors.append("status must be 0 (draft) or 1 (scheduled)")
    return status == SCHEDULED


def _apply(campaign: Row, plan: CampaignPlan, given: dict[str, Any], now: float) -> None:
    campaign["basemessageid"] = plan.message_id or "0"
    if "scheduledDate" in given:
        campaign["scheduleddate"] = given["scheduledDate"]
    campaign["mdate"] = timestamp(now)


def _schedule(account: Account, campaign: Row, plan: CampaignPlan, now: float) -> None:
    """Status 1 until it falls due (at once without a date, or with one past)."""
    due_s = now if plan.scheduled_s is None else max(now, plan.scheduled_s)
    campaign["status"] = SCHEDULED
    campaign["sdate"] = timestamp(due_s)
    account.campaign_schedule.add(campaign["id"], due_s)


ROUTES = [
    route("POST", "/api/3/campaign", create_campaign),
    route("PUT", "/api/3/campaigns/{id}/edit", edit_campaign),
]
