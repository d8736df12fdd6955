"""The sandbox provider's control API (/_sandbox/...), from the benchmark."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Collection
from datetime import datetime
from typing import Any

import httpx

# Request heads are written by json.dumps with its default ", " / ": " separators;
# the recorded bodies (compact JSON from the dispatcher) never contain ": ".
_RECEIVED_AT = re.compile(rb'"received_at": "([^"]+)"')


def wall(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class SandboxApi:
    """`compliance_paths`: the provider paths whose calls carry unsubscribes;
    `events_paths`: where a provider without event ids receives events (one per call)."""

    def __init__(
        self,
        base_url: str,
        compliance_paths: tuple[str, ...] = (),
        events_paths: tuple[str, ...] = (),
    ) -> None:
        self.base_url = base_url
        self.compliance_paths = compliance_paths
        self.events_paths = events_paths
        self._http = httpx.AsyncClient(base_url=base_url, timeout=120.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def reset(self) -> None:
        """Forget recorded requests (their bodies cost the sandbox memory) and counts."""
        (await self._http.delete("/_sandbox/requests")).raise_for_status()

    async def event_counts(self) -> dict[str, int]:
        response = await self._http.get("/_sandbox/events")
        response.raise_for_status()
        counts: dict[str, int] = response.json()
        return counts

    async def events_held(self) -> int:
        """How many distinct events (Klaviyo's unique ids) the sandbox holds: a
        number, where event_counts() answers with every id."""
        response = await self._http.get("/_sandbox/events/total")
        response.raise_for_status()
        return int(response.json()["unique_ids"])

    async def requests_raw(self) -> bytes:
        response = await self._http.get("/_sandbox/requests")
        response.raise_for_status()
        return response.content

    async def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, all or those to one path."""
        if path is None:
            parsed: list[dict[str, Any]] = json.loads(await self.requests_raw())
            return parsed
        response = await self._http.get("/_sandbox/requests", params={"path": path})
        response.raise_for_status()
        filtered: list[dict[str, Any]] = response.json()
        return filtered

    async def throttled_total(self) -> int:
        """429s (and other rate-limit refusals) the sandbox has answered."""
        return int((await self.throttled())["total"])

    async def throttled(self) -> dict[str, Any]:
        """GET /_sandbox/throttled: the refusals' total, buckets and answers (each with its
        bucket, window and receipt time)."""
        response = await self._http.get("/_sandbox/throttled")
        response.raise_for_status()
        report: dict[str, Any] = response.json()
        return report

    async def delivered_events(self) -> int:
        """Events the provider holds: Klaviyo counts them by unique id; ActiveCampaign
        has no event id, so its accepted tracking calls and orders are counted."""
        if self.events_paths:
            return sum([len(await self.requests(path=path)) for path in self.events_paths])
        return len(await self.event_counts())

    async def receipt_times(self) -> list[float]:
        """Wall-clock received_at of each recorded request."""
        return [wall(m.decode()) for m in _RECEIVED_AT.findall(await self.requests_raw())]

    async def receipt_span(self) -> tuple[float, float, int]:
        """Wall-clock (first, last) received_at of the recorded requests, and how many."""
        stamps = await self.receipt_times()
        if not stamps:
            return float("nan"), float("nan"), 0
        return min(stamps), max(stamps), len(stamps)

    async def wait_for(
        self, ids: Collection[str], timeout_s: float, poll_s: float = 0.5
    ) -> dict[str, int]:
        """Poll until every id in `ids` was received (or the timeout); the last counts."""
        deadline = time.monotonic() + timeout_s
        while True:
            counts = await self.event_counts()
            if len(counts) >= len(ids) and all(i in counts for i in ids):
                return counts
            if time.monotonic() > deadline:
                return counts
            await asyncio.sleep(poll_s)


def receipts(requests: list[dict[str, Any]]) -> dict[str, float]:
    """unique_id -> wall-clock time of the first request that carried it."""
    first: dict[str, float] = {}
    for request in requests:
        at = wall(request["received_at"])
        for unique_id in _unique_ids(request.get("body") or {}):
            if unique_id not in first or at < first[unique_id]:
                first[unique_id] = at
    return first


def _unique_ids(body: dict[str, Any]) -> list[str]:
    attributes = body.get("data", {}).get("attributes", {})
    if "events-bulk-create" in attributes:
        return [
            event["attributes"]["unique_id"]
            for entry in attributes["events-bulk-create"]["data"]
            for event in entry["attributes"]["events"]["data"]
        ]
    unique_id = attributes.get("unique_id")
    return [unique_id] if unique_id else []
