"""A chunk the sync worker cannot finish is reported given up, then acked, so
that its sync can end: one that fails in each of its deliveries, and one
that cannot be read but names its sync and sequence in its Msg-Id; in the
import stage and in the consent stage alike."""

from __future__ import annotations

from marketing_runtime import topology
from marketing_runtime.envelope import MSG_ID_HEADER

from dispatcher.ordering.fences import CONSENT, PROFILE, person_key
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.delivery.test_sync import (
    JOBS,
    SUBSCRIBE,
    Scene,
    _contact,
    _emails,
    _run,
    _worker,
    delivering,
)
from tests.harness import eventually
from tests.processes import NatsServer


def test_a_chunk_failing_in_every_delivery_is_reported_given_up_and_acked(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        # A fence that is not a number: reading it fails in each delivery of a
        # chunk that says how new it is.
        emails = _emails(current.sync_id, 1, 3)
        kv = await current.js.key_value(topology.FENCES_BUCKET)
        await kv.put(f"{PROFILE}.{person_key(emails[0])}", b"not a sequence")
        await current.publish(1, [_contact(e, True) for e in emails], outbox_sequence=5)
        worker = _worker(current, provider, max_attempts=2)
        async with delivering(current.bus, worker):
            (result,) = await current.results_for(1)

            async def acked() -> bool:
                info = await current.consumer()
                return (info.num_pending, info.num_ack_pending) == (0, 0)

            await eventually(acked)
        assert result.sequence == 1
        assert result.imported == 0 and not result.failures
        assert result.error.startswith("failed in each of 2 deliveries, last: ")
        assert not sandbox.requests(JOBS), "nothing was imported"
        assert len(current.results) == 1

    _run(own_nats, sandbox, body)


def test_an_unreadable_chunk_is_reported_given_up_when_its_msg_id_names_it(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        garbage = b"\xff\xff\xff\xff"
        named = {MSG_ID_HEADER: f"{current.sync_id}:7"}
        await current.js.publish(topology.SYNC_CHUNKS_SUBJECT, garbage, headers=named)
        await current.js.publish(topology.SYNC_CHUNKS_SUBJECT, garbage)  # names nothing
        emails = _emails(current.sync_id, 8, 2)
        await current.publish(8, [_contact(e, None) for e in emails])
        async with delivering(current.bus, _worker(current, provider)):
            results = await current.results_for(2)

            async def settled() -> bool:
                info = await current.consumer()
                return (info.num_pending, info.num_ack_pending) == (0, 0)

            await eventually(settled)
        given_up, imported = results
        assert (given_up.sequence, given_up.imported) == (7, 0)
        assert given_up.error == "the chunk could not be read"
        assert (imported.sequence, imported.imported, imported.error) == (8, 2, "")
        assert len(current.results) == 2

    _run(own_nats, sandbox, body)


def test_a_consent_stage_failing_in_every_delivery_fails_its_people_after_their_import(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        # The consent fence is not a number: the import goes, the consent fails.
        emails = _emails(current.sync_id, 1, 3)
        kv = await current.js.key_value(topology.FENCES_BUCKET)
        await kv.put(f"{CONSENT}.{person_key(emails[0])}", b"not a sequence")
        await current.publish(1, [_contact(e, True) for e in emails], outbox_sequence=5)
        async with delivering(current.bus, _worker(current, provider, max_attempts=2)):
            (result,) = await current.results_for(1)
        assert len(sandbox.requests(JOBS)) == 1, "imported once"
        assert not sandbox.requests(SUBSCRIBE), "no consent sent"
        assert (result.imported, len(result.job_ids)) == (0, 1)
        assert result.error.startswith("consent: failed in each of 2 deliveries, last: ")
        assert sorted(f.email for f in result.failures) == sorted(emails)
        assert all(
            f.reason.startswith("consent: failed in each of 2 deliveries, last: ")
            for f in result.failures
        )
        assert len(current.results) == 1

    _run(own_nats, sandbox, body)


def test_an_unreadable_consent_stage_is_reported_given_up_when_its_msg_id_names_it(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    async def body(current: Scene, provider: KlaviyoClient) -> None:
        named = {MSG_ID_HEADER: f"{current.sync_id}:4:consent"}
        await current.js.publish(topology.SYNC_CONSENT_SUBJECT, b"\xff\xff\xff", headers=named)
        async with delivering(current.bus, _worker(current, provider)):
            (result,) = await current.results_for(1)
        assert (result.sequence, result.imported) == (4, 0)
        assert result.error == "consent: the chunk could not be read"

    _run(own_nats, sandbox, body)
