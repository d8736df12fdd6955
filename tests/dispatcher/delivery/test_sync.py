"""The full-sync worker in-process: chunks published by hand on a real nats-server
of its own, the consume loop main() runs, the Klaviyo client on the sandbox over
HTTP (its rate limits on); what the account holds and the results published on
`marketing.results.sync` are checked."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import nats
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.consumer_loop import consume
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every, set_ack_wait
from dispatcher.delivery.sync import Polling, SyncWorker, _consent_bytes
from dispatcher.delivery.sync_consent import SyncConsentWorker
from dispatcher.delivery.sync_stage import StageSettings
from dispatcher.main import SyncStages
from dispatcher.ordering.fences import Fences
from dispatcher.providers.base import OperationLimits, Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.providers.klaviyo.test_imports import stored_profile
from tests.harness import eventually
from tests.processes import NatsServer

JOBS = "/api/profile-bulk-import-jobs"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
ACK_WAIT_S = 30.0


def _contact(email: str, consent: bool | None) -> bus_pb2.SyncedContact:
    """A person; with `consent`, a consent state granting email (True) or a
    suppressed one (False)."""
    synced = bus_pb2.SyncedContact(
        profile=bus_pb2.ContactUpserted(contact_id=str(uuid.uuid4()), email=email, first_name="Ada")
    )
    if consent is not None:
        synced.consent.email = email
        synced.consent.opt_in.email = consent
        synced.consent.suppressed = not consent
    return synced


def _emails(sync_id: str, sequence: int, count: int) -> list[str]:
    return [f"p{sequence}-{i}-{sync_id[:8]}@example.com" for i in range(count)]


@dataclass
class Scene:
    """A bus, the chunks' sync id, and the results seen on the results subject."""

    bus: Bus
    js: JetStreamContext
    fences: Fences
    sync_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    results: list[bus_pb2.ContactSyncChunkResult] = field(default_factory=list)

    async def publish(
        self, sequence: int, contacts: list[bus_pb2.SyncedContact], outbox_sequence: int = 0
    ) -> None:
        chunk = bus_pb2.ContactSyncChunk(
            sync_id=self.sync_id,
            sequence=sequence,
            contacts=contacts,
            outbox_sequence=outbox_sequence,
        )
        headers = {MSG_ID_HEADER: f"{self.sync_id}:{sequence}"}
        await self.js.publish(
            topology.SYNC_CHUNKS_SUBJECT, chunk.SerializeToString(), headers=headers
        )

    async def results_for(self, count: int) -> list[bus_pb2.ContactSyncChunkResult]:
        async def enough() -> bool:
            return len(self.results) >= count

        await eventually(enough, timeout_s=60)
        return sorted(self.results, key=lambda r: r.sequence)

    async def consumer(self) -> Any:
        return await self.js.consumer_info(topology.SYNC_STREAM, topology.DISPATCH_SYNC)


@contextlib.asynccontextmanager
async def scene(own_nats: NatsServer) -> AsyncIterator[Scene]:
    bus = Bus(own_nats.url, name="test-sync-worker")
    bus.start()
    assert await bus.wait_ready(30)
    assert bus.js is not None
    await bus.js.purge_stream(topology.SYNC_STREAM)  # what an earlier test left
    observer = await nats.connect(own_nats.url)
    fences_kv = await bus.js.key_value(topology.FENCES_BUCKET)
    fences = Fences(fences_kv, nc=bus.nc, bucket=topology.FENCES_BUCKET)
    current = Scene(bus, bus.js, fences)

    async def record(msg: Msg) -> None:
        result = bus_pb2.ContactSyncChunkResult.FromString(msg.data)
        if result.sync_id == current.sync_id:
            current.results.append(result)

    await observer.subscribe(topology.SYNC_RESULTS_SUBJECT, cb=record)
    try:
        yield current
    finally:
        await observer.close()
        await bus.close()


def _worker(
    current: Scene, provider: Provider, *, bus: Bus | None = None, **options: Any
) -> SyncStages:
    """Both stages of a sync on the scene's bus (or `bus`) and fences."""
    bus = bus or current.bus
    gate = options.pop("gate", ProviderGate())
    settings = StageSettings(
        connection_ended=bus.connection_ended,
        max_attempts=options.pop("max_attempts", 3),
        backoff_base_s=0.05,
        keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
        clock=utc_now,
    )
    polling = Polling(first_s=0.05, max_s=0.2, give_up_s=60)
    return SyncStages(
        SyncWorker(provider, bus, gate, current.fences, settings, polling=polling),
        SyncConsentWorker(provider, bus, gate, current.fences, settings, newsletter_list_id=None),
    )


@contextlib.asynccontextmanager
async def delivering(bus: Bus, worker: SyncStages) -> AsyncIterator[None]:
    """The loops main() runs for the sync's two consumers, until the block ends."""
    stop = asyncio.Event()
    stages = (
        (worker.imports, topology.DISPATCH_SYNC, worker.imports.chunks_per_batch(10)),
        (worker.consent, topology.DISPATCH_SYNC_CONSENT, 10),
    )
    loops = [
        asyncio.create_task(
            consume(
                bus,
                stream=topology.SYNC_STREAM,
                durable=durable,
                handle=stage.handle,
                stopping=stop,
                batch=batch,
                linger_s=0.2,
                hold_off=stage.pause_left,
                keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
            )
        )
        for stage, durable, batch in stages
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*loops), 30)


