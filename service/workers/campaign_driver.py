"""The campaign driver: starts the sends that fall due, publishes each part's pages of
recipients to `marketing.campaigns.audience` (a bounded number in flight), asks for a
part's provider campaign on `marketing.campaigns.send` once every page is imported, and
decides A/B tests whose window is over (service/campaigns/sending.py and progress.py
say how; the results recorder below applies what the dispatcher reports).

One driver runs among the service replicas (a PostgreSQL advisory lock elects it, as for
the contact sync); what it writes is guarded (a page is written down before it is
published, under a Msg-Id JetStream deduplicates), so a driver killed anywhere, or a
second one, sends nothing twice and skips nothing."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.campaigns import progress, sending
from service.campaigns.audience import Cap
from service.preferences.links import PreferenceLinks
from service.storage.database import Database
from service.storage.models import (
    Campaign,
    CampaignPage,
    CampaignPart,
    CampaignPartState,
    CampaignState,
)
from service.workers.batch_recorder import BatchRecorder

log = logging.getLogger(__name__)
DRIVER_LOCK_KEY = 0x63616D64  # "camd": the advisory lock that elects the driver
IDLE_POLL_S = 1.0
RETRY_S = 1.0
ACK_TIMEOUT_S = 10.0
PAYLOAD_HEADROOM = 4096


class Step(enum.Enum):
    WORKED = "worked"
    WAITING = "waiting"


@dataclass(frozen=True)
class CampaignDriverSettings:
    cap: Cap
    sender: sending.Sender
    page_recipients: int = 2000
    # Pages published and not yet reported, per part: the dispatchers' import stage holds
    # CAMPAIGN_AUDIENCE_MAX_ACK_PENDING, the rest wait in the stream.
    pages_in_flight: int = 32
    idle_poll_s: float = IDLE_POLL_S
    # How long a page or a send may go without a result before it is asked for again.
    ask_again_s: float = 900.0


@dataclass(frozen=True)
class CampaignWork:
    """What the driver needs from the settings: its own, and how to make a recipient's
    preference link."""

    settings: CampaignDriverSettings
    url_for: Callable[[uuid.UUID], str]


def development_campaign_work() -> CampaignWork:
    """The defaults, with links signed by a key of this process (tests, tools)."""
    links = PreferenceLinks(secrets.token_urlsafe(32), "http://127.0.0.1:8081", 180 * 86_400)
    sender = sending.Sender("marketing@example.com", "Our shop", "marketing@example.com")
    return CampaignWork(CampaignDriverSettings(Cap(3, timedelta(days=7)), sender), links.url_for)


class CampaignDriver:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        work: CampaignWork,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._bus = bus
        self._settings = work.settings
        self._url_for = work.url_for
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self._db.engine.connect() as conn:
                    if await conn.scalar(text(f"SELECT pg_try_advisory_lock({DRIVER_LOCK_KEY})")):
                        log.info("campaign driver: elected")
                        await self._drive_holding_lock(conn)
                        continue
            except Exception as exc:
                log.warning("campaign driver interrupted: %s", exc)
            await self._pause(RETRY_S)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _drive_holding_lock(self, conn: AsyncConnection) -> None:
        try:
            await conn.commit()
            await self._ask_again()
            asked_at = time.monotonic()
            while not self._stopping.is_set():
                if time.monotonic() - asked_at >= self._settings.ask_again_s:
                    await self._ask_again()
                    asked_at = time.monotonic()
                if await self.step() is Step.WAITING:
                    await self._pause(self._settings.idle_poll_s)
        except BaseException:
            await conn.invalidate()  # the lock goes with the connection
            raise
        await conn.execute(text(f"SELECT pg_advisory_unlock({DRIVER_LOCK_KEY})"))

    async def step(self) -> Step:
        """Do the next thing a campaign needs, if any."""
        now = self._clock()
        async with self._db.transaction() as session:
            due = await sending.claim_due(session, now)
            if due is not None:
                await self._or_fail(session, due, "could not start", self._start(session, due))
                return Step.WORKED
            tested = await progress.claim_test_due(session, now)
            if tested is not None:
                decided = self._decide(session, tested)
                await self._or_fail(session, tested, "could not choose the winner", decided)
                return Step.WORKED
            filling = await self._filling_parts(session)
        for campaign_id, part_number in filling:
            if await self._advance(campaign_id, part_number) is Step.WORKED:
                return Step.WORKED
        return Step.WAITING

    async def _start(self, session: AsyncSession, campaign: Campaign) -> None:
        await sending.start(session, campaign, self._settings.cap, self._clock())
        log.info("campaign %s: send started (%s)", campaign.id, campaign.state.value)

    async def _decide(self, session: AsyncSession, campaign: Campaign) -> None:
        decision = await progress.decide(session, campaign, self._clock())
        log.info("campaign %s: A/B winner %d (%s)", campaign.id, decision.winner, decision.reason)

    async def _or_fail(
        self, session: AsyncSession, campaign: Campaign, what: str, work: Awaitable[None]
    ) -> None:
        """`work` in a savepoint; a campaign it cannot be done for (a stored document or a
        value PostgreSQL refuses) is FAILED with the reason, so that it does not stop every
        campaign behind it. A lost connection is not its fault: that goes up, and the step
        is tried again."""
        try:
            async with session.begin_nested():
                await work
        except (DBAPIError, ValueError, KeyError) as exc:
            if _connection_lost(exc):
                raise
            log.exception("campaign %s: %s", campaign.id, what)
            campaign.state = CampaignState.FAILED
            campaign.failure = f"{what}: {exc}"[: progress.MAX_ERROR]
            campaign.updated_at = self._clock()

    async def _filling_parts(self, session: AsyncSession) -> list[tuple[str, int]]:
        rows = await session.execute(
            select(CampaignPart.campaign_id, CampaignPart.part)
            .join(Campaign, Campaign.id == CampaignPart.campaign_id)
            .where(
                Campaign.state == CampaignState.SENDING,
                CampaignPart.state == CampaignPartState.FILLING,
            )
            .order_by(CampaignPart.campaign_id, CampaignPart.part)
        )
        return [(row[0], row[1]) for row in rows]

    async def _advance(self, campaign_id: str, part_number: int) -> Step:
        """One move of a filling part: a page written down and published, or its send."""
        if self._bus.nc is None or self._bus.js is None:
            return Step.WAITING
        budget = self._bus.nc.max_payload - PAYLOAD_HEADROOM
        now = self._clock()
        async with self._db.transaction() as session:
            campaign = await session.get(Campaign, campaign_id)
            part = await session.get(CampaignPart, (campaign_id, part_number), with_for_update=True)
            if campaign is None or part is None or part.state != CampaignPartState.FILLING:
                return Step.WAITING
            pending = await sending.unpublished_page(session, part)
            if pending is not None:
                page = await sending.rebuild_page(session, campaign, part, pending, self._url_for)
            elif part.all_paged:
                if part.pages_done < part.pages:
                    return Step.WAITING  # for the imports in flight
                request = sending.send_request(campaign, part, self._settings.sender, now)
                part.state = CampaignPartState.SENDING
                await self._publish_send(request)
                return Step.WORKED
            elif part.pages - part.pages_done >= self._pages_in_flight(part):
                return Step.WAITING
            else:
                page = await sending.build_page(
                    session,
                    campaign,
                    part,
                    sequence=part.pages + 1,
                    after=part.published_through,
                    through=None,
                    limit=self._settings.page_recipients,
                    budget=budget,
                    url_for=self._url_for,
                )
                if page.through is None:  # no recipient left after the last page
                    part.all_paged = True
                    return Step.WORKED
                await sending.write_page_down(session, part, page, part.published_through)
        await self._bus.js.publish(
            topology.CAMPAIGN_AUDIENCE_SUBJECT,
            page.payload,
            timeout=ACK_TIMEOUT_S,
            headers={
                MSG_ID_HEADER: sending.page_message_id(
                    campaign_id, part_number, page.sequence, page.attempt
                )
            },
        )
        async with self._db.transaction() as session:
            await sending.mark_published(session, campaign_id, part_number, page.sequence, now)
        return Step.WORKED

    def _pages_in_flight(self, part: CampaignPart) -> int:
        """One page until the part's list is known: the dispatcher importing it finds or
        creates the list, and the later pages name it (two replicas each creating a list
        of one name would split the part between them)."""
        return self._settings.pages_in_flight if part.list_id else 1

    async def _publish_send(self, request: bus_pb2.CampaignSendRequest) -> None:
        """Published inside the part's transaction: should the commit fail, the part is still
        FILLING and asks again under the same Msg-Id (JetStream drops the copy)."""
        assert self._bus.js is not None
        await self._bus.js.publish(
            topology.CAMPAIGN_SEND_SUBJECT,
            request.SerializeToString(),
            timeout=ACK_TIMEOUT_S,
            headers={
                MSG_ID_HEADER: sending.send_message_id(
                    request.campaign_id, request.part, request.attempt
                )
            },
        )

    async def _ask_again(self) -> None:
        """On election and every `ask_again_s`: the sends without a result asked for again,
        and the pages published that long ago without a result published again (a message
        lost with the bus's stream, or its result, would leave the campaign SENDING for
        ever). A copy within JetStream's duplicate window is dropped; a later one is
        imported again (an upsert into the same list) or finds its campaign by name, and
        its result is counted once."""
        await self._ask_again_for_sends()
        await self._publish_stale_pages()

    async def _publish_stale_pages(self) -> None:
        js = self._bus.js
        if js is None:
            return
        now = self._clock()
        before = now - timedelta(seconds=self._settings.ask_again_s)
        async with self._db.transaction() as session:
            stale = await sending.stale_pages(session, before)
            built = [
                ((page.campaign_id, page.part), await self._rebuilt(session, page))
                for page in stale
            ]
            for page in stale:
                page.published_at = now
        for (campaign_id, part_number), page_built in built:
            if page_built is None:
                continue
            msg_id = sending.page_message_id(
                campaign_id, part_number, page_built.sequence, page_built.attempt
            )
            await js.publish(
                topology.CAMPAIGN_AUDIENCE_SUBJECT,
                page_built.payload,
                timeout=ACK_TIMEOUT_S,
                headers={MSG_ID_HEADER: msg_id},
            )

    async def _rebuilt(self, session: AsyncSession, page: CampaignPage) -> sending.BuiltPage | None:
        campaign = await session.get(Campaign, page.campaign_id)
        part = await session.get(CampaignPart, (page.campaign_id, page.part))
        if campaign is None or part is None:
            return None
        return await sending.rebuild_page(session, campaign, part, page, self._url_for)

    async def _ask_again_for_sends(self) -> None:
        if self._bus.js is None:
            return
        now = self._clock()
        async with self._db.transaction() as session:
            rows = await session.execute(
                select(Campaign, CampaignPart)
                .join(CampaignPart, CampaignPart.campaign_id == Campaign.id)
                .where(
                    Campaign.state == CampaignState.SENDING,
                    CampaignPart.state == CampaignPartState.SENDING,
                )
            )
            requests = [
                sending.send_request(campaign, part, self._settings.sender, now)
                for campaign, part in rows.all()
            ]
        for request in requests:
            await self._publish_send(request)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


def _connection_lost(exc: Exception) -> bool:
    """A database error that says nothing of the campaign (the server or connection went)."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def campaign_result_recorder(
    db: Database, clock: Clock, on_result: Callable[[], None]
) -> BatchRecorder[bus_pb2.CampaignStepResult]:
    """Applies the dispatcher's CampaignStepResults (`marketing.results.campaigns`); each
    batch may free the driver to publish (`on_result`)."""

    async def record(session: AsyncSession, result: bus_pb2.CampaignStepResult) -> None:
        await progress.record(session, result, clock())

    return BatchRecorder(
        db, "campaign result recorder", bus_pb2.CampaignStepResult, record, after=on_result
    )
