"""`marketing-service`: run migrations (`migrate`) or serve gRPC (`serve`, the default)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta

from service.bus.connection import Bus
from service.bus.workers import BusWorkers
from service.metrics import serve_metrics
from service.server import create_server
from service.settings import ServiceSettings, async_database_url
from service.storage import migrate
from service.storage.database import Database

log = logging.getLogger("marketing.service")


async def serve(settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    db = Database(
        async_database_url(settings.database_url.get_secret_value()),
        pool_size=settings.db_pool_size,
    )
    serve_metrics(settings.metrics_address)
    bus = workers = None
    if settings.nats_url:
        bus = Bus(settings.nats_url, replicas=settings.stream_replicas, name="marketing-service")
        bus.start()
        workers = BusWorkers(
            db, bus, outbox_retention=timedelta(seconds=settings.outbox_retention_s)
        )
        workers.start()
    running = await create_server(settings, db, bus=bus)
    log.info("serving marketing.v1.MarketingService on port %d", running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info(
        "shutting down: health NOT_SERVING, up to %.0f s for in-flight RPCs",
        settings.shutdown_grace_s,
    )
    await running.stop(settings.shutdown_grace_s)
    if workers is not None and bus is not None:
        await workers.stop()
        await bus.close()
    await db.close()
    log.info("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(prog="marketing-service", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = ServiceSettings()  # filled from the environment
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "migrate":
        migrate.upgrade(async_database_url(settings.database_url.get_secret_value()))
        log.info("database migrated to the latest revision")
    else:
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
