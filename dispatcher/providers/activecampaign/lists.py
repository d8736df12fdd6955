"""Segments' lists: a list found by its name or made (`find_list`), and people put into it or
taken out of it (`plan_lists`) by their status on it, the POST /contactLists that consent uses
too (consent_calls.py; the client sends both through one path):

    find_list     GET /lists?filters[name]=<name>&limit=100 (page by page while full), else
                  POST /lists {name, stringid, sender_url, sender_reminder}; the id is
                  remembered for the life of the client (forgotten when the list is found gone)
    list_join     status 1 (subscribed) on the list     one person per call: the contact's id
    list_leave    status 2 (unsubscribed) on the list   (looked up unless remembered), then
                                                        POST /contactLists

ActiveCampaign documents `filters[name]` but not how it matches, so the names answered are
compared here too: ignoring case, an exact match first. ActiveCampaign requires a `stringid`
for a new list: the name as a slug (`slug`), then `<slug>-2`, `<slug>-3`... while a list has it
(a 422 "duplicate"). Before each further try the name is looked for again: another replica
may have made the list meanwhile, with the same slug.

List calls never make a contact: a person without one is refused (a PermanentProviderError
naming their item), so a late change cannot bring back someone erased. Consent is left as it
is: the service plans joins only for people with email consent. A status refused as
"related_missing" names a missing contact or list; a look at the list (GET /lists/{id}) tells
which, and a missing list fails the call as a whole (code `list_missing`)."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from dispatcher.providers.activecampaign.http import ApiHttp, as_id, record_id, records
from dispatcher.providers.activecampaign.limits import LIST_JOIN, LIST_LEAVE
from dispatcher.providers.base import FIND_LIST, ListChange
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

OwnerT = TypeVar("OwnerT")
PAGE = 100
# Tries at a free stringid (`slug`, `slug-2`, ...) before giving up on making the list.
STRINGID_TRIES = 10
# Our own bound (ActiveCampaign publishes none): room is left for a "-10".
MAX_SLUG = 60
FALLBACK_SLUG = "list"
DEFAULT_SENDER_URL = "https://example.invalid/"
DEFAULT_SENDER_REMINDER = "You are receiving this email because you signed up for our emails."


@dataclass(frozen=True)
class ListSender:
    """What ActiveCampaign requires of every list it makes, shown to the list's contacts: the
    sender's website (`sender_url`) and why they are on the list (`sender_reminder`). The
    defaults are placeholders: an account should name its own site."""

    url: str = DEFAULT_SENDER_URL
    reminder: str = DEFAULT_SENDER_REMINDER

    def __post_init__(self) -> None:
        if not self.url.strip() or not self.reminder.strip():
            raise ValueError("an ActiveCampaign list needs a sender URL and a sender reminder")


def membership_runs(
    changes: Sequence[tuple[OwnerT, ListChange]],
) -> list[tuple[str, list[tuple[OwnerT, ListChange]]]]:
    """The changes as runs of joins (`LIST_JOIN`) and leaves (`LIST_LEAVE`) in the order given,
    so a person joining and leaving in one batch ends as they last asked."""
    runs: list[tuple[str, list[tuple[OwnerT, ListChange]]]] = []
    for owner, change in changes:
        operation = LIST_JOIN if change.member else LIST_LEAVE
        if not runs or runs[-1][0] != operation:
            runs.append((operation, []))
        runs[-1][1].append((owner, change))
    return runs


def slug(name: str) -> str:
    """`name` as a stringid: ASCII letters and digits in lower case, other runs as "-"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_name.lower()).split()
    return "-".join(words)[:MAX_SLUG].strip("-") or FALLBACK_SLUG


def _key(name: str) -> str:
    return name.strip().casefold()


class ListIds:
    """The account's lists by name, found or made once per client (one at a time)."""

    def __init__(self, api: ApiHttp, sender: ListSender) -> None:
        self._api = api
        self._sender = sender
        self._ids: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def find(self, name: str) -> str:
        """The id of the list named `name` (ignoring case and surrounding blanks), made when
        the account has none."""
        wanted = name.strip()
        if not wanted:
            raise PermanentProviderError("an ActiveCampaign list needs a name", code="no_name")
        async with self._lock:
            if _key(wanted) not in self._ids:
                found = await self._search(wanted) or await self._create(wanted)
                self._ids[_key(wanted)] = found
            return self._ids[_key(wanted)]

    async def exists(self, list_id: str, operation: str) -> bool:
        """Whether the account has this list (GET /lists/{id}); a list found gone is
        forgotten, so `find` looks for it again."""
        found = await self._api.call(
            "GET", f"/lists/{list_id}", operation=operation, allow_missing=True
        )
        if found is None:
            self._ids = {key: known for key, known in self._ids.items() if known != list_id}
        return found is not None

    async def _search(self, name: str) -> str:
        """The id of the list named exactly `name`, else of one named so ignoring case, else
        "" (every page is read unless an exact match is found first)."""
        ignoring_case = ""
        offset = 0
        while True:
            params: dict[str, str | int] = {"filters[name]": name, "limit": PAGE, "offset": offset}
            reply = await self._api.call("GET", "/lists", operation=FIND_LIST, params=params)
            page = records(reply, "lists")
            for row in page:
                text, list_id = str(row.get("name", "")), as_id(row.get("id"))
                if list_id and text.strip() == name:
                    return list_id
                if list_id and _key(text) == _key(name):
                    ignoring_case = ignoring_case or list_id
            if len(page) < PAGE:
                return ignoring_case
            offset += PAGE

    async def _create(self, name: str) -> str:
        base = slug(name)
        for attempt in range(1, STRINGID_TRIES + 1):
            stringid = base if attempt == 1 else f"{base}-{attempt}"
            body = {"list": {"name": name, "stringid": stringid} | self._sender_fields()}
            try:
                created = await self._api.call("POST", "/lists", operation=FIND_LIST, body=body)
            except PermanentProviderError as exc:
                if exc.code != "duplicate":
                    raise
                if found := await self._search(name):
                    return found  # made by another replica meanwhile
                continue
            list_id = record_id(created, "list")
            if not list_id:
                # Retrying is safe: the next find looks for the list by name first.
                raise RetryableProviderError(
                    "ActiveCampaign POST /lists: no list id in the reply", code="invalid_response"
                )
            return list_id
        raise PermanentProviderError(
            f"ActiveCampaign list {name[:60]!r}: stringids {base!r} to "
            f"'{base}-{STRINGID_TRIES}' are all taken",
            code="duplicate",
        )

    def _sender_fields(self) -> dict[str, str]:
        return {"sender_url": self._sender.url, "sender_reminder": self._sender.reminder}
