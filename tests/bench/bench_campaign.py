"""Figure 13: a campaign to a 500,000-contact segment, A/B with three variants, against the
Klaviyo sandbox with its rate limits on (one dispatcher replica).

The people (`camp.<n>.<tag>@bench.example.com`) are made by INSERT ... SELECT: by n % 100,
10 % suppressed (with consent), 20 % without email consent, 5 % capped (included in three
campaigns in the last day, the cap being 3 a week), the rest (65 %) may get it; all in one
manual segment. Klaviyo sends campaigns only to profiles subscribed to email marketing, so a
full contact sync first gives it everyone's consent, as the ordered consent path would have
over time (not counted).

- `campaign_500k_s`: ScheduleCampaign (now) until the sandbox has sent every included
  recipient their message: every decision recorded, the four parts' lists filled by bulk
  import jobs, the three test variants' campaigns created and sent, the winner chosen by
  hand (ChooseAbTestWinner: the test window is an hour at least) and sent to the remainder.
  Printed beside the provider's bound for the list uploads: the least time Klaviyo's limits
  on import jobs allow for the jobs of 10,000 that carry the included.
- `campaign_500k_ineligible_sent`: messages the sandbox sent to anyone whose decision was
  not `included`, or who was not decided at all. Target 0."""

from __future__ import annotations

import asyncio
import math
import time

import httpx
from marketing.v1 import campaign_pb2 as cp
from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dispatcher.providers.base import START_IMPORT, Limits
from tests.bench.bench_sync import least_seconds
from tests.bench.context import Bench
from tests.bench.report import Row, Target

INELIGIBLE = Target("==", 0)
POLL_S = 0.5
TEST_FRACTION = 0.2
SYNC_RUNNING = contact_sync_pb2.ContactSync.State.STATE_RUNNING
BODY = (
    '<p>Hello {{ first_name | default: "friend" }}, {{ loyalty_tier | default: "member" }}'
    '</p><a href="{{ unsubscribe_url }}">Preferences</a>'
)

_PEOPLE = """
INSERT INTO marketing_contact (id, email, first_name, loyalty_tier, custom_properties,
    email_opt_in, sms_opt_in, push_opt_in, created_at, updated_at)
SELECT md5(:tag || '-' || n)::uuid, 'camp.' || n || '.' || :tag || '@bench.example.com',
       (ARRAY['Ada','Grace','Linus','Ken','Barbara','Edsger'])[1 + n % 6],
       CASE WHEN n % 3 = 0 THEN 'gold' END, '{}',
       NOT (n % 100 BETWEEN 10 AND 29), false, false, now(), now()
FROM generate_series(1, :people) AS n
"""
_CONSENT = """
INSERT INTO marketing_consent (contact_id, type, granted, source, consent_time, recorded_at)
SELECT id, 'EMAIL', true, 'bench', now(), now() FROM marketing_contact
WHERE email LIKE 'camp.%.' || :tag || '@bench.example.com' AND email_opt_in
"""
_SUPPRESSED = """
INSERT INTO marketing_suppression (email_sha256, reason, created_at)
SELECT encode(sha256(convert_to('camp.' || n || '.' || :tag || '@bench.example.com', 'UTF8')),
              'hex'), 'bench', now()
FROM generate_series(1, :people) AS n WHERE n % 100 < 10
"""
_SEGMENT = """
INSERT INTO marketing_segment (id, display_name, kind, created_at, updated_at)
VALUES (:segment, :segment, 'MANUAL', now(), now())
"""
_MEMBERS = """
INSERT INTO marketing_segment_membership (contact_id, segment, added_at)
SELECT md5(:tag || '-' || n)::uuid, :segment, now() FROM generate_series(1, :people) AS n
"""
_EARLIER = """
INSERT INTO marketing_campaign (id, display_name, channel, audience, state, created_at,
    updated_at)
SELECT :tag || '-earlier-' || k, 'earlier', 'EMAIL', :segment, 'SENT', now(), now()
FROM generate_series(1, 3) AS k
"""
_CAPPED = """
INSERT INTO marketing_campaign_recipient (campaign_id, contact_id, decision, decided_at)
SELECT :tag || '-earlier-' || k, md5(:tag || '-' || n)::uuid, 'included',
       now() - interval '1 day'
FROM generate_series(1, :people) AS n, generate_series(1, 3) AS k
WHERE n % 100 BETWEEN 30 AND 34
"""
_NOT_INCLUDED = """
SELECT c.email FROM marketing_campaign_recipient r JOIN marketing_contact c ON c.id = r.contact_id
WHERE r.campaign_id = :campaign AND r.decision <> 'included'
"""