def _run(
    own_nats: NatsServer, sandbox: Sandbox, body: Callable[[Scene, KlaviyoClient], Awaitable[None]]
) -> None:
    async def run() -> None:
        async with (
            scene(own_nats) as current,
            KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider,
        ):
            await body(current, provider)

    asyncio.run(run())


def _job_sizes(sandbox: Sandbox) -> list[int]:
    return [
        len(r["body"]["data"]["attributes"]["profiles"]["data"]) for r in sandbox.requests(JOBS)
    ]


def test_chunks_are_imported_their_consent_sent_and_reported_then_acked(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        emails = {seq: _emails(current.sync_id, seq, 4) for seq in (1, 2, 3)}
        consent = [True, False, None, True]
        for seq, chunk_emails in emails.items():
            await current.publish(
                seq, [_contact(e, c) for e, c in zip(chunk_emails, consent, strict=True)]
            )
        async with delivering(current.bus, _worker(current, provider)):
            results = await current.results_for(3)

        assert [(r.sequence, r.imported, list(r.failures), r.error) for r in results] == [
            (seq, 4, [], "") for seq in (1, 2, 3)
        ]
        (job,) = {tuple(r.job_ids) for r in results}
        assert len(job) == 1, "three chunks of four: one job"
        assert _job_sizes(sandbox) == [12]
        for chunk_emails in emails.values():
            assert all(stored_profile(sandbox, e) for e in chunk_emails)
            granted, suppressed, _, _ = chunk_emails
            (profile,) = sandbox.profiles(granted)
            assert profile["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
            (profile,) = sandbox.profiles(suppressed)
            reasons = profile["subscriptions"]["email"]["marketing"]["suppression"]
            assert "USER_SUPPRESSED" in {s["reason"] for s in reasons}
        info = await current.consumer()
        assert (info.num_pending, info.num_ack_pending) == (0, 0), "every chunk acked"

    _run(own_nats, sandbox, body)


def test_a_persons_consent_is_handed_on_as_the_chunk_carried_it_without_the_contact_id() -> None:
    synced = _contact("ada@example.com", consent=True)
    synced.consent.contact_id = synced.profile.contact_id
    synced.consent.phone = "+4915112345678"
    synced.consent.newsletter_member = True
    expected = bus_pb2.ConsentState()
    expected.CopyFrom(synced.consent)
    expected.ClearField("contact_id")

    encoded = _consent_bytes(synced)

    assert encoded is not None
    handed_on = bus_pb2.ConsentState.FromString(encoded)
    assert handed_on == expected and handed_on.HasField("phone")
    assert handed_on.email == "ada@example.com" and handed_on.newsletter_member
    assert _consent_bytes(_contact("bob@example.com", consent=None)) is None


def test_chunks_of_a_thousand_are_packed_into_jobs_of_ten_thousand(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        # The service bounds the chunks in flight; here the consumer lets a
        # whole job's worth through at once.
        info = await current.consumer()
        info.config.max_ack_pending = 100
        await current.js.add_consumer(topology.SYNC_STREAM, info.config)
        for seq in range(1, 13):
            chunk_emails = _emails(current.sync_id, seq, 1000)
            await current.publish(seq, [_contact(e, None) for e in chunk_emails])
        worker = _worker(current, provider)
        assert worker.imports.chunks_per_batch(10) == 10
        async with delivering(current.bus, worker):
            await eventually(lambda: _async(sandbox.requests(JOBS)))
            in_hand = (await current.consumer()).num_ack_pending
            results = await current.results_for(12)

        assert in_hand == 10, "one batch of chunks in hand: memory stays flat"
        assert _job_sizes(sandbox) == [10_000, 2_000]
        assert [r.imported for r in results] == [1000] * 12
        assert len({tuple(r.job_ids) for r in results}) == 2

    _run(own_nats, sandbox, body)


class SmallJobsClient(KlaviyoClient):
    """The Klaviyo client with ActiveCampaign's job size: 250 people a call."""

    limits = replace(KlaviyoClient.limits, import_profiles=OperationLimits(max_items=250))


def test_a_chunk_goes_in_several_jobs_when_a_job_takes_fewer_people(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, _: KlaviyoClient) -> None:
        emails = _emails(current.sync_id, 1, 1000)
        await current.publish(1, [_contact(e, None) for e in emails])
        async with SmallJobsClient(API_KEY, base_url=sandbox.base_url) as provider:
            worker = _worker(current, provider)
            assert worker.imports.chunks_per_batch(10) == 1
            async with delivering(current.bus, worker):
                (result,) = await current.results_for(1)

        assert _job_sizes(sandbox) == [250] * 4
        assert result.imported == 1000 and len(set(result.job_ids)) == 4

    _run(own_nats, sandbox, body)


def test_people_the_import_refuses_are_failures_of_their_chunk(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        good = _emails(current.sync_id, 1, 3)
        bad = [f"not-an-email-{i}-{current.sync_id[:8]}" for i in range(2)]
        await current.publish(1, [_contact(e, True) for e in [*good, *bad]])
        async with delivering(current.bus, _worker(current, provider)):
            (result,) = await current.results_for(1)

        assert result.imported == 3 and result.error == ""
        assert sorted(f.email for f in result.failures) == sorted(bad)
        assert all(f.reason and not f.reason.startswith("consent") for f in result.failures)
        assert sandbox.rejections() == [], "refused by the import, never sent consent"
        (subscribe,) = sandbox.requests(SUBSCRIBE)
        sent = [
            p["attributes"]["email"]
            for p in subscribe["body"]["data"]["attributes"]["profiles"]["data"]
        ]
        assert sorted(sent) == sorted(good), "consent only for the people imported"

    _run(own_nats, sandbox, body)


def test_a_job_the_account_may_not_start_gives_the_chunk_up_without_splitting_it(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=JOBS, status=403, times=100)

    async def body(current: Scene, provider: KlaviyoClient) -> None:
        await current.publish(1, [_contact(e, True) for e in _emails(current.sync_id, 1, 8)])
        async with delivering(current.bus, _worker(current, provider)):
            (result,) = await current.results_for(1)

        assert result.imported == 0 and not result.failures and not result.job_ids
        assert "403" in result.error
        assert len(sandbox.rejections()) == 1, "one call: halving could not help"
        assert sandbox.requests(SUBSCRIBE) == [], "no consent for people not imported"
        assert (await current.consumer()).num_ack_pending == 0, "acked: given up"

    _run(own_nats, sandbox, body)


def test_a_refusal_naming_a_profile_fails_that_person_and_imports_the_rest(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(
        path=JOBS, status=400, pointer="/data/attributes/profiles/data/1/attributes/email"
    )

    async def body(current: Scene, provider: KlaviyoClient) -> None:
        emails = _emails(current.sync_id, 1, 4)
        await current.publish(1, [_contact(e, None) for e in emails])
        async with delivering(current.bus, _worker(current, provider)):
            (result,) = await current.results_for(1)

        assert result.imported == 3 and result.error == ""
        assert [f.email for f in result.failures] == [emails[1]]
        assert _job_sizes(sandbox) == [3], "the rest in a job of its own"
        assert stored_profile(sandbox, emails[1]) is None

    _run(own_nats, sandbox, body)


def test_a_throttled_start_and_a_failing_poll_are_retried(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=JOBS, status=429, retry_after=1)

    async def body(current: Scene, provider: KlaviyoClient) -> None:
        emails = _emails(current.sync_id, 1, 2)
        await current.publish(1, [_contact(e, None) for e in emails])
        worker = _worker(current, provider)
        async with delivering(current.bus, worker):
            await eventually(lambda: _async(sandbox.requests(JOBS)))
            sandbox.add_fault(path=f"{JOBS}/", status=503)
            (result,) = await current.results_for(1)

        assert (result.imported, result.error) == (2, "")
        statuses = [r["status"] for r in sandbox.rejections()]
        assert statuses == [429, 503]

    _run(own_nats, sandbox, body)


def test_a_chunk_whose_replica_died_mid_job_is_imported_again_by_another(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        await set_ack_wait(current.js, topology.SYNC_STREAM, topology.DISPATCH_SYNC, 2.0)
        emails = _emails(current.sync_id, 1, 5)
        await current.publish(1, [_contact(e, True) for e in emails])
        dying = Bus(own_nats.url, name="test-sync-dying")
        dying.start()
        assert await dying.wait_ready(30) and dying.nc is not None
        puller = PullConsumer(dying.nc, stream=topology.SYNC_STREAM, durable=topology.DISPATCH_SYNC)
        chunks = await puller.fetch(1, wait_s=5, linger_s=0)
        handling = asyncio.create_task(_worker(current, provider, bus=dying).imports.handle(chunks))
        await eventually(lambda: _async(sandbox.requests(JOBS)))
        handling.cancel()  # killed while its job runs: nothing acked, nothing reported
        with contextlib.suppress(asyncio.CancelledError):
            await handling
        await puller.close()
        await dying.close()

        try:
            async with delivering(current.bus, _worker(current, provider)):
                (result,) = await current.results_for(1)
        finally:
            await set_ack_wait(current.js, topology.SYNC_STREAM, topology.DISPATCH_SYNC, ACK_WAIT_S)

        first, again = sandbox.requests(JOBS)
        assert first["body"] == again["body"], "the same people imported again (an upsert)"
        assert result.imported == 5 and len(result.job_ids) == 1
        assert all(stored_profile(sandbox, e) for e in emails)
        assert len(current.results) == 1, "reported once"

    _run(own_nats, sandbox, body)


async def _async(value: Any) -> Any:
    return value
