"""What the dispatcher reports of a campaign's pages and sends (CampaignStepResult), and
where that leaves the campaign: a part is sent once the provider took its campaign; the
campaign is SENT once every part is (TESTING first, with an A/B test, until the winner
goes to the remainder), FAILED when a part failed. The A/B winner is chosen from the
engagement the providers' webhooks reported for each variant's provider campaign."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns import ab
from service.campaigns.sending import parts_of, start_remainder
from service.campaigns.spec import Metric, ab_test_of
from service.reports import figures
from service.storage.models import (
    Campaign,
    CampaignPage,
    CampaignPart,
    CampaignPartState,
    CampaignState,
)

log = logging.getLogger(__name__)
MAX_ERROR = 500
# Tries of a page or a send that fails in a way that may pass (a provider down for a while),
# each after the driver's ask_again_s: an hour's outage loses nothing, a permanent refusal
# ends the part then.
MAX_TRIES = 4
_DONE = frozenset({CampaignPartState.SENT, CampaignPartState.FAILED})


async def record(session: AsyncSession, result: bus_pb2.CampaignStepResult, now: datetime) -> bool:
    """Apply one result (a repeat changes nothing); whether it was new."""
    campaign = await session.get(Campaign, result.campaign_id, with_for_update=True)
    if campaign is None:
        return False  # deleted since
    part = await session.get(CampaignPart, (result.campaign_id, result.part), with_for_update=True)
    if part is None:
        return False
    new = (
        await _record_page(session, part, result, now)
        if result.sequence
        else await _record_send(session, part, result, now)
    )
    if new:
        await settle(session, campaign, now)
    return new


async def _record_page(
    session: AsyncSession, part: CampaignPart, result: bus_pb2.CampaignStepResult, now: datetime
) -> bool:
    page = await session.get(
        CampaignPage, (part.campaign_id, part.part, result.sequence), with_for_update=True
    )
    if page is None or page.done_at is not None:
        return False
    if result.error and result.attempt != page.failures:
        return False  # an earlier attempt's failure, already counted
    if result.error and result.retryable and page.failures + 1 < MAX_TRIES:
        page.failures += 1
        page.published_at = now  # published again, as a new attempt, after ask_again_s
        part.error = f"page {result.sequence}, try {page.failures}: {result.error}"[:MAX_ERROR]
        log.warning("campaign %s part %d: %s", part.campaign_id, part.part, part.error)
        return True
    page.done_at = now
    part.pages_done += 1
    part.imported += result.imported
    part.refused += len(result.failures)
    if result.list_id:
        part.list_id = result.list_id
    await _note_refusals(session, part, result.failures)
    if result.error:
        part.state = CampaignPartState.FAILED
        part.error = f"page {result.sequence}: {result.error}"[:MAX_ERROR]
        await note_unsent(session, part.campaign_id, part.part, part.error)
    return True


async def _note_refusals(
    session: AsyncSession, part: CampaignPart, failures: Sequence[bus_pb2.ContactSyncFailure]
) -> None:
    """Each person the provider's import refused: why, on their decision (they got nothing)."""
    if not failures:
        return
    await session.execute(
        text(
            "UPDATE marketing_campaign_recipient r SET failure = f.reason "
            "FROM marketing_contact c, unnest(CAST(:emails AS text[]), CAST(:reasons AS text[])) "
            "AS f(email, reason) "
            "WHERE c.id = r.contact_id AND lower(c.email) = lower(f.email) "
            "AND r.campaign_id = :campaign AND r.part = :part"
        ),
        {
            "emails": [f.email for f in failures],
            "reasons": [f.reason[:MAX_ERROR] for f in failures],
            "campaign": part.campaign_id,
            "part": part.part,
        },
    )


async def note_unsent(
    session: AsyncSession, campaign_id: str, part: int | None, reason: str
) -> None:
    """Why the included of a part (None: those given no part yet, the A/B remainder) got
    nothing: on their decisions, which the frequency cap then does not count."""
    await session.execute(
        text(
            "UPDATE marketing_campaign_recipient SET failure = :reason "
            "WHERE campaign_id = :campaign AND decision = 'included' AND failure IS NULL "
            "AND part IS NOT DISTINCT FROM CAST(:part AS smallint)"
        ),
        {"reason": reason[:MAX_ERROR], "campaign": campaign_id, "part": part},
    )


async def _record_send(
    session: AsyncSession, part: CampaignPart, result: bus_pb2.CampaignStepResult, now: datetime
) -> bool:
    if part.state in _DONE or (result.error and result.attempt != part.send_failures):
        return False
    if result.error and result.retryable and part.send_failures + 1 < MAX_TRIES:
        part.send_failures += 1  # asked for again, as a new attempt, after ask_again_s
        part.error = f"send, try {part.send_failures}: {result.error}"[:MAX_ERROR]
        log.warning("campaign %s part %d: %s", part.campaign_id, part.part, part.error)
        return True
    if result.error:
        part.state = CampaignPartState.FAILED
        part.error = f"send: {result.error}"[:MAX_ERROR]
        await note_unsent(session, part.campaign_id, part.part, part.error)
    else:
        part.state = CampaignPartState.SENT
        part.provider_campaign_id = result.provider_campaign_id
        part.sent_at = now
        part.error = None
    log.info(
        "campaign %s part %d (%d recipients, %d imported): %s",
        part.campaign_id,
        part.part,
        part.recipients,
        part.imported,
        part.error or f"sent as {part.provider_campaign_id}",
    )
    return True