async def run(b: Bench, limits: Limits, people: int) -> None:
    tag = f"cp{b.tag}"
    segment = f"bench-campaign-{b.tag}"
    await _generate(b, tag, segment, people)
    sandbox = b.provider_sandboxes["klaviyo"]
    await sandbox.reset()
    b.stack.start_replicas(1, "klaviyo")
    try:
        await asyncio.to_thread(b.stack.wait_replicas_ready)
        await _consent_to_klaviyo(b)
        name, seconds, campaign = await _send(b, segment)
    finally:
        b.stack.stop_replicas()
    included = campaign.counts.included
    sent_to = await _sent_emails(sandbox.base_url, [p.provider_campaign_id for p in campaign.parts])
    ineligible = await _ineligible(b, name.removeprefix("campaigns/"), sent_to)
    bound = _upload_bound(limits, [p.imported for p in campaign.parts])
    c = campaign.counts
    b.note(
        f"{people:,} in the segment: {included:,} included, {c.excluded_suppressed:,} suppressed, "
        f"{c.excluded_no_consent:,} without consent, {c.excluded_capped:,} capped; "
        f"{len(campaign.parts)} parts; the sandbox sent {len(sent_to):,} messages, "
        f"{ineligible} to the ineligible; {seconds:.1f} s (the uploads' bound {bound:.1f} s)"
    )
    b.results.update(
        campaign_500k_s=seconds,
        campaign_500k_upload_bound_s=bound,
        campaign_500k_ratio=bound / seconds if seconds else float("nan"),
        campaign_500k_included=included,
        campaign_500k_sent=len(sent_to),
        campaign_500k_ineligible_sent=ineligible,
    )
    b.rows += [
        Row("campaign_500k_s", seconds, "s", f"uploads' bound {bound:.1f} s"),
        Row("campaign_500k_ineligible_sent", ineligible, "", "sandbox record", INELIGIBLE),
    ]


async def _generate(b: Bench, tag: str, segment: str, people: int) -> None:
    engine = create_async_engine(b.stack.database_url)
    started = time.perf_counter()
    try:
        async with engine.begin() as connection:
            params = {"tag": tag, "people": people, "segment": segment}
            for statement in (_PEOPLE, _CONSENT, _SUPPRESSED, _SEGMENT, _MEMBERS, _EARLIER):
                await connection.execute(text(statement), params)
            await connection.execute(text(_CAPPED), params)
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    b.note(f"{people:,} people generated in {time.perf_counter() - started:.1f} s")


async def _consent_to_klaviyo(b: Bench) -> None:
    started = time.perf_counter()
    sync = (await b.service.StartContactSync(pb.StartContactSyncRequest(), timeout=60)).contact_sync
    while sync.state == SYNC_RUNNING:
        await asyncio.sleep(POLL_S)
        request = pb.GetContactSyncRequest(name=sync.name)
        sync = (await b.service.GetContactSync(request, timeout=30)).contact_sync
    b.note(f"consent synced to Klaviyo in {time.perf_counter() - started:.1f} s (not counted)")


