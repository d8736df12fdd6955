"""Enrolling contacts in automations and removing them (AC-only: our flows' enrolments,
`plan_enrolments`). An enrolment is looked for before one is made, so a repeat enrols nobody
twice; removing a contact that is not enrolled, or is gone, is done (ActiveCampaign answers 403
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
        contact, enrolments = await self._contact_and_enrolments(
            email, automation_id, ENROL_AUTOMATION, create=True
        )
        for enrolment in enrolments:
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
        _, enrolments = await self._contact_and_enrolments(
            email, automation_id, REMOVE_AUTOMATION, create=False
        )
        removed = 0
        for enrolment in enrolments:
            path = f"/contactAutomations/{as_id(enrolment.get('id'))}"
            reply = await self._api.call(
                "DELETE", path, operation=REMOVE_AUTOMATION, allow_missing=True
            )
            removed += reply is not None
        return removed

    async def _contact_and_enrolments(
        self, email: str, automation_id: str, operation: str, *, create: bool
    ) -> tuple[str, list[JsonObject]]:
        """The contact's id and its enrolments in the automation. A remembered id whose
        contact is gone (erased meanwhile) is looked up again once."""
        for _ in range(2):
            contact = await self._contacts.id_of(email, operation, create=create)
            if contact is None:
                return "", []
            reply = await self._api.call(
                "GET",
                f"/contacts/{contact}/contactAutomations",
                operation=operation,
                allow_missing=True,
            )
            if reply is not None:
                return contact, [
                    enrolment
                    for enrolment in records(reply, "contactAutomations")
                    if automation_id
                    in (as_id(enrolment.get("automation")), as_id(enrolment.get("seriesid")))
                ]
            self._contacts.forget(email)
        raise RetryableProviderError(
            f"ActiveCampaign contact {email!r} vanished while being looked up", code="contact_gone"
        )
