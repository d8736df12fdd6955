"""`marketing-service`: run migrations (`migrate`), serve gRPC (`serve`, the default),
run only the bus workers (`work`: outbox relay, event-log writer, result recorders,
contact sync driver), or run a full contact sync with a progress bar
(`sync-contacts`, a client of a running service)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta

from marketing_runtime import event_loop, gc_tuning
from marketing_runtime.connection import Bus
from marketing_runtime.metrics_endpoint import serve_metrics

from service.api import sync_command
from service.api.auth import AuthSetupError, CallerFile, load_callers
from service.api.server import create_server
from service.api.sync_command import SyncCommandSettings
from service.api.tls import TlsSetupError
from service.campaigns.audience import Cap
from service.campaigns.sending import Sender
from service.preferences.serving import preference_links, start_preference_pages
from service.settings import ServiceSettings, async_database_url
from service.storage import migrate
from service.storage.database import Database
from service.workers.attribution_worker import AttributionSettings
from service.workers.campaign_driver import CampaignDriverSettings, CampaignWork
from service.workers.flow_worker import TimerSettings
from service.workers.queue_gauges import QueueGaugeSettings
from service.workers.runner import BusWorkers
from service.workers.segment_refresher import RefresherSettings
from service.workers.sync_driver import DriverSettings

log = logging.getLogger("marketing.service")


def _database(settings: ServiceSettings) -> Database:
    url = async_database_url(settings.database_url.get_secret_value())
    return Database(url, pool_size=settings.db_pool_size)


def _bus_workers(settings: ServiceSettings, db: Database, bus: Bus | None) -> BusWorkers:
    retention = timedelta(seconds=settings.outbox_retention_s)
    sync = DriverSettings(
        chunk_contacts=settings.sync_chunk_contacts,
        max_in_flight=settings.sync_max_in_flight,
        max_importing=settings.sync_max_importing,
        chunk_deadline_s=settings.sync_chunk_deadline_s,
    )
    return BusWorkers(
        db,
        bus,
        outbox_retention=retention,
        sync=sync,
        segments=RefresherSettings(
            interval_s=settings.segment_refresh_s,
            drain_batch=settings.segment_drain_batch,
            drain_poll_s=settings.segment_drain_poll_s,
        ),
        timer_settings=TimerSettings(
            batch=settings.timer_batch,
            waitlist_batch=settings.waitlist_batch,
            waitlist_concurrency=settings.waitlist_concurrency,
            max_sleep_s=settings.timer_max_sleep_s,
        ),
        queue_gauges=QueueGaugeSettings(interval_s=settings.queue_gauges_s),
        attribution=AttributionSettings(window=timedelta(seconds=settings.attribution_window_s)),
        campaigns=_campaign_work(settings),
    )


def _campaign_work(settings: ServiceSettings) -> CampaignWork:
    cap = Cap(settings.frequency_cap_messages, timedelta(days=settings.frequency_cap_days))
    sender = Sender(
        settings.campaign_from_email,
        settings.campaign_from_label,
        settings.campaign_reply_to or settings.campaign_from_email,
    )
    driver = CampaignDriverSettings(cap, sender, page_recipients=settings.campaign_page_recipients)
    return CampaignWork(driver, preference_links(settings).url_for)


def _nothing_to_reload() -> None:
    log.info("SIGHUP: nothing to reload (no MARKETING_AUTH_FILE)")


def _starting_up(_signal: int, _frame: object) -> None:
    log.info("SIGHUP while starting up: nothing to reload yet (the auth file is read at start)")


def _reload_on_sighup(callers: CallerFile | None = None) -> None:
    """SIGHUP re-reads the auth file, or only says there is nothing to reload:
    its default action would end the process without a graceful shutdown. Set
    before anything starts (main() covers the moments before the event loop)."""
    reload = callers.reload if callers is not None else _nothing_to_reload
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


async def _until_signalled() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()


async def serve(settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully; SIGHUP re-reads
    the auth file (if any)."""
    try:  # before anything starts: a wrong set-up is refused at once
        callers = load_callers(settings)
    except AuthSetupError as exc:
        raise SystemExit(f"marketing-service: {exc}") from None
    _reload_on_sighup(callers)
    db = _database(settings)
    serve_metrics(settings.metrics_address)
    bus: Bus | None = None
    workers: BusWorkers | None = None
    if settings.nats_url:
        bus = Bus(
            settings.nats_url,
            replicas=settings.stream_replicas,
            name="marketing-service",
            group_commit_s=settings.publish_group_commit_ms / 1000,
        )
        bus.start()
    if settings.bus_workers:
        workers = _bus_workers(settings, db, bus)
        workers.start()
    try:
        running = await create_server(settings, db, callers=callers, bus=bus)
    except TlsSetupError as exc:
        raise SystemExit(f"marketing-service: {exc}") from None
    pages = start_preference_pages(settings, db)
    gc_tuning.tune_after_startup(settings.gc_gen0_threshold)
    transport = "plaintext" if settings.tls_cert is None else "TLS"
    if settings.tls_client_ca is not None:
        transport = "mutual TLS"
    log.info("serving marketing.v1.MarketingService on port %d (%s)", running.port, transport)
    await _until_signalled()
    log.info(
        "shutting down: health NOT_SERVING, up to %.0f s for in-flight RPCs",
        settings.shutdown_grace_s,
    )
    if pages is not None:
        await pages.stop()
    await running.stop(settings.shutdown_grace_s)
    if workers is not None:
        await workers.stop()
    if bus is not None:
        await bus.close()
    await db.close()
    log.info("stopped")


async def work(settings: ServiceSettings) -> None:
    """Only the bus workers, until SIGTERM or SIGINT (SIGHUP is ignored, with a
    log line): the ingest processes then spend their CPU on RPCs alone. Any
    number may run (the relay elects one)."""
    if not settings.nats_url:
        raise SystemExit("marketing-service work needs MARKETING_NATS_URL")
    _reload_on_sighup()
    db = _database(settings)
    serve_metrics(settings.metrics_address)
    bus = Bus(settings.nats_url, replicas=settings.stream_replicas, name="marketing-service-work")
    bus.start()
    workers = _bus_workers(settings, db, bus)
    workers.start()
    gc_tuning.tune_after_startup(settings.gc_gen0_threshold)
    log.info("bus workers running")
    await _until_signalled()
    log.info("shutting down: finishing the batches in hand")
    await workers.stop()
    await bus.close()
    await db.close()
    log.info("stopped")


def main() -> None:
    # First of all: a SIGHUP while starting up must not end the process either.
    signal.signal(signal.SIGHUP, _starting_up)
    parser = argparse.ArgumentParser(prog="marketing-service", description=__doc__)
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate", "work", "sync-contacts"]
    )
    args = parser.parse_args()
    if args.command == "sync-contacts":  # a client: no database, no service settings
        logging.basicConfig(level=logging.WARNING)
        raise SystemExit(sync_command.main(SyncCommandSettings()))
    settings = ServiceSettings()  # filled from the environment
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "migrate":
        migrate.upgrade(async_database_url(settings.database_url.get_secret_value()))
        log.info("database migrated to the latest revision")
    elif args.command == "work":
        event_loop.run(work(settings), settings.event_loop)
    else:
        event_loop.run(serve(settings), settings.event_loop)


if __name__ == "__main__":
    main()
