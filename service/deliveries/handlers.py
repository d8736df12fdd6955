"""Delivery RPCs: queue statistics and the failed-delivery review queue, as messages."""

from __future__ import annotations

from google.protobuf import duration_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import timestamp
from service.common.pagination import PageTokens
from service.deliveries import queue, rules
from service.deliveries.rules import FailedDelivery, failed_delivery_name
from service.storage.database import Database


class DeliveryHandlers:
    def __init__(self, db: Database, tokens: PageTokens, *, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def get_queue_stats(self, request: pb.GetQueueStatsRequest) -> pb.GetQueueStatsResponse:
        stats = await queue.queue_stats(self._db, now=self._clock())
        age = duration_pb2.Duration()
        age.FromTimedelta(stats.oldest_pending_age)
        return pb.GetQueueStatsResponse(
            pending=stats.pending,
            in_flight=stats.in_flight,
            failed=stats.failed,
            oldest_pending_age=age,
        )

    async def list_failed_deliveries(
        self, request: pb.ListFailedDeliveriesRequest
    ) -> pb.ListFailedDeliveriesResponse:
        page = await rules.list_failed(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListFailedDeliveriesResponse(
            failed_deliveries=[failed_delivery_message(failed) for failed in page.failed],
            next_page_token=page.next_page_token,
        )

    async def retry_failed_deliveries(
        self, request: pb.RetryFailedDeliveriesRequest
    ) -> pb.RetryFailedDeliveriesResponse:
        retried = await rules.retry_failed(self._db, names=list(request.names))
        return pb.RetryFailedDeliveriesResponse(retried=retried)


def failed_delivery_message(failed: FailedDelivery) -> pb.FailedDelivery:
    return pb.FailedDelivery(
        name=failed_delivery_name(failed),
        kind=failed.kind,
        event_id=failed.event_id,
        error=failed.error or "",
        attempts=failed.attempts,
        retry_count=failed.retry_count,
        create_time=timestamp(failed.created_at),
        fail_time=timestamp(failed.failed_at),
    )
