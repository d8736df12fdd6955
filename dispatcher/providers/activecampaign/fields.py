"""Our contact properties as ActiveCampaign custom fields, which are referenced by numeric id
only. A field is found by its title (the property's name) or created on first use (POST
/fields, then POST /fieldRels with relid 0 so it belongs to every list); ids are kept for the
life of the client. Another replica may create the same field meanwhile: its 422 "duplicate"
answer makes us read the fields again and take its id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from dispatcher.providers.activecampaign.http import ApiHttp, as_id, record_id, records
from dispatcher.providers.errors import PermanentProviderError

PAGE = 100
MAX_TITLE = 255


class FieldIds:
    def __init__(self, api: ApiHttp) -> None:
        self._api = api
        self._by_title: dict[str, str] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    async def ids(self, titles: Iterable[str], operation: str) -> dict[str, str]:
        """Each title's field id, creating the missing fields."""
        wanted = list(dict.fromkeys(titles))
        if any(title not in self._by_title for title in wanted):
            async with self._lock:  # one creation per field, however many calls want it
                await self._ensure(wanted, operation)
        return {title: self._by_title[title] for title in wanted}

    async def titles(self, operation: str) -> dict[str, str]:
        """Field id -> title of every field the account has (read once, then remembered)."""
        async with self._lock:
            if not self._loaded:
                await self._load(operation)
        return {field_id: title for title, field_id in self._by_title.items()}

    async def _ensure(self, wanted: list[str], operation: str) -> None:
        if not self._loaded and any(title not in self._by_title for title in wanted):
            await self._load(operation)
        for title in wanted:
            if title not in self._by_title:
                await self._create(title, operation)

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
            if len(fields) < PAGE:
                break
            offset += PAGE
        self._loaded = True

    async def _create(self, title: str, operation: str) -> None:
        if len(title) > MAX_TITLE or not title.strip():
            raise PermanentProviderError(
                f"property {title[:40]!r} cannot be an ActiveCampaign field title",
                code="field_title",
            )
        body = {"field": {"title": title, "type": "text", "descript": "marketing automation"}}
        try:
            created = await self._api.call("POST", "/fields", operation=operation, body=body)
            field_id = record_id(created, "field")
        except PermanentProviderError as exc:
            if exc.code != "duplicate":
                raise
            # made by another replica, or by an attempt of ours whose fieldRel failed
            await self._load(operation)
            field_id = self._by_title.pop(title, "")
            if not field_id:
                raise
        if not field_id:
            raise PermanentProviderError(f"POST /fields for {title!r} returned no id")
        rel = {"fieldRel": {"field": field_id, "relid": 0}}
        await self._api.call("POST", "/fieldRels", operation=operation, body=rel)
        self._by_title[title] = field_id
