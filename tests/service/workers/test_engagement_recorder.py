"""The engagement recorder against a real PostgreSQL, with stand-in JetStream
messages (nats-py's own Msg on a client that notes what it is told): a batch
PostgreSQL refuses for one message's values (a NUL in a text) is recorded one
message at a time, the good ones recorded and acked, the bad one terminated and
counted, so that it never holds the others back; PostgreSQL out of reach hands
every message back for later."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from marketing.bus.v1 import bus_pb2
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.engagement.rules import Reported, record
from service.errors import UnavailableError
from service.storage.database import Database
from service.storage.models import Engagement
from service.workers.engagement_recorder import EngagementRecorder
from tests.builders import ts

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
_PUB = re.compile(rb"PUB (\S+) \d+\r\n(.*?)\r\n", re.S)


class FakeClient:
    """What Msg.ack/nak/term and marketing_runtime.acks.ack_all call on a
    connection; each reply subject's answers, in order."""

    def __init__(self) -> None:
        self.answers: dict[str, list[bytes]] = {}

    async def publish(self, subject: str, payload: bytes = b"") -> None:
        self.answers.setdefault(subject, []).append(payload)

    async def _send_command(self, frames: bytes) -> None:
        for subject, payload in _PUB.findall(frames):
            await self.publish(subject.decode(), payload)

    async def _flush_pending(self) -> None:
        pass

    def outcome(self, msg: Msg) -> str:
        """How the message was settled: ack, nak, term (or "" when it was not)."""
        (answer,) = self.answers.get(msg.reply, [b"?"])
        if answer in (b"", b"+ACK"):
            return "ack"
        return {b"-NAK": "nak", b"+TERM": "term"}.get(answer.split(b" ")[0], answer.decode())


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def db(database_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    loop.run_until_complete(database.close())


def _engagement(**fields: str) -> bus_pb2.Engagement:
    return bus_pb2.Engagement(
        provider="activecampaign",
        external_id=uuid.uuid4().hex,
        type=bus_pb2.ENGAGEMENT_TYPE_OPENED,
        email=f"{uuid.uuid4().hex[:12]}@example.com",
        occur_time=ts(NOW),
        **fields,
    )


def _message(client: FakeClient, *engagements: bus_pb2.Engagement) -> Msg:
    received = bus_pb2.EngagementReceived(
        id=f"activecampaign:{uuid.uuid4().hex}", engagements=engagements, receive_time=ts(NOW)
    )
    reply = f"$JS.ACK.MARKETING_WEBHOOKS.service-engagement.1.{uuid.uuid4().int % 10**6}.1.0.0"
    return _msg(client, reply, received.SerializeToString())


def _msg(client: FakeClient, reply: str, data: bytes) -> Msg:
    return Msg(cast(Any, client), subject="marketing.webhooks.engagement", reply=reply, data=data)


def _recorded(loop: asyncio.AbstractEventLoop, db: Database, *ids: str) -> set[str]:
    async def read() -> set[str]:
        async with db.transaction() as session:
            found = await session.scalars(
                select(Engagement.external_id).where(Engagement.external_id.in_(ids))
            )
            return set(found)

    return loop.run_until_complete(read())


def _rejected() -> float:
    return REGISTRY.get_sample_value("marketing_engagement_rejected_total") or 0.0


def test_a_message_postgresql_refuses_is_terminated_and_the_others_recorded(
    loop: asyncio.AbstractEventLoop, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient()
    good = [_engagement(), _engagement(), _engagement(url="https://shop.example/p")]
    bad = _engagement(detail="mailbox\x00unavailable")
    messages = [
        _message(client, good[0]),
        _message(client, good[1], bad),  # the good one beside it goes with it
        _message(client, good[2]),
    ]
    before = _rejected()

    with caplog.at_level(logging.WARNING):
        loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["ack", "term", "ack"]
    assert _recorded(loop, db, *(e.external_id for e in [*good, bad])) == {
        good[0].external_id,
        good[2].external_id,
    }
    assert _rejected() == before + 1
    bad_id = bus_pb2.EngagementReceived.FromString(messages[1].data).id
    assert any(bad_id in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)


def test_a_batch_of_only_good_messages_is_recorded_and_acked(
    loop: asyncio.AbstractEventLoop, db: Database
) -> None:
    client = FakeClient()
    engagements = [_engagement(), _engagement()]
    messages = [_message(client, e) for e in engagements]
    before = _rejected()

    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["ack", "ack"]
    assert _recorded(loop, db, *(e.external_id for e in engagements)) == {
        e.external_id for e in engagements
    }
    assert _rejected() == before


def test_a_message_that_is_not_an_engagement_is_acked_with_the_rest(
    loop: asyncio.AbstractEventLoop, db: Database
) -> None:
    client = FakeClient()
    unreadable = _msg(client, "$JS.ACK.MARKETING_WEBHOOKS.service-engagement.1.9.1.0.0", b"\xff")
    good = _engagement()
    bad = _engagement(campaign_id="c\x00")

    messages = [unreadable, _message(client, good), _message(client, bad)]
    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["ack", "ack", "term"]
    assert _recorded(loop, db, good.external_id, bad.external_id) == {good.external_id}


def test_postgresql_out_of_reach_hands_every_message_back(
    loop: asyncio.AbstractEventLoop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = FakeClient()
    messages = [_message(client, _engagement()), _message(client, _engagement())]

    async def unavailable(*args: object) -> int:
        raise UnavailableError(dependency="postgresql", detail="connection refused")

    monkeypatch.setattr("service.workers.engagement_recorder.record", unavailable)
    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["nak", "nak"]


def test_out_of_reach_while_going_one_at_a_time_hands_the_rest_back(
    loop: asyncio.AbstractEventLoop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = FakeClient()
    bad = _engagement(detail="\x00")
    messages = [_message(client, bad), _message(client, _engagement())]
    calls = 0

    async def failing_later(
        session: AsyncSession, reported: Sequence[Reported], now: datetime
    ) -> int:
        nonlocal calls
        calls += 1
        if calls > 2:  # the batch, then the first message alone: then PostgreSQL goes away
            raise UnavailableError(dependency="postgresql", detail="connection refused")
        return await record(session, reported, now)

    monkeypatch.setattr("service.workers.engagement_recorder.record", failing_later)
    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["term", "nak"]


def test_an_error_that_is_not_about_the_values_is_not_terminated(
    loop: asyncio.AbstractEventLoop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of ours (a bug) would fail every message alike: each is handed
    back for later, never thrown away."""
    client = FakeClient()
    messages = [_message(client, _engagement()), _message(client, _engagement())]
    before = _rejected()

    async def broken(*args: object) -> int:
        raise TypeError("a bug")

    monkeypatch.setattr("service.workers.engagement_recorder.record", broken)
    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle(messages))

    assert [client.outcome(m) for m in messages] == ["nak", "nak"]
    assert _rejected() == before


def test_nothing_is_recorded_twice(loop: asyncio.AbstractEventLoop, db: Database) -> None:
    client = FakeClient()
    engagement = _engagement()
    first, again = _message(client, engagement), _message(client, engagement)

    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle([first]))
    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle([again]))

    async def count() -> int:
        async with db.transaction() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Engagement)
                    .where(Engagement.external_id == engagement.external_id)
                )
                or 0
            )

    assert loop.run_until_complete(count()) == 1
    assert [client.outcome(first), client.outcome(again)] == ["ack", "ack"]


def test_a_batch_of_one_refused_message_is_terminated(
    loop: asyncio.AbstractEventLoop, db: Database
) -> None:
    client = FakeClient()
    message = _message(client, _engagement(url="https://shop.example/\x00"))
    before = _rejected()

    loop.run_until_complete(EngagementRecorder(db, lambda: NOW).handle([message]))

    assert client.outcome(message) == "term"
    assert _rejected() == before + 1