async def _send(b: Bench, segment: str) -> tuple[str, float, cp.Campaign]:
    variants = [
        cp.CampaignContent(subject=f"Winter sale {v}: {{{{ first_name | default: \"hi\" }}}}",
                           body=BODY)
        for v in ("A", "B", "C")
    ]  # fmt: skip
    campaign = cp.Campaign(
        display_name=f"Bench {b.tag}",
        channel=cp.CAMPAIGN_CHANNEL_EMAIL,
        audience=f"segments/{segment}",
        ab_test=cp.AbTest(
            variants=variants, test_fraction=TEST_FRACTION, metric=cp.AB_TEST_METRIC_OPEN_RATE
        ),
        schedule=cp.CampaignSchedule(now=True),
    )
    created = await b.service.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign))
    name = created.campaign.name
    started = time.perf_counter()
    await b.service.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name), timeout=60)
    await _until(b, name, cp.Campaign.STATE_TESTING)
    tested = time.perf_counter() - started
    await b.service.ChooseAbTestWinner(pb.ChooseAbTestWinnerRequest(name=name, variant=0))
    sent = await _until(b, name, cp.Campaign.STATE_SENT)
    b.note(f"SENT after {time.perf_counter() - started:.1f} s")
    await _until_delivered(b, sent)
    seconds = time.perf_counter() - started
    b.note(f"test parts sent in {tested:.1f} s; everyone in {seconds:.1f} s")
    return name, seconds, sent


async def _until(b: Bench, name: str, state: int) -> cp.Campaign:
    deadline = time.monotonic() + b.cfg.timeout_s * 5
    while True:
        reply = await b.service.GetCampaign(pb.GetCampaignRequest(name=name), timeout=60)
        campaign = reply.campaign
        if campaign.state == cp.Campaign.STATE_FAILED:
            raise RuntimeError(f"the campaign failed: {campaign.failure}")
        if campaign.state == state:
            return campaign
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still {cp.Campaign.State.Name(campaign.state)}")
        await asyncio.sleep(POLL_S)


async def _until_delivered(b: Bench, campaign: cp.Campaign) -> None:
    """Until the sandbox has recorded a message for every person each part imported."""
    wanted = {p.provider_campaign_id: p.imported for p in campaign.parts}
    url = b.provider_sandboxes["klaviyo"].base_url
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        deadline = time.monotonic() + b.cfg.timeout_s
        recorded: dict[str, int] = {}
        while time.monotonic() < deadline:
            summary = (await http.get("/_sandbox/campaign-messages/summary")).json()["campaigns"]
            recorded = {k: v["sent"] + v["skipped"] for k, v in summary.items()}
            if all(recorded.get(k, 0) >= n for k, n in wanted.items()):
                return
            await asyncio.sleep(POLL_S)
    raise TimeoutError(f"the sandbox recorded {recorded} messages of the parts' {wanted}")


async def _sent_emails(base_url: str, campaign_ids: list[str]) -> list[str]:
    emails: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
        for campaign_id in campaign_ids:
            reply = await http.get(
                "/_sandbox/campaign-messages/emails", params={"campaign_id": campaign_id}
            )
            reply.raise_for_status()
            emails += [line for line in reply.text.splitlines() if line]
    return emails


async def _ineligible(b: Bench, campaign_id: str, sent_to: list[str]) -> int:
    """Messages sent to someone not included: excluded by a decision, or never decided."""
    engine = create_async_engine(b.stack.database_url)
    try:
        async with engine.connect() as connection:
            excluded = {
                row[0]
                for row in await connection.execute(text(_NOT_INCLUDED), {"campaign": campaign_id})
            }
            decided = await connection.scalar(
                text("SELECT count(*) FROM marketing_campaign_recipient WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
    finally:
        await engine.dispose()
    strangers = [e for e in sent_to if not e.startswith("camp.")]
    duplicates = len(sent_to) - len(set(sent_to))
    b.note(f"{decided:,} decisions; {duplicates} duplicate messages")
    return sum(1 for e in sent_to if e in excluded) + len(strangers) + duplicates


def _upload_bound(limits: Limits, imported: list[int]) -> float:
    """The least time Klaviyo's windows on import jobs allow for full jobs of every part."""
    assert limits.import_profiles is not None
    per_job = limits.import_profiles.max_items
    jobs = sum(math.ceil(n / per_job) for n in imported)
    windows = tuple(w for bucket in limits.rates[START_IMPORT] for w in bucket.windows)
    return least_seconds(jobs, windows)
