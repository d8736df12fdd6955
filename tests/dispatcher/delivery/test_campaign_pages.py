"""The campaign audience worker's pages, read and reported without a provider call:
what a page said of its list and attempt rides on its chunk (the worker keeps no
table of chunks, which a batch handed back would leave behind), so each chunk's
result names its own page's list and attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime import campaign_ids, topology

from dispatcher.delivery.campaigns import CampaignAudienceWorker
from dispatcher.delivery.sync_stage import Chunk, StageSettings
from dispatcher.providers.klaviyo.client import KlaviyoClient
from tests.dispatcher.helpers import API_KEY


class _Reporting(CampaignAudienceWorker):
    """Publishes into a list instead of JetStream."""

    published: list[tuple[str, bytes]]

    async def publish(self, subject: str, messages: Sequence[tuple[str, bytes]]) -> None:
        assert subject == topology.CAMPAIGN_RESULTS_SUBJECT
        self.published.extend(messages)


def _worker() -> _Reporting:
    provider = KlaviyoClient(API_KEY, base_url="http://127.0.0.1:9")  # never called here
    settings = StageSettings(
        connection_ended=asyncio.Event,
        max_attempts=1,
        backoff_base_s=1.0,
        keepalive_s=lambda: 1.0,
        clock=lambda: datetime(2026, 12, 6, tzinfo=UTC),
    )
    worker = _Reporting(provider, Any, Any, Any, settings)  # type: ignore[arg-type]
    worker.published = []
    return worker


def _page(list_name: str, list_id: str, attempt: int) -> Any:
    page = bus_pb2.CampaignAudiencePage(
        campaign_id="c1", part=1, sequence=3, list_name=list_name, list_id=list_id
    )
    page.attempt = attempt
    page.recipients.add().profile.email = "ada@example.com"
    return SimpleNamespace(data=page.SerializeToString(), headers={})


def _results(worker: _Reporting) -> list[bus_pb2.CampaignStepResult]:
    results = []
    for _, raw in worker.published:
        result = bus_pb2.CampaignStepResult()
        result.ParseFromString(raw)
        results.append(result)
    return results


def test_each_chunk_reports_what_its_own_page_said() -> None:
    worker = _worker()
    first = worker._read(_page("Spring A", "L1", attempt=1))
    again = worker._read(_page("Spring A", "L2", attempt=2))  # the page published anew
    assert first is not None and again is not None

    asyncio.run(worker.publish_results([again, first]))

    assert [(r.list_id, r.attempt) for r in _results(worker)] == [("L2", 2), ("L1", 1)]


def test_a_page_named_only_by_its_message_reports_no_list() -> None:
    worker = _worker()
    unreadable = Chunk(SimpleNamespace(data=b"", headers={}), campaign_ids.part_key("c1", 1), 3, 0)  # type: ignore[arg-type]
    unreadable.error = "the chunk could not be read"

    asyncio.run(worker.publish_results([unreadable]))

    (result,) = _results(worker)
    assert (result.list_id, result.attempt, result.retryable) == ("", 0, False)


def test_a_page_handed_back_leaves_nothing_in_the_worker() -> None:
    """A batch handed back (the provider down, the lease lost) is never reported: the
    worker must hold nothing of its chunks, which would pile up for as long as it runs."""
    worker = _worker()
    before = _held(worker)
    for attempt in range(5):
        assert worker._read(_page("Spring A", "", attempt)) is not None  # dropped unreported

    assert _held(worker) == before


def _held(worker: _Reporting) -> int:
    """How many items the worker's containers hold."""
    return sum(len(v) for v in vars(worker).values() if isinstance(v, dict | list | set))
