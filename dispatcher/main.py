"""`marketing-dispatcher`: delivers work from NATS JetStream to the provider.

Run any number of replicas: events are shared among all of them; ordered
profile and consent work is processed by whichever replica holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid

from dispatcher.contacts_worker import ContactsWorker
from dispatcher.events_worker import EventsWorker
from dispatcher.gate import ProviderGate
from dispatcher.keepalive import keepalive_every, set_ack_wait
from dispatcher.kv_state import ErasureMarks, Fences, Lease
from dispatcher.outcomes import Reporter
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo import KlaviyoClient
from dispatcher.settings import DispatcherSettings
from service import event_loop, gc_tuning
from service.bus import topology
from service.bus.connection import Bus
from service.bus.consumer_loop import consume
from service.clock import utc_now
from service.metrics import serve_metrics

log = logging.getLogger("marketing.dispatcher")
LEASE_KEY = "ordered-work"


def build_provider(settings: DispatcherSettings) -> Provider:
    if settings.provider == "klaviyo":
        key = settings.klaviyo_api_key.get_secret_value()
        if not key:
            raise SystemExit("MARKETING_PROVIDER=klaviyo needs KLAVIYO_API_KEY")
        return KlaviyoClient(
            key, base_url=settings.klaviyo_base_url, timeout_s=settings.provider_timeout_s
        )
    return KlaviyoClient(
        "sandbox-key", base_url=settings.sandbox_url, timeout_s=settings.provider_timeout_s
    )


class Dispatcher:
    """The worker loops of one replica; `run()` until `shutdown()`."""

    def __init__(self, settings: DispatcherSettings, provider: Provider) -> None:
        self.settings = settings
        self.provider = provider
        self.bus = Bus(
            settings.nats_url, replicas=settings.stream_replicas, name="marketing-dispatcher"
        )
        self.replica = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self._lease: Lease | None = None

    async def run(self) -> None:
        s = self.settings
        self.bus.start()
        while not await self.bus.wait_ready(5.0):
            if self._stopping.is_set():
                return
            log.warning("waiting for NATS at %s", s.nats_url)
        js = self.bus.js
        assert js is not None
        await set_ack_wait(js, topology.WORK_STREAM, topology.DISPATCH_EVENTS, s.event_ack_wait_s)
        fences_kv = await js.key_value(topology.FENCES_BUCKET)
        fences, erasures = Fences(fences_kv), ErasureMarks(fences_kv)
        self._lease = Lease(
            await js.key_value(topology.LEASES_BUCKET), LEASE_KEY, self.replica, s.lease_ttl_s
        )
        reporter, gate = Reporter(self.bus, utc_now), ProviderGate()
        events = EventsWorker(
            self.provider,
            reporter,
            gate,
            erasures,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
            keepalive_s=keepalive_every(s.event_ack_wait_s),
        )
        contacts = ContactsWorker(
            self.provider,
            reporter,
            gate,
            fences,
            self._lease,
            erasures,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
            newsletter_list_id=s.newsletter_list_id,
        )
        log.info("dispatcher %s delivering to %s", self.replica, s.provider)
        gc_tuning.tune_after_startup(s.gc_gen0_threshold)
        following = asyncio.create_task(erasures.follow(), name="erasure-marks")
        try:
            await self._work(events, contacts, gate)
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    async def _work(
        self, events: EventsWorker, contacts: ContactsWorker, gate: ProviderGate
    ) -> None:
        """The worker loops; if one of them dies the others are cancelled and
        the replica exits (its lease lapses and its messages are redelivered).
        While the provider is throttling us nothing is fetched: it could only
        wait in memory."""
        s = self.settings
        assert self._lease is not None
        events_loops = [
            consume(
                self.bus,
                stream=topology.WORK_STREAM,
                durable=topology.DISPATCH_EVENTS,
                handle=events.handle,
                stopping=self._stopping,
                batch=s.event_batch_size,
                linger_s=s.linger_s,
                hold_off=gate.pause_left,
                keepalive_s=keepalive_every(s.event_ack_wait_s),
            )
            for _ in range(s.event_concurrency)
        ]
        contacts_loop = consume(
            self.bus,
            stream=topology.WORK_STREAM,
            durable=topology.DISPATCH_CONTACTS,
            handle=contacts.handle,
            stopping=self._stopping,
            batch=s.contact_batch_size,
            linger_s=s.linger_s,
            may_fetch=self._lease.held,
            hold_off=gate.pause_left,
            keepalive_s=keepalive_every(topology.ACK_WAIT_S),
        )
        async with asyncio.TaskGroup() as group:
            for loop in (*events_loops, contacts_loop, self._keep_lease()):
                group.create_task(loop)

    async def _keep_lease(self) -> None:
        assert self._lease is not None
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self._lease.acquire_or_renew()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.lease_ttl_s / 5)

    async def stopping(self) -> None:
        await self._stopping.wait()

    def shutdown(self) -> None:
        """Stop fetching; batches in hand are finished (or handed back)."""
        self._stopping.set()

    async def close(self) -> None:
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await self._lease.release()
        await self.provider.aclose()
        await self.bus.close()


async def serve(settings: DispatcherSettings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a worker loop dies (exit 1)."""
    dispatcher = Dispatcher(settings, build_provider(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.shutdown)
    running = asyncio.create_task(dispatcher.run())
    stopping = asyncio.create_task(dispatcher.stopping())
    await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if running.done() and running.exception() is not None:
        log.error("a worker loop died; exiting", exc_info=running.exception())
        code = 1
    else:
        log.info("stopping: finishing batches in hand (up to %.0f s)", settings.shutdown_grace_s)
        try:
            await asyncio.wait_for(running, settings.shutdown_grace_s)
        except TimeoutError:
            log.warning("grace period over: unacknowledged work will be redelivered")
    stopping.cancel()
    await dispatcher.close()
    log.info("stopped")
    return code


def main() -> None:
    settings = DispatcherSettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too much
    serve_metrics(settings.metrics_address)
    raise SystemExit(event_loop.run(serve(settings), settings.event_loop))


if __name__ == "__main__":
    main()
