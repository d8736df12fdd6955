"""Declaring the topology again (each reconnect of the service or a dispatcher)
leaves an existing consumer's ack wait as the dispatcher set it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, topology
from nats.js.api import KeyValueConfig, RetentionPolicy

from tests.processes import NatsServer


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def test_declaring_again_keeps_the_events_consumers_ack_wait(fresh_nats: NatsServer) -> None:
    async def scenario() -> tuple[float | None, float | None]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        created = await js.consumer_info(topology.WORK_STREAM, topology.DISPATCH_EVENTS)
        created.config.ack_wait = 7.0  # as a dispatcher with MARKETING_EVENT_ACK_WAIT_S=7 sets it
        await js.add_consumer(topology.WORK_STREAM, created.config)
        await topology.declare(js)  # a service reconnecting
        after = await js.consumer_info(topology.WORK_STREAM, topology.DISPATCH_EVENTS)
        await nc.close()
        return created.config.ack_wait, after.config.ack_wait

    set_to, after_declare = asyncio.run(scenario())
    assert (set_to, after_declare) == (7.0, 7.0)


def test_sync_chunks_and_sync_results_have_their_own_consumers(fresh_nats: NatsServer) -> None:
    """A full sync's chunks reach only the dispatcher's sync consumer, its
    chunk results only the service's sync-results consumer; the batch results
    consumer of a release before the sync (filtered on every result subject)
    is narrowed to the batch results when declared again."""

    async def scenario() -> dict[str, str | None]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        older = await js.consumer_info(topology.RESULTS_STREAM, topology.SERVICE_RESULTS)
        older.config.filter_subject = f"{topology.RESULTS_SUBJECT_PREFIX}.>"
        await js.add_consumer(topology.RESULTS_STREAM, older.config)
        await topology.declare(js)
        filters = {
            name: (await js.consumer_info(stream, name)).config.filter_subject
            for stream, name in (
                (topology.RESULTS_STREAM, topology.SERVICE_RESULTS),
                (topology.RESULTS_STREAM, topology.SERVICE_SYNC_RESULTS),
                (topology.SYNC_STREAM, topology.DISPATCH_SYNC),
            )
        }
        await nc.close()
        return filters

    assert asyncio.run(scenario()) == {
        topology.SERVICE_RESULTS: "marketing.results.batch",
        topology.SERVICE_SYNC_RESULTS: "marketing.results.sync",
        topology.DISPATCH_SYNC: "marketing.sync.chunks",
    }


def test_the_fences_bucket_allows_direct_reads_also_when_it_existed_without(
    fresh_nats: NatsServer,
) -> None:
    """A bucket a release before the full sync created is given direct reads (the
    sync reads many fences at once) when declared again; the others keep theirs."""

    async def scenario() -> dict[str, bool]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await js.create_key_value(KeyValueConfig(bucket=topology.FENCES_BUCKET))
        await topology.declare(js)
        allowed = {
            bucket: bool((await js.stream_info(f"KV_{bucket}")).config.allow_direct)
            for bucket in (topology.FENCES_BUCKET, topology.LEASES_BUCKET)
        }
        await nc.close()
        return allowed

    assert asyncio.run(scenario()) == {topology.FENCES_BUCKET: True, topology.LEASES_BUCKET: False}


def test_declaring_again_keeps_subjects_a_newer_release_added(fresh_nats: NatsServer) -> None:
    """Upgrades go one process at a time, and each declares on every
    reconnect: a subject the stream has beyond this release's is kept."""

    async def scenario() -> list[str]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        newer = (await js.stream_info(topology.SYNC_STREAM)).config
        newer.subjects = [*(newer.subjects or []), "marketing.sync.later"]
        await js.update_stream(newer)  # as a newer release would declare it
        await topology.declare(js)
        subjects = (await js.stream_info(topology.SYNC_STREAM)).config.subjects or []
        await nc.close()
        return subjects

    assert sorted(asyncio.run(scenario())) == [
        topology.SYNC_CHUNKS_SUBJECT,
        topology.SYNC_CONSENT_SUBJECT,
        "marketing.sync.later",
    ]


def test_enrolment_fences_go_a_while_after_their_last_write_also_when_the_bucket_existed(
    fresh_nats: NatsServer,
) -> None:
    """A fence per enrolment would pile up for good (one per cart): its bucket keeps each
    key ENROLMENT_FENCE_MAX_AGE_S after its last write, also when a process found it made
    without; the person's fences are kept."""

    async def scenario() -> dict[str, float | None]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await js.create_key_value(KeyValueConfig(bucket=topology.ENROLMENT_FENCES_BUCKET))
        await topology.declare(js)
        await topology.declare(js)  # again, as on a reconnect
        ages = {
            bucket: (await js.stream_info(f"KV_{bucket}")).config.max_age
            for bucket in (topology.ENROLMENT_FENCES_BUCKET, topology.FENCES_BUCKET)
        }
        await nc.close()
        return ages

    ages = asyncio.run(scenario())
    assert ages[topology.ENROLMENT_FENCES_BUCKET] == topology.ENROLMENT_FENCE_MAX_AGE_S
    assert topology.ENROLMENT_FENCE_MAX_AGE_S >= topology.DEAD_LETTER_MAX_AGE_S
    assert not ages[topology.FENCES_BUCKET]


def test_enrolment_changes_get_their_subject_and_consumer_also_on_an_older_work_stream(
    fresh_nats: NatsServer,
) -> None:
    """A work stream a release before the enrolments subject made (events and contacts
    only) is given the subject when declared again, and the dispatcher its consumer; each
    kind the relay publishes goes to the subject of the consumer that delivers it."""

    async def scenario() -> tuple[list[str], dict[str, str | None]]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await js.add_stream(
            name=topology.WORK_STREAM,
            subjects=[topology.EVENTS_SUBJECT, topology.CONTACTS_SUBJECT],
            retention=RetentionPolicy.INTEREST,
        )
        await topology.declare(js)
        subjects = (await js.stream_info(topology.WORK_STREAM)).config.subjects or []
        filters = {
            name: (await js.consumer_info(topology.WORK_STREAM, name)).config.filter_subject
            for name in (topology.DISPATCH_CONTACTS, topology.DISPATCH_ENROLMENTS)
        }
        await nc.close()
        return subjects, filters

    subjects, filters = asyncio.run(scenario())
    assert sorted(subjects) == sorted(
        [topology.EVENTS_SUBJECT, topology.CONTACTS_SUBJECT, "marketing.work.enrolments"]
    )
    assert filters == {
        topology.DISPATCH_CONTACTS: topology.CONTACTS_SUBJECT,
        topology.DISPATCH_ENROLMENTS: "marketing.work.enrolments",
    }
    enrolments = {bus_pb2.KIND_ENROLMENT_CHANGED, bus_pb2.KIND_ENROLMENTS_BEGUN}
    for kind in enrolments:
        assert topology.work_subject(kind) == topology.ENROLMENTS_SUBJECT
    assert topology.work_subject(bus_pb2.KIND_EVENT_TRACKED) == topology.EVENTS_SUBJECT
    ordered = set(kinds.ALL) - enrolments - {bus_pb2.KIND_EVENT_TRACKED}
    assert {topology.work_subject(kind) for kind in ordered} == {topology.CONTACTS_SUBJECT}
