"""Delivers a campaign's parts (service/campaigns/sending.py decides them): pages of
recipients into each part's provider list, then the part's provider campaign.

Pages (`CampaignAudiencePage` on `marketing.campaigns.audience`) are imported as a full
sync's chunks are (sync.py: a fetched batch packed into as few provider jobs as the
import's limits allow, each job polled until done, refusals matched back by email, the
batch kept alive meanwhile), with two differences: each person joins the page's list
(found by its name, or created), and carries their preference link as a profile property
(`PREFERENCES_URL_PROPERTY`, what `{{ unsubscribe_url }}` shows). A person whose profile
or consent the ordered path changed at the provider after their page was built (its
`outbox_sequence`, as a sync chunk's) is refused, not imported: an erasure or a withdrawal
since then is not undone by a list import. A page's `CampaignStepResult` is published
before it is acked, under a Msg-Id of its own, so a page imported twice (a replica died
before the ack) is reported once.

A send (`CampaignSendRequest` on `marketing.campaigns.send`) finds the list again and asks
the provider to create and send the campaign (`Provider.send_campaign`, which finds a
campaign of the part's name instead of making a second). A retryable failure waits for
the next delivery (the backoff of every worker); a permanent one, a channel the provider's
API cannot send, or the last attempt, is reported as the part's error."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC

from marketing.bus.v1 import bus_pb2
from marketing_runtime import campaign_ids, topology
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, holding
from dispatcher.delivery.outcomes import REPORT_TIMEOUT_S
from dispatcher.delivery.packing import estimated_size, pack
from dispatcher.delivery.retry import exhausted, retry_delay
from dispatcher.delivery.sync import SyncWorker
from dispatcher.delivery.sync_stage import (
    MAX_REASON,
    UNREADABLE_CHUNK,
    Chunk,
    Person,
    StageSettings,
    chunks_of,
)
from dispatcher.ordering.fences import CONSENT, PROFILE
from dispatcher.providers.base import (
    FIND_LIST,
    PREFERENCES_URL_PROPERTY,
    SEND_CAMPAIGN,
    START_IMPORT,
    BulkCall,
    CampaignSend,
    ImportContact,
    Provider,
    TemplatePart,
    TemplateVariable,
)
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)
# Recipients the service puts in one page (MARKETING_CAMPAIGN_PAGE_RECIPIENTS' default).
EXPECTED_PAGE_RECIPIENTS = 2000


class CampaignAudienceWorker(SyncWorker):
    """Imports pages of campaign recipients into their parts' lists."""

    def chunks_per_batch(self, most: int) -> int:
        per_job = -(-self._limits.max_items // EXPECTED_PAGE_RECIPIENTS)
        return max(1, min(per_job, most))

    def _read(self, msg: Msg) -> Chunk | None:
        page = bus_pb2.CampaignAudiencePage()
        try:
            page.ParseFromString(msg.data)
        except Exception:
            log.error("an unreadable campaign page (%d bytes) dropped", len(msg.data))
            return None
        key = campaign_ids.part_key(page.campaign_id, page.part)
        said = _PageOf(page.list_name, page.list_id, page.attempt)
        chunk = _PageChunk(msg, key, page.sequence, page.outbox_sequence, page=said)
        for recipient in page.recipients:
            chunk.people.append(_recipient(chunk, recipient))
        msg.data = b""
        return chunk

    async def _work(self, chunks: list[Chunk], held: Holding) -> None:
        """Per list: its id, then its people's jobs started and polled."""
        jobs: list[tuple[str, list[Person]]] = []
        starter = self.runner(held, lost=True)
        by_list: dict[str, list[Person]] = {}
        for chunk in chunks:
            name = _page_of(chunk).list_name
            by_list.setdefault(name, []).extend(p for p in chunk.people if p.pending)
        for name, listed in by_list.items():
            people = await self._unchanged_since_the_page(listed)
            list_id = await self._list_id(name, chunks, held)
            sizes = [estimated_size(_contact(p).profile) for p in people]
            for job in pack(people, sizes, self._limits):
                await starter.run(BulkCall(START_IMPORT, job, self._starting_into(list_id, jobs)))
        async with asyncio.TaskGroup() as polls:
            for job_id, members in jobs:
                polls.create_task(self._await_job(job_id, members, held))

    async def _unchanged_since_the_page(self, people: list[Person]) -> list[Person]:
        """The people whose profile and consent the ordered path has not changed at the
        provider since their page was built (sync.py's fences): an erasure or a
        withdrawal since then must not be undone by an import into a list, so the others
        are refused, not sent."""
        unchanged = await self.not_newer_at_provider(PROFILE, people)
        unchanged = await self.not_newer_at_provider(CONSENT, unchanged)
        kept = {id(p) for p in unchanged}
        for p in people:
            if id(p) not in kept:
                p.failure = "changed since the decision (newer at the provider): not sent"
        return unchanged

    async def _list_id(self, name: str, chunks: list[Chunk], held: Holding) -> str:
        """The list's id as a page named it, else found or created (a part's first page
        alone: the service publishes no other until its result names the list); every
        chunk of the list is told it, for its result."""
        pages = [_page_of(c) for c in chunks]
        listed = [page for page in pages if page.list_name == name]
        known = next((page.list_id for page in listed if page.list_id), "")
        list_id = known or await self._gate.call(
            FIND_LIST,
            1,
            lambda: self._provider.find_list(name),
            guard=held.ensure_connected,
            bulk=True,
        )
        for page in listed:
            page.list_id = list_id
        return list_id

    def _starting_into(
        self, list_id: str, jobs: list[tuple[str, list[Person]]]
    ) -> Callable[[Sequence[Person]], Awaitable[None]]:
        async def start(members: Sequence[Person]) -> None:
            contacts = [_contact(p) for p in members]
            job_id = await self._provider.start_import(contacts, list_id)
            jobs.append((job_id, list(members)))
            for chunk in chunks_of(members):
                chunk.job_ids.append(job_id)

        return start

    async def _hand_on(self, chunks: list[Chunk]) -> None:
        await self.publish_results(chunks)

    async def publish_results(self, chunks: Sequence[Chunk]) -> None:
        finished = to_timestamp(self._settings.clock())
        messages = []
        for chunk in chunks:
            campaign_id, part = campaign_ids.parse_part_key(chunk.sync_id)
            page = _page_of(chunk)
            result = bus_pb2.CampaignStepResult(
                campaign_id=campaign_id,
                part=part,
                sequence=chunk.sequence,
                imported=sum(1 for p in chunk.people if p.pending),
                failures=[
                    bus_pb2.ContactSyncFailure(email=p.email, reason=p.failure)
                    for p in chunk.people
                    if p.failure
                ],
                list_id=page.list_id,
                error=chunk.error,
                # A job or call that failed as a whole may pass; a page never read will not.
                retryable=bool(chunk.error) and chunk.error != UNREADABLE_CHUNK,
                attempt=page.attempt,
                finish_time=finished,
            )
            step_id = campaign_ids.page_id(chunk.sync_id, chunk.sequence, page.attempt)
            msg_id = campaign_ids.result_id(step_id)
            messages.append((msg_id, result.SerializeToString()))
        await self.publish(topology.CAMPAIGN_RESULTS_SUBJECT, messages)


@dataclass
class _PageOf:
    """What a chunk's page said of its list (its id filled in once found) and attempt."""

    list_name: str
    list_id: str  # "" until found or created
    attempt: int


@dataclass(eq=False)
class _PageChunk(Chunk):
    """A page's chunk, with what the page said: it goes wherever the chunk goes (handed
    back, given up, reported), and nothing outlives it."""

    page: _PageOf = field(kw_only=True)


def _page_of(chunk: Chunk) -> _PageOf:
    """What the chunk's page said; nothing for a chunk named only by its message's id
    (an unreadable page), whose result names no list."""
    return chunk.page if isinstance(chunk, _PageChunk) else _PageOf("", "", 0)


def _recipient(chunk: Chunk, recipient: bus_pb2.CampaignRecipient) -> Person:
    email = recipient.profile.email
    try:
        profile = translate.contact_profile(recipient.profile)
    except ValueError as exc:  # custom properties that are not JSON
        return Person(chunk, email, failure=f"unreadable contact: {exc}"[:MAX_REASON])
    properties = {**profile.properties, PREFERENCES_URL_PROPERTY: recipient.preferences_url}
    return Person(chunk, email, ImportContact(dataclasses.replace(profile, properties=properties)))


def _contact(p: Person) -> ImportContact:
    assert p.contact is not None
    return p.contact


class CampaignSendWorker:
    """Creates and sends each part's provider campaign."""

    def __init__(self, provider: Provider, bus: Bus, gate: ProviderGate, settings: StageSettings):
        self._provider = provider
        self._bus = bus
        self._gate = gate
        self._settings = settings

    def pause_left(self) -> float:
        return self._gate.pause_left(SEND_CAMPAIGN)

    async def handle(self, messages: list[Msg]) -> None:
        for msg in messages:
            await self._handle_one(msg)

    async def _handle_one(self, msg: Msg) -> None:
        request = bus_pb2.CampaignSendRequest()
        try:
            request.ParseFromString(msg.data)
        except Exception:
            log.error("an unreadable campaign send request (%d bytes) dropped", len(msg.data))
            await msg.term()
            return
        # Kept alive the whole send (several paced calls may outlast the ack wait): another
        # replica given the same request meanwhile would make and send a second campaign.
        ended = self._settings.connection_ended()
        async with holding(
            [msg], every_s=self._settings.keepalive_s, sleep=self._settings.sleep, ended=ended
        ) as held:
            try:
                await self._send_held(msg, request, held)
            except* ConnectionEnded:
                await held.hand_back()
                log.warning("NATS connection ended mid-send: campaign %s part %d handed back",
                            request.campaign_id, request.part)  # fmt: skip

    async def _send_held(
        self, msg: Msg, request: bus_pb2.CampaignSendRequest, held: Holding
    ) -> None:
        try:
            provider_id, list_id = await self._send(request, held)
        except RetryableProviderError as exc:
            deliveries = int(msg.metadata.num_delivered or 1)
            if not exhausted(deliveries, max_attempts=self._settings.max_attempts):
                delay = retry_delay(
                    deliveries, retry_after=exc.retry_after, base_s=self._settings.backoff_base_s
                )
                log.warning("campaign %s part %d: %s; again in %.0f s", request.campaign_id,
                            request.part, exc, delay)  # fmt: skip
                held.settled([msg])
                await msg.nak(delay=delay)
                return
            error = f"gave up after {deliveries} attempts: {exc}"
            await self._report(msg, request, error=error, retryable=True)
            return
        except (PermanentProviderError, ValueError) as exc:
            await self._report(msg, request, error=str(exc))
            return
        await self._report(msg, request, provider_campaign_id=provider_id, list_id=list_id)

    async def _send(self, request: bus_pb2.CampaignSendRequest, held: Holding) -> tuple[str, str]:
        if request.channel not in self._provider.limits.campaign_channels:
            raise PermanentProviderError(
                f"the provider's API sends no {request.channel} campaigns", code="unsupported"
            )
        list_id = request.list_id or await self._gate.call(
            FIND_LIST,
            1,
            lambda: self._provider.find_list(request.list_name),
            guard=held.ensure_connected,
            bulk=True,
        )
        send = CampaignSend(
            name=request.name,
            list_id=list_id,
            channel=request.channel,
            subject=template_of(request.subject),
            body=template_of(request.body),
            send_at=request.send_time.ToDatetime(tzinfo=UTC)
            if request.HasField("send_time")
            else None,
            from_email=request.from_email,
            from_label=request.from_label,
            reply_to=request.reply_to or request.from_email,
        )
        provider_id = await self._gate.call(
            SEND_CAMPAIGN,
            1,
            lambda: self._provider.send_campaign(send),
            guard=held.ensure_connected,
            bulk=True,
        )
        return provider_id, list_id

    async def _report(
        self,
        msg: Msg,
        request: bus_pb2.CampaignSendRequest,
        *,
        provider_campaign_id: str = "",
        list_id: str = "",
        error: str = "",
        retryable: bool = False,
    ) -> None:
        """The part's result, then the ack (a result lost with a crash is published again
        after the redelivery: the send finds the campaign by name)."""
        if error:
            log.error("campaign %s part %d: %s", request.campaign_id, request.part, error)
        result = bus_pb2.CampaignStepResult(
            campaign_id=request.campaign_id,
            part=request.part,
            sequence=0,
            list_id=list_id,
            provider_campaign_id=provider_campaign_id,
            error=error[:MAX_REASON],
            retryable=retryable,
            attempt=request.attempt,
            finish_time=to_timestamp(self._settings.clock()),
        )
        js = self._bus.js
        if js is None:
            raise ConnectionError("NATS is not connected: the send's result waits")
        key = campaign_ids.part_key(request.campaign_id, request.part)
        msg_id = campaign_ids.result_id(campaign_ids.send_id(key, request.attempt))
        ack = await js.publish_async(
            topology.CAMPAIGN_RESULTS_SUBJECT,
            result.SerializeToString(),
            headers={MSG_ID_HEADER: msg_id},
        )
        await asyncio.wait_for(ack, REPORT_TIMEOUT_S)
        await msg.ack()


def template_of(parts: Sequence[bus_pb2.TemplatePart]) -> tuple[TemplatePart, ...]:
    """The bus's template as the provider interface takes it."""
    read: list[TemplatePart] = []
    for part in parts:
        if part.WhichOneof("part") == "variable":
            fallback = part.variable.fallback if part.variable.HasField("fallback") else None
            read.append(TemplateVariable(tuple(part.variable.path), fallback))
        else:
            read.append(part.text)
    return tuple(read)
