"""`marketing-dispatcher`: delivers work from NATS JetStream to the provider.

Run any number of replicas: events are shared among all of them; ordered
profile and consent work is processed by whichever replica holds its lease,
flow enrolment changes by whichever holds theirs (often the same one), and the
provider's campaigns and flows are read by whichever holds the catalogue lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from marketing_runtime import event_loop, gc_tuning, topology
from marketing_runtime.clock import Clock, Sleep, pause, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.consumer_loop import consume
from marketing_runtime.metrics_endpoint import serve_metrics
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget, account_id, give_backs_settled
from dispatcher.catalogue import CatalogueRefresher
from dispatcher.delivery.campaigns import CampaignAudienceWorker, CampaignSendWorker
from dispatcher.delivery.contacts import ContactsWorker
from dispatcher.delivery.enrolments import EnrolmentsWorker
from dispatcher.delivery.events import EventsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import AckWait, set_ack_wait
from dispatcher.delivery.outcomes import Reporter
from dispatcher.delivery.read_person import PersonReader
from dispatcher.delivery.sync import SyncWorker
from dispatcher.delivery.sync_consent import SyncConsentWorker
from dispatcher.delivery.sync_stage import StageSettings
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.activecampaign import ActiveCampaignClient, ListSender, TrackingAccount
from dispatcher.providers.base import Provider
from dispatcher.providers.catalogue import CatalogueSource
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.settings import CONSUMER_ACK_WAIT_S, DispatcherSettings
from dispatcher.webhooks import ReceiverConfig, WebhookServer, create_app

log = logging.getLogger("marketing.dispatcher")
# A sync loop waits this long for a first chunk, then up to `sync_fill_s` for the
# rest of its batch (a fetch waits for the first and the rest within one wait).
SYNC_FIRST_CHUNK_WAIT_S = 0.5
# An enrolments batch holding this many bytes goes without its linger: a message of a
# restock's thousand beginnings (about 450 KB) is a bulk job's worth by itself, where
# single beginnings and ends (a few hundred bytes each) are gathered for a while.
ENOUGH_ENROLMENT_BYTES = 64 * 1024
# On close, how long the budget's give-backs under way may take to reach NATS (a KV
# round trip a bucket) before the connection goes.
GIVE_BACKS_SETTLE_S = 2.0


def build_provider(settings: DispatcherSettings) -> Provider:
    """The client of the configured provider, or of its sandbox when no credentials are given."""
    if settings.uses_sandbox:
        log.warning(
            "no %s credentials: using its sandbox at %s",
            settings.provider_name,
            settings.sandbox_url,
        )
    base_url, key = settings.api_endpoint()
    if settings.provider_name == "klaviyo":
        return KlaviyoClient(key, base_url=base_url, timeout_s=settings.provider_timeout_s)
    url, account_id, event_key = settings.event_tracking()
    return ActiveCampaignClient(
        base_url,
        key,
        TrackingAccount(account_id, event_key, url),
        sms_list_id=settings.activecampaign_sms_list_id or None,
        suppression_tag=settings.activecampaign_suppression_tag,
        list_sender=ListSender(
            settings.activecampaign_list_sender_url, settings.activecampaign_list_sender_reminder
        ),
        timeout_s=settings.provider_timeout_s,
    )


def provider_account(settings: DispatcherSettings) -> str:
    """The account whose budget this replica draws from (see DispatcherSettings)."""
    if settings.provider_account:
        return settings.provider_account
    return account_id(settings.provider_name, *settings.api_endpoint())


class Dispatcher:
    """The worker loops of one replica; `run()` (or `serve()`) until `shutdown()`.
    The replica's timed waits (lease keeping, pauses, backoff, Retry-After, the
    shutdown grace) and its workers' go by `sleep`, `monotonic` and `clock` (wall
    time), so tests can drive it on a virtual clock; only waits on network I/O
    (a fetch's expiry, the puller's keep-alive) are on real time."""

    def __init__(
        self,
        settings: DispatcherSettings,
        provider: Provider,
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Clock = utc_now,
        webhooks: WebhookServer | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self._sleep, self._clock = sleep, clock
        self.bus = Bus(
            settings.nats_url, replicas=settings.stream_replicas, name="marketing-dispatcher"
        )
        self.replica = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self._leases: tuple[Lease, ...] = ()
        # Per provider account, not per connection: a Retry-After outlives a reconnect.
        self._gate = ProviderGate(monotonic=monotonic, sleep=sleep)
        if provider.limits.paces_requests:  # the budget counts its requests, not its calls
            provider.pace_requests(self._gate.pace)
        self._reader = PersonReader(
            provider, self._gate, settings.newsletter_list_id, monotonic=monotonic
        )
        self._ack_waits = AckWaits.of(settings)
        # The webhook receiver needs only the bus: it serves while NATS is away
        # (answering 503) and whatever the workers do.
        self._webhooks = webhooks

    async def run(self) -> None:
        """Deliver until `shutdown()`. What is built on a NATS connection (KV
        handles, the erasure watch) is built again when the Bus replaces a
        connection that closed for good."""
        self.bus.start()
        if self._webhooks is not None:
            config = ReceiverConfig.of(self.settings)
            self._webhooks.start(create_app(config, lambda: self.bus.js, clock=self._clock))
        if not await self._until_connected():
            return
        gc_tuning.tune_after_startup(self.settings.gc_gen0_threshold)
        while not self._stopping.is_set():
            if not await self._until_connected():
                return
            ended, js = self.bus.connection_ended(), self.bus.js
            if js is None:  # lost again meanwhile; nats-py is reconnecting
                await pause(self._stopping, 1.0, self._sleep)
                continue
            try:
                workers, erasures = await self._workers_on(js)
            except Exception as exc:  # the connection broke meanwhile
                log.warning("cannot set up on NATS (%r); trying again", exc)
                await pause(self._stopping, 1.0, self._sleep)
                continue
            await self._run_on(js, workers, erasures, ended)
            if not self._stopping.is_set():
                log.warning("resuming on the new NATS connection")

    async def _until_connected(self) -> bool:
        """Wait for the bus (the Bus logs why it cannot connect); False: stopping."""
        while not await self.bus.wait_ready(1.0):
            if self._stopping.is_set():
                return False
        return True

    async def _workers_on(self, js: JetStreamContext) -> tuple[Workers, ErasureMarks]:
        """The workers, with the KV handles of this connection."""
        s = self.settings
        await set_ack_wait(js, topology.WORK_STREAM, topology.DISPATCH_EVENTS, s.event_ack_wait_s)
        ack_waits = self._ack_waits
        for ack_wait in self._ack_waits:
            await ack_wait.read(js)
        fences_kv = await js.key_value(topology.FENCES_BUCKET)
        fences = Fences(fences_kv, nc=self.bus.nc, bucket=topology.FENCES_BUCKET)
        enrolment_fences = Fences(
            await js.key_value(topology.ENROLMENT_FENCES_BUCKET),
            nc=self.bus.nc,
            bucket=topology.ENROLMENT_FENCES_BUCKET,
        )
        erasures = ErasureMarks(fences_kv)
        leases_kv = await js.key_value(topology.LEASES_BUCKET)
        contacts_lease, enrolments_lease = (
            Lease(leases_kv, key, self.replica, s.lease_ttl_s, clock=self._epoch)
            for key in (topology.CONTACTS_LEASE, topology.ENROLMENTS_LEASE)
        )
        self._leases = (contacts_lease, enrolments_lease)
        catalogue = self._catalogue_refresher(leases_kv)
        self._gate.share(
            SharedBudget(
                await js.key_value(topology.BUDGET_BUCKET),
                provider_account(s),
                self.provider.limits,
                margin_s=s.budget_margin_s,
                skew_s=min(s.budget_skew_s, s.budget_margin_s),
                provider_skew_s=s.budget_provider_skew_s,
                epoch=self._epoch,
                sleep=self._sleep,
            )
        )
        reporter, gate = Reporter(self.bus, self._clock), self._gate
        events = EventsWorker(
            self.provider,
            reporter,
            gate,
            erasures,
            connection_ended=self.bus.connection_ended,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
            keepalive_s=ack_waits.events.keepalive_s,
            full_batch=event_batch(s, self.provider),
            sleep=self._sleep,
        )
        contacts = ContactsWorker(
            self.provider,
            reporter,
            gate,
            fences,
            contacts_lease,
            erasures,
            enrolment_fences=enrolment_fences,
            connection_ended=self.bus.connection_ended,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
            keepalive_s=ack_waits.contacts.keepalive_s,
            newsletter_list_id=s.newsletter_list_id,
            sleep=self._sleep,
        )
        enrolments = EnrolmentsWorker(
            self.provider,
            reporter,
            gate,
            enrolments_lease,
            erasures,
            enrolment_fences=enrolment_fences,
            connection_ended=self.bus.connection_ended,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
            keepalive_s=ack_waits.enrolments.keepalive_s,
            sleep=self._sleep,
        )

        def stage(ack_wait: AckWait) -> StageSettings:
            return StageSettings(
                connection_ended=self.bus.connection_ended,
                max_attempts=s.max_attempts,
                backoff_base_s=s.backoff_base_s,
                keepalive_s=ack_wait.keepalive_s,
                clock=self._clock,
                sleep=self._sleep,
            )

        sync = SyncStages(
            SyncWorker(self.provider, self.bus, gate, fences, stage(ack_waits.sync)),
            SyncConsentWorker(
                self.provider,
                self.bus,
                gate,
                fences,
                stage(ack_waits.sync_consent),
                newsletter_list_id=s.newsletter_list_id,
            ),
        )
        campaigns = CampaignStages(
            CampaignAudienceWorker(
                self.provider, self.bus, gate, fences, stage(ack_waits.campaign_audience)
            ),
            CampaignSendWorker(self.provider, self.bus, gate, stage(ack_waits.campaign_send)),
        )
        return Workers(events, contacts, enrolments, sync, campaigns, catalogue), erasures

    def _catalogue_refresher(self, leases_kv: KeyValue) -> CatalogueRefresher | None:
        """The refresher of the provider's campaigns and flows, with a lease of its own
        (the provider's budget is shared already); None for a provider that has none."""
        if not isinstance(self.provider, CatalogueSource):
            return None
        s = self.settings
        lease = Lease(
            leases_kv, topology.CATALOGUE_LEASE, self.replica, s.lease_ttl_s, clock=self._epoch
        )
        self._leases = (*self._leases, lease)
        return CatalogueRefresher(
            self.provider,
            self._gate,
            lease,
            self.bus,
            leases_kv,
            provider=s.provider_name,
            interval_s=s.catalogue_refresh_s,
            clock=self._clock,
            sleep=self._sleep,
        )

    async def _run_on(
        self, js: JetStreamContext, workers: Workers, erasures: ErasureMarks, ended: asyncio.Event
    ) -> None:
        """Work until shutdown or until the connection has ended."""
        log.info("dispatcher %s delivering to %s", self.replica, self.settings.provider_name)
        stop = asyncio.Event()  # shutdown, or the connection ended
        background = [
            asyncio.create_task(erasures.follow(), name="erasure-marks"),
            *(
                asyncio.create_task(a.follow(js, self._sleep), name="ack-wait")
                for a in self._ack_waits
            ),
            asyncio.create_task(_set_on_first(stop, self._stopping, ended), name="session-end"),
        ]
        nc = self.bus.nc
        if nc is not None:  # else lost meanwhile: the next connection answers reads
            background.append(asyncio.create_task(self._reader.serve(nc), name="read-person"))
        try:
            await self._work(workers, stop)
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _work(self, workers: Workers, stop: asyncio.Event) -> None:
        """The worker loops, until `stop`; if one of them dies the others are
        cancelled and the replica exits (its leases lapse and its messages are
        redelivered). While the provider is throttling us nothing is fetched:
        it could only wait in memory."""
        s = self.settings
        events, sync, ack_waits = workers.events, workers.sync, self._ack_waits
        events_loops = [
            consume(
                self.bus,
                stream=topology.WORK_STREAM,
                durable=topology.DISPATCH_EVENTS,
                handle=events.handle,
                stopping=stop,
                batch=event_batch(s, self.provider),
                linger_s=s.linger_s,
                hold_off=events.pause_left,
                keepalive_s=ack_waits.events.keepalive_s,
                fill_wait=events.fill_wait,
                sleep=self._sleep,
            )
            for _ in range(s.event_concurrency)
        ]
        # The ordered work: each consumer fetched only by its lease's holder.
        ordered_loops = [
            consume(
                self.bus,
                stream=topology.WORK_STREAM,
                durable=durable,
                handle=None if read_ahead else worker.handle,
                continuing=worker.handle if read_ahead else None,
                stopping=stop,
                batch=batch,
                linger_s=s.linger_s,
                may_fetch=worker.holds_lease,
                hold_off=worker.pause_left,
                keepalive_s=ack_wait.keepalive_s,
                payloads_per_fetch=payloads,
                enough_bytes=enough,
                read_ahead=read_ahead,
                sleep=self._sleep,
            )
            # An enrolments message may hold a thousand beginnings: a batch is
            # bounded by bytes too (eight of the server's largest messages), and
            # one that holds such a message goes without lingering for more
            # (ENOUGH_ENROLMENT_BYTES: a restock's first call goes sooner).
            # Enrolments ask for the next batch as they take one (a restock's
            # waitlist is a backlog of them, sent at the provider's pace), and
            # go on with it as the next part of the batch in hand (`continuing`):
            # it is read and planned while the part before is sent, not after.
            for worker, durable, ack_wait, batch, payloads, enough, read_ahead in (
                (workers.contacts, topology.DISPATCH_CONTACTS, ack_waits.contacts,
                 s.contact_batch_size, 0, 0, False),
                (workers.enrolments, topology.DISPATCH_ENROLMENTS, ack_waits.enrolments,
                 s.enrolment_batch_size, 8, ENOUGH_ENROLMENT_BYTES, True),
            )
        ]  # fmt: skip
        # A full sync's chunks: each loop holds one batch (about a job's worth)
        # at a time, so a job is polled while the next one is being started.
        # Their consent, once imported: big batches, so that the consent calls
        # (the scarce ones) are full.
        stages = (
            (sync.imports, topology.DISPATCH_SYNC, ack_waits.sync, s.sync_concurrency,
             sync.imports.chunks_per_batch(s.sync_chunks_per_batch)),
            (sync.consent, topology.DISPATCH_SYNC_CONSENT, ack_waits.sync_consent,
             s.sync_consent_concurrency, s.sync_consent_chunks_per_batch),
        )  # fmt: skip
        sync_loops = [
            consume(
                self.bus,
                stream=topology.SYNC_STREAM,
                durable=durable,
                handle=stage.handle,
                stopping=stop,
                batch=batch,
                wait_s=SYNC_FIRST_CHUNK_WAIT_S + s.sync_fill_s,
                linger_s=s.sync_fill_s,
                hold_off=stage.pause_left,
                keepalive_s=ack_wait.keepalive_s,
                sleep=self._sleep,
            )
            for stage, durable, ack_wait, loops, batch in stages
            for _ in range(loops)
        ]
        campaigns = workers.campaigns
        campaign_loops = [
            consume(
                self.bus,
                stream=topology.CAMPAIGNS_STREAM,
                durable=durable,
                handle=handle,
                stopping=stop,
                batch=batch,
                wait_s=SYNC_FIRST_CHUNK_WAIT_S + s.sync_fill_s,
                linger_s=s.sync_fill_s,
                hold_off=hold_off,
                keepalive_s=ack_wait.keepalive_s,
                sleep=self._sleep,
            )
            for handle, hold_off, durable, ack_wait, loops, batch in (
                (campaigns.audience.handle, campaigns.audience.pause_left,
                 topology.DISPATCH_CAMPAIGN_AUDIENCE, ack_waits.campaign_audience,
                 s.sync_concurrency, campaigns.audience.chunks_per_batch(s.sync_chunks_per_batch)),
                (campaigns.send.handle, campaigns.send.pause_left,
                 topology.DISPATCH_CAMPAIGN_SEND, ack_waits.campaign_send, 1, 1),
            )
            for _ in range(loops)
        ]  # fmt: skip
        keepers = [self._keep_lease(lease, stop) for lease in self._leases]
        if workers.catalogue is not None:
            keepers.append(workers.catalogue.run(stop))
        async with asyncio.TaskGroup() as group:
            for loop in (*events_loops, *ordered_loops, *sync_loops, *campaign_loops, *keepers):
                group.create_task(loop)

    async def _keep_lease(self, lease: Lease, stop: asyncio.Event) -> None:
        said_held = False  # as last logged: which replica does a kind of work, for operators
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await lease.acquire_or_renew()
            held = lease.held()  # once: it goes by the clock
            if held != said_held:
                said_held = held
                taken = "holds" if held else "no longer holds"
                log.info("dispatcher %s %s the lease %s", self.replica, taken, lease.key)
            await pause(stop, self.settings.lease_ttl_s / 5, self._sleep)

    def _epoch(self) -> float:
        return self._clock().timestamp()

    async def stopping(self) -> None:
        await self._stopping.wait()

    async def serve(self) -> int:
        """Run until `shutdown()` (0), then give the batches in hand the grace
        period to finish; or until a worker loop dies (1). Closes the replica."""
        running = asyncio.create_task(self.run())
        stopping = asyncio.create_task(self.stopping())
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if running.done() and running.exception() is not None:
            log.error("a worker loop died; exiting", exc_info=running.exception())
            code = 1
        else:
            grace_s = self.settings.shutdown_grace_s
            log.info("stopping: finishing batches in hand (up to %.0f s)", grace_s)
            if not await _finished_within(running, grace_s, self._sleep):
                log.warning("grace period over: unacknowledged work will be redelivered")
        stopping.cancel()
        await self.close()
        return code

    def shutdown(self) -> None:
        """Stop fetching; batches in hand are finished (or handed back). Stop taking
        webhooks; those in hand are finished before the bus closes."""
        self._stopping.set()
        if self._webhooks is not None:
            self._webhooks.request_stop()

    async def close(self) -> None:
        if self._webhooks is not None:
            await self._webhooks.stop()
        for lease in self._leases:
            with contextlib.suppress(Exception):
                await lease.release()
        await self.provider.aclose()
        await give_backs_settled(GIVE_BACKS_SETTLE_S)
        await self.bus.close()


@dataclass(frozen=True)
class AckWaits:
    """What the consumers' ack waits are on the server: held messages are kept
    alive at a third of these."""

    events: AckWait
    contacts: AckWait
    enrolments: AckWait
    sync: AckWait
    sync_consent: AckWait
    campaign_audience: AckWait
    campaign_send: AckWait

    @classmethod
    def of(cls, settings: DispatcherSettings) -> AckWaits:
        def created(stream: str, durable: str) -> AckWait:
            return AckWait(stream, durable, CONSUMER_ACK_WAIT_S)

        return cls(
            AckWait(topology.WORK_STREAM, topology.DISPATCH_EVENTS, settings.event_ack_wait_s),
            created(topology.WORK_STREAM, topology.DISPATCH_CONTACTS),
            created(topology.WORK_STREAM, topology.DISPATCH_ENROLMENTS),
            created(topology.SYNC_STREAM, topology.DISPATCH_SYNC),
            created(topology.SYNC_STREAM, topology.DISPATCH_SYNC_CONSENT),
            created(topology.CAMPAIGNS_STREAM, topology.DISPATCH_CAMPAIGN_AUDIENCE),
            created(topology.CAMPAIGNS_STREAM, topology.DISPATCH_CAMPAIGN_SEND),
        )

    def __iter__(self) -> Iterator[AckWait]:
        return iter(
            (
                self.events,
                self.contacts,
                self.enrolments,
                self.sync,
                self.sync_consent,
                self.campaign_audience,
                self.campaign_send,
            )
        )


@dataclass(frozen=True)
class Workers:
    """The workers of one NATS connection."""

    events: EventsWorker
    contacts: ContactsWorker
    enrolments: EnrolmentsWorker
    sync: SyncStages
    campaigns: CampaignStages
    catalogue: CatalogueRefresher | None = None


@dataclass(frozen=True)
class CampaignStages:
    """A campaign's pages into lists, and its provider campaigns (delivery/campaigns.py)."""

    audience: CampaignAudienceWorker
    send: CampaignSendWorker


@dataclass(frozen=True)
class SyncStages:
    """A full sync's two stages (dispatcher/delivery/sync.py)."""

    imports: SyncWorker
    consent: SyncConsentWorker


def event_batch(settings: DispatcherSettings, provider: Provider) -> int:
    """Events fetched at once: the setting, but never more than one provider call takes
    (a fetched batch is then sent in one call unless its bytes ask for more)."""
    return min(settings.event_batch_size, provider.limits.create_events.max_items)


async def _set_on_first(target: asyncio.Event, *events: asyncio.Event) -> None:
    """Set `target` as soon as any of `events` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    target.set()


async def _finished_within(task: asyncio.Task[None], seconds: float, sleep: Sleep) -> bool:
    """Await `task` for `seconds` (by `sleep`); past that, cancel it and return False.
    An exception of the task is raised."""
    timer = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait([task, timer], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()  # as asyncio.wait_for would
        raise
    finally:
        timer.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    await task
    return True


async def serve(settings: DispatcherSettings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a worker loop dies (exit 1)."""
    # Bound first: an address another program holds fails the start.
    address = settings.webhook_address
    webhooks = WebhookServer.listen(address) if address else None
    dispatcher = Dispatcher(settings, build_provider(settings), webhooks=webhooks)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.shutdown)
    # Operators send SIGHUP to reload; its default action would end the replica.
    loop.add_signal_handler(signal.SIGHUP, log.info, "SIGHUP: the dispatcher has nothing to reload")
    code = await dispatcher.serve()
    log.info("stopped")
    return code


def main() -> None:
    if sys.argv[1:3] == ["webhooks", "register"]:  # a one-off command, not a replica
        from dispatcher.webhook_registration import main as register_webhook

        raise SystemExit(register_webhook(sys.argv[3:]))
    settings = DispatcherSettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too much
    serve_metrics(settings.metrics_address)
    raise SystemExit(event_loop.run(serve(settings), settings.event_loop))


if __name__ == "__main__":
    main()
