"""Our contact properties as ActiveCampaign custom fields, which are referenced by numeric id
only. A field is found by its title (the property's name) or created on first use (POST
/fields, then POST /fieldRels with relid 0 so it belongs to every list); ids are kept for the
life of the client. Another replica may create the same field meanwhile: its 422 "duplicate"
answer makes us read the fields again and take its id.

Field values are text. A field made for a property whose value is not a string (a number, a
boolean, a list or object, sent as JSON) says so in its description (`JSON_DESCRIPTION`), so
that a read-back can give the value its type again; any other field reads back as text.

A campaign's message names a contact's field by its personalization tag (`perstag`, "%TIER%"),
which ActiveCampaign gives each field: learnt with the fields (`perstags`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable

from dispatcher.providers.activecampaign.http import ApiHttp, as_id, record_id, records
from dispatcher.providers.errors import PermanentProviderError

PAGE = 100
MAX_TITLE = 255
TEXT_DESCRIPTION = "marketing automation"
JSON_DESCRIPTION = "marketing automation (JSON)"


class FieldIds:
    def __init__(self, api: ApiHttp) -> None:
        self._api = api
        self._by_title: dict[str, str] = {}
        self._json: set[str] = set()  # ids of the fields whose values are JSON
        self._perstags: dict[str, str] = {}  # field id -> personalization tag
        self._loaded = False
        self._lock = asyncio.Lock()

    async def ids(
        self, titles: Iterable[str], operation: str, json_titles: Collection[str] = ()
    ) -> dict[str, str]:
        """Each title's field id, creating the missing fields (those in `json_titles` as
        fields of JSON values)."""
        wanted = list(dict.fromkeys(titles))
        if any(title not in self._by_title for title in wanted):
            async with self._lock:  # one creation per field, however many calls want it
                await self._ensure(wanted, operation, json_titles)
        return {title: self._by_title[title] for title in wanted}

    async def titles(
        self, operation: str, needed: Collection[str] = ()
    ) -> dict[str, tuple[str, bool]]:
        """Field id -> (title, whether its values are JSON) of every field the account has
        (read once, and again when a `needed` id is unknown: made elsewhere meanwhile)."""
        async with self._lock:
            known = set(self._by_title.values())
            if not self._loaded or any(field_id not in known for field_id in needed):
                await self._load(operation)
        return {fid: (title, fid in self._json) for title, fid in self._by_title.items()}

    async def perstags(self, titles: Iterable[str], operation: str) -> dict[str, str]:
        """Each title's personalization tag, the missing fields created (as text, as a
        contact's text value would make them); the fields read again when one made elsewhere
        (or by a reply that named no tag) is not known yet."""
        ids = await self.ids(titles, operation)
        if any(field_id not in self._perstags for field_id in ids.values()):
            async with self._lock:
                await self._load(operation)
        untagged = [title for title, field_id in ids.items() if field_id not in self._perstags]
        if untagged:
            raise PermanentProviderError(
                f"ActiveCampaign fields {untagged[:3]} have no personalization tag",
                code="no_perstag",
            )
        return {title: self._perstags[field_id] for title, field_id in ids.items()}

    def known_perstags(self) -> frozenset[str]:
        """Every personalization tag of the account's fields known so far."""
        return frozenset(self._perstags.values())

    async def _ensure(
        self, wanted: list[str], operation: str, json_titles: Collection[str]
    ) -> None:
        if not self._loaded and any(title not in self._by_title for title in wanted):
            await self._load(operation)
        for title in wanted:
            if title not in self._by_title:
                await self._create(title, operation, title in json_titles)

    async def _load(self, operation: str) -> None:
        offset = 0
        while True:
            page = await self._api.call(
                "GET", "/fields", operation=operation, params={"limit": PAGE, "offset": offset}
            )
            fields = records(page, "fields")
            for field in fields:
                title, field_id = field.get("title"), as_id(field.get("id"))
                if isinstance(title, str) and field_id:
                    self._by_title.setdefault(title, field_id)
                    if field.get("descript") == JSON_DESCRIPTION:
                        self._json.add(field_id)
                    self._learn_perstag(field_id, field)
            if len(fields) < PAGE:
                break
            offset += PAGE
        self._loaded = True

    def _same_but_case(self, title: str) -> str:
        folded = title.casefold()
        return next((i for t, i in self._by_title.items() if t.casefold() == folded), "")

    async def _create(self, title: str, operation: str, json_values: bool) -> None:
        if len(title) > MAX_TITLE or not title.strip():
            raise PermanentProviderError(
                f"property {title[:40]!r} cannot be an ActiveCampaign field title",
                code="field_title",
            )
        description = JSON_DESCRIPTION if json_values else TEXT_DESCRIPTION
        body = {"field": {"title": title, "type": "text", "descript": description}}
        try:
            created = await self._api.call("POST", "/fields", operation=operation, body=body)
            field_id = record_id(created, "field")
            self._learn_perstag(field_id, (created or {}).get("field"))
        except PermanentProviderError as exc:
            if exc.code != "duplicate":
                raise
            # made by another replica, or by an attempt of ours whose fieldRel failed, or
            # a title differing from ours in case only (the duplicate check ignores it)
            await self._load(operation)
            field_id = self._by_title.pop(title, "") or self._same_but_case(title)
            if not field_id:
                raise
        if not field_id:
            raise PermanentProviderError(f"POST /fields for {title!r} returned no id")
        rel = {"fieldRel": {"field": field_id, "relid": 0}}
        await self._api.call("POST", "/fieldRels", operation=operation, body=rel)
        self._by_title[title] = field_id
        if json_values:
            self._json.add(field_id)

    def _learn_perstag(self, field_id: str, field: object) -> None:
        perstag = field.get("perstag") if isinstance(field, dict) else None
        if field_id and isinstance(perstag, str) and perstag.strip():
            self._perstags[field_id] = perstag.strip()