async def settle(session: AsyncSession, campaign: Campaign, now: datetime) -> None:
    """The campaign's state from its parts' (only while SENDING)."""
    if campaign.state is not CampaignState.SENDING:
        return
    parts = await parts_of(session, campaign.id)
    if not all(p.state in _DONE for p in parts):
        return
    failed = [p for p in parts if p.state == CampaignPartState.FAILED]
    campaign.updated_at = now
    if failed:
        campaign.state = CampaignState.FAILED
        campaign.failure = "; ".join(f"part {p.part}: {p.error}" for p in failed)[:MAX_ERROR]
    elif campaign.ab_test is not None and campaign.ab_decision is None:
        campaign.state = CampaignState.TESTING
        # The window counts from when the test messages go out: a scheduled part is taken
        # by the provider `lead` before its time, a local-time one's last zone later still.
        instants = [p.send_at for p in parts if p.send_at is not None]
        campaign.test_sent_at = max([now, *instants])
    else:
        campaign.state = CampaignState.SENT


# --- the A/B decision ------------------------------------------------------------------


async def claim_test_due(session: AsyncSession, now: datetime) -> Campaign | None:
    """A campaign whose test window is over, locked."""
    rows = await session.scalars(
        select(Campaign)
        .where(Campaign.state == CampaignState.TESTING, Campaign.test_sent_at.is_not(None))
        .order_by(Campaign.test_sent_at)
        .with_for_update(skip_locked=True)
    )
    for campaign in rows:
        test = ab_test_of(campaign.ab_test)
        assert test is not None and campaign.test_sent_at is not None
        window = test.settled().window
        assert window is not None  # settled
        if campaign.test_sent_at + window <= now:
            return campaign
    return None


async def decide(
    session: AsyncSession, campaign: Campaign, now: datetime, *, override: int | None = None
) -> ab.Decision:
    """The winner (by the metric, or `override`), recorded, and sent to the remainder."""
    test = ab_test_of(campaign.ab_test)
    assert test is not None
    settled = test.settled()
    assert settled.metric is not None and settled.min_sample and settled.confidence  # checked
    results = await variant_results(session, campaign.id, len(settled.variants), settled.metric)
    decision = ab.choose_winner(
        results,
        min_sample=settled.min_sample,
        confidence=settled.confidence,
        override=override,
    )
    document: dict[str, Any] = asdict(decision) | {"decided_at": now.isoformat()}
    await start_remainder(session, campaign, document)
    campaign.updated_at = now
    await settle(session, campaign, now)
    return decision


async def variant_results(
    session: AsyncSession, campaign_id: str, variants: int, metric: Metric
) -> list[ab.VariantResult]:
    """Each variant's delivered test recipients and successes, from the engagement
    reported for its parts' provider campaigns (every variant: 0 of 0 when it got nobody,
    so that a manual choice of it stands and it counts below the minimum sample)."""
    parts = [p for p in await parts_of(session, campaign_id) if not p.remainder]
    by_variant: dict[int, list[str]] = {variant: [] for variant in range(variants)}
    for part in parts:
        if part.variant is not None:
            ids = by_variant.setdefault(part.variant, [])
            if part.provider_campaign_id:
                ids.append(part.provider_campaign_id)
    return [
        await _variant_result(session, variant, ids, metric)
        for variant, ids in sorted(by_variant.items())
    ]


async def _variant_result(
    session: AsyncSession, variant: int, provider_ids: list[str], metric: Metric
) -> ab.VariantResult:
    if not provider_ids:
        return ab.VariantResult(variant, 0, 0)
    # The figures GetCampaignMetrics shows, not the raw counters: a provider that reports no
    # deliveries (ActiveCampaign) has its sent people who did not bounce counted as
    # delivered. Read raw, every ActiveCampaign variant had 0 delivered, a rate of 0, and
    # the tie went to variant 0 whatever the engagement.
    found = (await figures.campaign_figures(session, provider_ids)).values()
    delivered = sum(f.delivered for f in found)
    successes = sum(_successes(f, metric) for f in found)
    return ab.VariantResult(variant, delivered, min(successes, delivered))


def _successes(found: figures.Figures, metric: Metric) -> int:
    """The people of one provider campaign who did what `metric` counts."""
    if metric is Metric.OPEN_RATE:
        return found.opened
    if metric is Metric.CLICK_RATE:
        return found.clicked
    return found.converted_people
