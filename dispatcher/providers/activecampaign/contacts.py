"""Contacts by email: their ids (remembered), tags and list memberships.

ActiveCampaign addresses a contact by numeric id; we know people by email. An id comes from a
contact sync (which creates the contact when missing) or from GET /contacts?email=, and is
remembered until the contact is erased."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dispatcher.providers.activecampaign import bodies
from dispatcher.providers.activecampaign.http import ApiHttp, JsonObject, as_id, record_id, records
from dispatcher.providers.activecampaign.memory import Recent
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

T = TypeVar("T")
REMEMBERED = 50_000
SUBSCRIBED, UNSUBSCRIBED = 1, 2


def _key(email: str) -> str:
    return email.strip().lower()


class Contacts:
    def __init__(self, api: ApiHttp) -> None:
        self._api = api
        self._ids: Recent[str, str] = Recent(REMEMBERED)
        self._tags: dict[str, str] = {}
        self._tag_lock = asyncio.Lock()

    async def sync(self, body: JsonObject, operation: str) -> str:
        """POST /contact/sync; the contact's id, remembered."""
        reply = await self._api.call("POST", "/contact/sync", operation=operation, body=body)
        contact_id = record_id(reply, "contact")
        if not contact_id:
            raise RetryableProviderError(
                "ActiveCampaign POST /contact/sync: no contact id in the reply",
                code="invalid_response",
            )
        self._ids.put(_key(body["contact"]["email"]), contact_id)
        return contact_id

    async def find(self, email: str, operation: str) -> JsonObject | None:
        """The contact with this email (GET /contacts?email=), or None."""
        found = await self.find_all(email, operation)
        if not found:
            return None
        self._ids.put(_key(email), as_id(found[0].get("id")))
        return found[0]

    async def find_all(self, email: str, operation: str) -> list[JsonObject]:
        """Every contact GET /contacts?email= answers with exactly this email (ignoring case)
        and an id: one, as emails are unique in an account, unless that ever fails."""
        reply = await self._api.call(
            "GET", "/contacts", operation=operation, params={"email": email}
        )
        return [
            contact
            for contact in records(reply, "contacts")
            if _key(str(contact.get("email", ""))) == _key(email) and as_id(contact.get("id"))
        ]

    async def id_of(self, email: str, operation: str, *, create: bool) -> str | None:
        """The contact's id; with `create`, a missing contact is made (email only, which
        changes nothing of an existing one)."""
        known = self._ids.get(_key(email))
        if known:
            return known
        found = await self.find(email, operation)
        if found is not None:
            return as_id(found.get("id"))
        if not create:
            return None
        return await self.sync(bodies.contact_sync(email, {}, {}), operation)

    def forget(self, email: str) -> None:
        self._ids.forget(_key(email))

    async def on_contact(
        self,
        email: str,
        operation: str,
        act: Callable[[str], Awaitable[T]],
        *,
        create: bool,
    ) -> T | None:
        """`act` on the contact's id (None, without `create`, when there is no contact). A
        remembered id may be of a contact another replica erased since: when `act` finds it
        gone, the id is forgotten and looked up (or made) once more."""
        remembered = self._ids.get(_key(email)) is not None
        for last in (not remembered, True):
            contact = await self.id_of(email, operation, create=create)
            if contact is None:
                return None
            try:
                return await act(contact)
            except PermanentProviderError as exc:
                if last or not _contact_gone(exc):
                    raise
                self.forget(email)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def set_list_status(
        self, contact_id: str, list_id: str, status: int, operation: str
    ) -> None:
        """POST /contactLists: 1 subscribes (again, after an unsubscribe), 2 unsubscribes."""
        body = {"contactList": {"list": list_id, "contact": contact_id, "status": status}}
        await self._api.call("POST", "/contactLists", operation=operation, body=body)

    async def tag_id(self, name: str, operation: str, *, create: bool = True) -> str:
        """The id of the contact tag `name` (names compare ignoring case), created if missing
        (without `create`: "" when missing)."""
        async with self._tag_lock:
            if name not in self._tags:
                found = await (
                    self._find_or_create_tag(name, operation)
                    if create
                    else self._search_tag(name, operation)
                )
                if not found:
                    return ""
                self._tags[name] = found
        return self._tags[name]

    async def _find_or_create_tag(self, name: str, operation: str) -> str:
        found = await self._search_tag(name, operation)
        if found:
            return found
        body = {"tag": {"tag": name, "tagType": "contact", "description": "marketing automation"}}
        try:
            created = await self._api.call("POST", "/tags", operation=operation, body=body)
        except PermanentProviderError as exc:
            if exc.code == "duplicate" and (found := await self._search_tag(name, operation)):
                return found  # made by another replica meanwhile
            raise
        tag_id = record_id(created, "tag")
        if not tag_id:
            raise PermanentProviderError(f"POST /tags for {name!r} returned no id")
        return tag_id

    async def _search_tag(self, name: str, operation: str) -> str:
        reply = await self._api.call("GET", "/tags", operation=operation, params={"search": name})
        for tag in records(reply, "tags"):
            if str(tag.get("tag", "")).lower() == name.lower():
                return as_id(tag.get("id"))
        return ""

    async def tagging(self, contact_id: str, tag_id: str, operation: str) -> list[str]:
        """The ids of the contact's contactTag links to `tag_id` (none or one, normally)."""
        reply = await self._api.call(
            "GET", f"/contacts/{contact_id}/contactTags", operation=operation, allow_missing=True
        )
        return [link for link, tag in tag_ids(reply).items() if tag == tag_id]

    async def add_tag(self, contact_id: str, tag_id: str, operation: str) -> None:
        """POST /contactTags unless the contact has the tag already."""
        if await self.tagging(contact_id, tag_id, operation):
            return
        body = {"contactTag": {"contact": contact_id, "tag": tag_id}}
        await self._api.call("POST", "/contactTags", operation=operation, body=body)

    async def remove_tag(self, contact_id: str, tag_id: str, operation: str) -> None:
        for link in await self.tagging(contact_id, tag_id, operation):
            await self._api.call(
                "DELETE", f"/contactTags/{link}", operation=operation, allow_missing=True
            )


def _contact_gone(exc: PermanentProviderError) -> bool:
    """How a write on a deleted contact's id is refused: 404 (POST /contactTags) or 422
    related_missing (POST /contactLists)."""
    return exc.status == 404 or exc.code == "related_missing"


def list_statuses(document: JsonObject | None) -> dict[str, int]:
    """List id -> status of the `contactLists` in a reply."""
    return {
        as_id(item.get("list")): _status(item.get("status"))
        for item in records(document, "contactLists")
    }


def tag_ids(document: JsonObject | None) -> dict[str, str]:
    """contactTag link id -> tag id of the `contactTags` in a reply."""
    return {
        as_id(link.get("id")): as_id(link.get("tag")) for link in records(document, "contactTags")
    }


def _status(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
