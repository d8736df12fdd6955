"""Many fences read at once (what a full sync batch asks): the direct reads of
many keys per request give what reading key by key gives, across requests,
for people with and without a fence; a bucket that does not allow direct
reads is read key by key. A real nats-server."""

from __future__ import annotations

import asyncio
import logging
import uuid

import nats
import pytest
from marketing_runtime import topology
from nats.js.api import KeyValueConfig

from dispatcher.ordering import direct_reads
from dispatcher.ordering.fences import CONSENT, PROFILE, Fences, person_key
from tests.processes import NatsServer

PEOPLE = direct_reads.SUBJECTS_PER_REQUEST * 2 + 7  # three requests


def test_fences_read_in_bulk_equal_fences_read_one_by_one(
    own_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    tag = uuid.uuid4().hex[:8]
    keys = [person_key(f"p{i}-{tag}@example.com") for i in range(PEOPLE)]
    fenced = {key: 10 + i for i, key in enumerate(keys) if i % 3 == 0}

    async def main() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        nc = await nats.connect(own_nats.url)
        try:
            js = nc.jetstream()
            await topology.declare(js)
            kv = await js.key_value(topology.FENCES_BUCKET)
            one_by_one = Fences(kv)
            bulk = Fences(kv, nc=nc, bucket=topology.FENCES_BUCKET)
            await asyncio.gather(*(one_by_one.advance(CONSENT, k, s) for k, s in fenced.items()))
            await one_by_one.advance(PROFILE, keys[1], 99)  # another aspect: not a consent fence
            return (
                await bulk.applied_to(CONSENT, [*keys, keys[0]]),
                await one_by_one.applied_to(CONSENT, keys),
                await bulk.applied_to(PROFILE, keys[:3]),
            )
        finally:
            await nc.close()

    with caplog.at_level(logging.WARNING, logger="dispatcher.ordering.fences"):
        bulk, one_by_one, profile = asyncio.run(main())
    assert "key by key" not in caplog.text, "the direct reads were not answered"
    assert bulk == one_by_one == {key: fenced.get(key, 0) for key in keys}
    assert profile == {keys[0]: 0, keys[1]: 99, keys[2]: 0}


def test_a_bucket_without_direct_reads_is_read_key_by_key(
    own_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"test_fences_{uuid.uuid4().hex[:8]}"

    async def main() -> dict[str, int]:
        nc = await nats.connect(own_nats.url)
        try:
            kv = await nc.jetstream().create_key_value(KeyValueConfig(bucket=name, direct=False))
            fences = Fences(kv, nc=nc, bucket=name)
            await fences.advance(CONSENT, "someone", 5)
            return await fences.applied_to(CONSENT, ["someone", "nobody"])
        finally:
            await nc.close()

    with caplog.at_level(logging.WARNING, logger="dispatcher.ordering.fences"):
        assert asyncio.run(main()) == {"someone": 5, "nobody": 0}
    assert "fences read key by key" in caplog.text


def test_enrolment_fences_of_many_aspects_are_read_in_bulk_and_created_when_absent(
    own_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An ordered batch reads every change's fence at once, whatever its aspect
    (each enrolment is one); a fence the read found absent is created in one
    request, and one written meanwhile (another replica, after a failover) is
    still moved only up."""
    tag = uuid.uuid4().hex[:8]
    pairs = [(f"flow.e{i}-{tag}", person_key(f"p{i}-{tag}@example.com")) for i in range(1_200)]

    async def main() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        nc = await nats.connect(own_nats.url)
        try:
            js = nc.jetstream()
            await topology.declare(js)
            kv = await js.key_value(topology.ENROLMENT_FENCES_BUCKET)
            fences = Fences(kv, nc=nc, bucket=topology.ENROLMENT_FENCES_BUCKET)
            await fences.advance(*pairs[0], 7)
            before = await fences.applied_many(pairs)
            await fences.advance(*pairs[1], 20)  # written after the read
            await fences.advance(*pairs[0], 9, absent=before[pairs[0]] == 0)
            await fences.advance(*pairs[1], 12, absent=before[pairs[1]] == 0)  # not lowered
            await fences.advance(*pairs[2], 12, absent=before[pairs[2]] == 0)
            return before, await fences.applied_many(pairs[:4])
        finally:
            await nc.close()

    with caplog.at_level(logging.WARNING, logger="dispatcher.ordering.fences"):
        before, after = asyncio.run(main())
    assert "key by key" not in caplog.text, "the enrolment fences allow no direct reads"
    assert before == {pair: 7 if pair == pairs[0] else 0 for pair in pairs}
    assert after == {pairs[0]: 9, pairs[1]: 20, pairs[2]: 12, pairs[3]: 0}
