"""The catalogue recorder: keeps the campaign cache as the dispatcher's catalogue refreshes
(ProviderCatalogue on marketing.results.catalogue) say, a batch of messages per transaction
in the order they came (service.provider_catalogue.recording)."""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from nats.aio.msg import Msg

from service.errors import UnavailableError
from service.provider_catalogue.recording import record
from service.storage.database import Database
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)


class CatalogueRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def handle(self, messages: list[Msg]) -> None:
        catalogues = [c for msg in messages if (c := _read(msg)) is not None]
        try:
            async with self._db.transaction() as session:
                for catalogue in catalogues:
                    if not await record(session, catalogue):
                        log.info("catalogue recorder: a refresh older than the cache dropped")
        except UnavailableError as exc:
            log.warning("catalogue recorder: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        await ack_all(messages)


def _read(msg: Msg) -> bus_pb2.ProviderCatalogue | None:
    """A message's catalogue. One that does not parse is logged and acked with the rest:
    asking for it again would not make it readable (the next refresh comes anyway)."""
    try:
        return bus_pb2.ProviderCatalogue.FromString(msg.data)
    except DecodeError as exc:
        log.warning("catalogue recorder: a message not read (%s)", exc)
        return None
