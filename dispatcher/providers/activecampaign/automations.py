"""Enrolling contacts in automations and removing them (AC-only; used by the automation
feature). An enrolment is looked for before one is made, so a repeat enrols nobody twice;
removing a contact that is not enrolled, or is gone, is done (ActiveCampaign answers 403
"No Result found" for an unknown enrolment, which counts as gone)."""

from __future__ import annotations

from dispatcher.providers.activecampaign.contacts import Contacts
from dispatcher.providers.activecampaign.http import ApiHttp, JsonObject, as_id, record_id, records
from dispatcher.providers.activecampaign.limits import ENROL_AUTOMATION, REMOVE_AUTOMATION
from dispatcher.providers.errors import RetryableProviderError

COMPLETED = "1"


class Automations:
    def __init__(self, api: ApiHttp, contacts: Contacts) -> None:
        self._api = api
        self._contacts = contacts

    async def enrol(self, email: str, automation_id: str) -> str:
        """The enrolment id: an enrolment still running, else a new one (the contact is
        created when missing)."""
        contact = await self._contacts.id_of(email, ENROL_AUTOMATION, create=True)
        assert contact is not None
        for enrolment in await self._enrolments(contact, automation_id, ENROL_AUTOMATION):
            if as_id(enrolment.get("completed")) != COMPLETED:
                return as_id(enrolment.get("id"))
        body = {"contactAutomation": {"contact": contact, "automation": automation_id}}
        reply = await self._api.call(
            "POST", "/contactAutomations", operation=ENROL_AUTOMATION, body=body
        )
        enrolment_id = record_id(reply, "contactAutomation")
        if not enrolment_id:
            raise RetryableProviderError(
                "ActiveCampaign POST /contactAutomations: no enrolment id", code="invalid_response"
            )
        return enrolment_id

    async def remove(self, email: str, automation_id: str) -> int:
        """How many enrolments of the contact in the automation were removed."""
        contact = await self._contacts.id_of(email, REMOVE_AUTOMATION, create=False)
        if contact is None:
            return 0
        removed = 0
        for enrolment in await self._enrolments(contact, automation_id, REMOVE_AUTOMATION):
            path = f"/contactAutomations/{as_id(enrolment.get('id'))}"
            reply = await self._api.call(
                "DELETE", path, operation=REMOVE_AUTOMATION, allow_missing=True
            )
            removed += reply is not None
        return removed

    async def _enrolments(
        self, contact: str, automation_id: str, operation: str
    ) -> list[JsonObject]:
        reply = await self._api.call(
            "GET",
            f"/contacts/{contact}/contactAutomations",
            operation=operation,
            allow_missing=True,
        )
        return [
            enrolment
            for enrolment in records(reply, "contactAutomations")
            if automation_id
            in (as_id(enrolment.get("automation")), as_id(enrolment.get("seriesid")))
        ]
