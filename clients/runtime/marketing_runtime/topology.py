"""Stream, subject, consumer and bucket names, declared once for both processes.

    MARKETING_WORK      marketing.work.events     behavioural events (any order)
                        marketing.work.contacts   profile and consent changes (ordered)
                        marketing.work.enrolments flow enrolments begun and ended (ordered
                                                  on their own: never behind consent work)
    MARKETING_RESULTS   marketing.results.batch   outcomes, one message per provider batch
                        marketing.results.sync    a full contact sync's chunk results
                        marketing.results.catalogue  the provider's campaigns and flows,
                                                  read by the dispatcher (ProviderCatalogue)
                        marketing.results.campaigns  what became of a campaign's pages and sends
    MARKETING_SYNC      marketing.sync.chunks     a full contact sync's pages of contacts
                        marketing.sync.consent    a page's consent, once its people are imported
    MARKETING_CAMPAIGNS marketing.campaigns.audience  pages of a campaign part's recipients,
                                                  imported into the part's provider list
                        marketing.campaigns.send  a part's provider campaign to create and send
    MARKETING_DEAD      marketing.dead.<kind>     dead letters for manual review
    MARKETING_WEBHOOKS  marketing.webhooks.engagement  engagement the providers' webhooks
                                                  reported, accepted by the dispatcher's
                                                  receiver, applied by the service
    KV marketing_fences    newest applied outbox sequence per person and aspect
    KV marketing_enrolment_fences  the same per enrolment in one of our flows, each kept
                           ENROLMENT_FENCE_MAX_AGE_S after its last write
    KV marketing_leases    which dispatcher replica owns the ordered work: one lease
                           for contact work (CONTACTS_LEASE), one for enrolments
                           (ENROLMENTS_LEASE), one for the catalogue refresh
                           (CATALOGUE_LEASE), and when that refresh last ran
                           (CATALOGUE_REFRESHED_KEY)
    KV marketing_budget    the provider budget: recent calls per account and rate bucket

    core NATS           marketing.provider.read_person   request/reply: a dispatcher
                        replica of the queue group reads one person from the provider

`declare()` creates or updates all of it idempotently; the service and the
dispatcher both call it at start-up and on every new connection, so either
may start first. An existing consumer keeps its ack wait: the dispatcher sets
the events consumer's (MARKETING_EVENT_ACK_WAIT_S) and keeps held messages
alive by it, so a reconnect must not change it underneath.
"""

from __future__ import annotations

import logging

from marketing.bus.v1 import bus_pb2
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

WORK_STREAM = "MARKETING_WORK"
EVENTS_SUBJECT = "marketing.work.events"
CONTACTS_SUBJECT = "marketing.work.contacts"
ENROLMENTS_SUBJECT = "marketing.work.enrolments"
RESULTS_STREAM = "MARKETING_RESULTS"
RESULTS_SUBJECT_PREFIX = "marketing.results"
RESULTS_SUBJECT = f"{RESULTS_SUBJECT_PREFIX}.batch"
SYNC_RESULTS_SUBJECT = f"{RESULTS_SUBJECT_PREFIX}.sync"
CATALOGUE_SUBJECT = f"{RESULTS_SUBJECT_PREFIX}.catalogue"
SYNC_STREAM = "MARKETING_SYNC"
SYNC_CHUNKS_SUBJECT = "marketing.sync.chunks"
SYNC_CONSENT_SUBJECT = "marketing.sync.consent"
CAMPAIGNS_STREAM = "MARKETING_CAMPAIGNS"
CAMPAIGN_AUDIENCE_SUBJECT = "marketing.campaigns.audience"
CAMPAIGN_SEND_SUBJECT = "marketing.campaigns.send"
CAMPAIGN_RESULTS_SUBJECT = f"{RESULTS_SUBJECT_PREFIX}.campaigns"
DEAD_STREAM = "MARKETING_DEAD"
DEAD_SUBJECT_PREFIX = "marketing.dead"
WEBHOOKS_STREAM = "MARKETING_WEBHOOKS"
ENGAGEMENT_SUBJECT = "marketing.webhooks.engagement"

DISPATCH_EVENTS = "dispatcher-events"
DISPATCH_CONTACTS = "dispatcher-contacts"
DISPATCH_ENROLMENTS = "dispatcher-enrolments"
SERVICE_EVENT_LOG = "service-event-log"
SERVICE_RESULTS = "service-results"
DISPATCH_SYNC = "dispatcher-sync"
DISPATCH_SYNC_CONSENT = "dispatcher-sync-consent"
SERVICE_SYNC_RESULTS = "service-sync-results"
SERVICE_CATALOGUE = "service-catalogue"
SERVICE_ENGAGEMENT = "service-engagement"
DISPATCH_CAMPAIGN_AUDIENCE = "dispatcher-campaign-audience"
DISPATCH_CAMPAIGN_SEND = "dispatcher-campaign-send"
SERVICE_CAMPAIGN_RESULTS = "service-campaign-results"

# Core NATS request/reply (no stream): the service asks, one dispatcher
# replica of the queue group answers (ReadPersonRequest / ReadPersonReply).
READ_PERSON_SUBJECT = "marketing.provider.read_person"
READ_PERSON_QUEUE = "dispatchers"

FENCES_BUCKET = "marketing_fences"
ENROLMENT_FENCES_BUCKET = "marketing_enrolment_fences"
LEASES_BUCKET = "marketing_leases"
BUDGET_BUCKET = "marketing_budget"
# The keys in LEASES_BUCKET: each ordered consumer is worked by the one replica
# holding its lease (a replica may hold both). Enrolments have their own, so that
# a batch of them waiting for the events' budget holds up no consent change.
CONTACTS_LEASE = "ordered-work"  # the name of releases before enrolments had their own
ENROLMENTS_LEASE = "enrolment-work"
# The replica holding this one reads the provider's campaigns and flows (the
# catalogue refresh); the other key says when a refresh last published, so a
# replica taking the lease over does not read again before it is due.
CATALOGUE_LEASE = "catalogue-refresh"
CATALOGUE_REFRESHED_KEY = "catalogue-refreshed"

# A retried publish with the same Nats-Msg-Id inside this window is dropped
# by JetStream; beyond it the provider's dedupe key (unique_id) still holds.
DUPLICATE_WINDOW_S = 3600.0
# Dead letters wait this long for manual review (they are also in PostgreSQL).
DEAD_LETTER_MAX_AGE_S = 30 * 24 * 3600.0
# A fence per enrolment (a key each) would grow without end, unlike a person's
# fences: every cart of every person is one. A fence only stops an older change of
# its enrolment coming back after a newer one was applied: redelivered after a
# replica died mid-batch (within minutes), or failed and re-driven by hand. Such an
# older change failed before the newer one was applied (in one batch it would have
# been superseded instead), so the fence, kept this long after its last write,
# outlives the older change's dead letter (kept as long for review). A re-drive
# later than that of the older change (the service keeps failed rows) would be sent.
ENROLMENT_FENCE_MAX_AGE_S = DEAD_LETTER_MAX_AGE_S
# A message not acknowledged within this time is delivered again; workers
# holding one longer (in-place retries) send in_progress() before it passes.
ACK_WAIT_S = 30.0
# Chunks of a full sync the dispatchers may hold at once in their import stage,
# all replicas together: four batches of MARKETING_SYNC_CHUNKS_PER_BATCH (10),
# one per sync loop (MARKETING_SYNC_CONCURRENCY): a batch waits on its job for
# a second or more, and with two in hand the provider's budget went unused.
# The service's sync driver bounds the chunks not yet imported too
# (MARKETING_SYNC_MAX_IMPORTING, 60 by default: the rest wait in the stream,
# so a dispatcher's next batch fills up at once).
SYNC_MAX_ACK_PENDING = 40
# A sync's second stage (ContactSyncConsent, a chunk's consent once imported),
# all replicas together: MARKETING_SYNC_CONSENT_CONCURRENCY (6) loops of
# MARKETING_SYNC_CONSENT_CHUNKS_PER_BATCH (20) take 120, so that each consent
# endpoint has full calls of several batches to send at once; loops beyond
# this wait. The rest wait in the stream (about 40 bytes a person).
SYNC_CONSENT_MAX_ACK_PENDING = 200
# Enrolment changes one replica holds at once: a batch being applied
# (MARKETING_ENROLMENT_BATCH_SIZE, at most 1,000: one Klaviyo bulk job) and the
# next ones its pull brought. A restock's 100,000 wait in the stream.
ENROLMENTS_MAX_ACK_PENDING = 5_000
# Pages of campaign recipients the dispatchers hold at once, all replicas together: each
# waits on its provider jobs (a Klaviyo job takes 10,000 people; ActiveCampaign's import
# 250 a request at 100 requests a minute). The service's campaign driver bounds the pages
# published and not yet done too (MARKETING_CAMPAIGN_PAGES_IN_FLIGHT).
CAMPAIGN_AUDIENCE_MAX_ACK_PENDING = 16


def _streams(replicas: int) -> list[StreamConfig]:
    return [
        # Interest retention: a message goes once every consumer declared on it
        # (dispatcher and service event-log writer) has acknowledged it.
        StreamConfig(
            name=WORK_STREAM,
            subjects=[EVENTS_SUBJECT, CONTACTS_SUBJECT, ENROLMENTS_SUBJECT],
            retention=RetentionPolicy.INTEREST,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
        StreamConfig(
            name=RESULTS_STREAM,
            subjects=[f"{RESULTS_SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.INTEREST,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
        # A chunk goes once the dispatcher acknowledged it (its import finished),
        # its consent stage once that is done.
        StreamConfig(
            name=SYNC_STREAM,
            subjects=[SYNC_CHUNKS_SUBJECT, SYNC_CONSENT_SUBJECT],
            retention=RetentionPolicy.INTEREST,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
        # A page goes once its import finished, a send once the provider took it.
        StreamConfig(
            name=CAMPAIGNS_STREAM,
            subjects=[CAMPAIGN_AUDIENCE_SUBJECT, CAMPAIGN_SEND_SUBJECT],
            retention=RetentionPolicy.INTEREST,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
        # A delivery the receiver answered 200 is here; it goes once applied.
        StreamConfig(
            name=WEBHOOKS_STREAM,
            subjects=[ENGAGEMENT_SUBJECT],
            retention=RetentionPolicy.INTEREST,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
        StreamConfig(
            name=DEAD_STREAM,
            subjects=[f"{DEAD_SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            max_age=DEAD_LETTER_MAX_AGE_S,
            num_replicas=replicas,
            storage=StorageType.FILE,
        ),
    ]


def _consumers() -> list[tuple[str, ConsumerConfig]]:
    def durable(name: str, subject: str, max_ack_pending: int) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=name,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,  # attempts are counted and capped by the consumer itself
            max_ack_pending=max_ack_pending,
        )

    return [
        (WORK_STREAM, durable(DISPATCH_EVENTS, EVENTS_SUBJECT, 20_000)),
        (WORK_STREAM, durable(DISPATCH_CONTACTS, CONTACTS_SUBJECT, 5_000)),
        (WORK_STREAM, durable(DISPATCH_ENROLMENTS, ENROLMENTS_SUBJECT, ENROLMENTS_MAX_ACK_PENDING)),
        (WORK_STREAM, durable(SERVICE_EVENT_LOG, EVENTS_SUBJECT, 20_000)),
        (RESULTS_STREAM, durable(SERVICE_RESULTS, RESULTS_SUBJECT, 20_000)),
        (RESULTS_STREAM, durable(SERVICE_SYNC_RESULTS, SYNC_RESULTS_SUBJECT, 1_000)),
        (RESULTS_STREAM, durable(SERVICE_CATALOGUE, CATALOGUE_SUBJECT, 100)),
        (RESULTS_STREAM, durable(SERVICE_CAMPAIGN_RESULTS, CAMPAIGN_RESULTS_SUBJECT, 1_000)),
        (
            CAMPAIGNS_STREAM,
            durable(
                DISPATCH_CAMPAIGN_AUDIENCE,
                CAMPAIGN_AUDIENCE_SUBJECT,
                CAMPAIGN_AUDIENCE_MAX_ACK_PENDING,
            ),
        ),
        (CAMPAIGNS_STREAM, durable(DISPATCH_CAMPAIGN_SEND, CAMPAIGN_SEND_SUBJECT, 100)),
        (WEBHOOKS_STREAM, durable(SERVICE_ENGAGEMENT, ENGAGEMENT_SUBJECT, 5_000)),
        (SYNC_STREAM, durable(DISPATCH_SYNC, SYNC_CHUNKS_SUBJECT, SYNC_MAX_ACK_PENDING)),
        (
            SYNC_STREAM,
            durable(DISPATCH_SYNC_CONSENT, SYNC_CONSENT_SUBJECT, SYNC_CONSENT_MAX_ACK_PENDING),
        ),
    ]


async def declare(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create or update every stream, consumer and bucket. Safe to repeat."""
    for config in _streams(replicas):
        try:
            await js.add_stream(config)
        except BadRequestError:  # exists with an older (or newer) configuration
            await js.update_stream(await _with_existing_subjects(js, config))
    for stream, consumer in _consumers():
        await _declare_consumer(js, stream, consumer)
    for bucket in (FENCES_BUCKET, LEASES_BUCKET, BUDGET_BUCKET):
        # Fences are read in bulk by the full sync and every ordered batch
        # (direct gets of many keys).
        await _declare_bucket(js, bucket, replicas, direct=bucket == FENCES_BUCKET)
    await _declare_bucket(
        js, ENROLMENT_FENCES_BUCKET, replicas, direct=True, max_age_s=ENROLMENT_FENCE_MAX_AGE_S
    )
    log.info(
        "bus declared: streams %s, %s, %s, %s, %s, %s",
        WORK_STREAM,
        RESULTS_STREAM,
        SYNC_STREAM,
        CAMPAIGNS_STREAM,
        WEBHOOKS_STREAM,
        DEAD_STREAM,
    )


async def _with_existing_subjects(js: JetStreamContext, config: StreamConfig) -> StreamConfig:
    """`config` with the subjects the stream has already: a process of an older
    release, declaring on each reconnect, must not take away a subject a newer
    one publishes on (a subject is only ever added)."""
    existing = (await js.stream_info(config.name or "")).config.subjects or []
    wanted = list(config.subjects or [])
    config.subjects = wanted + [s for s in existing if s not in wanted]
    return config


async def _declare_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    try:
        existing = await js.consumer_info(stream, config.durable_name or "")
    except NotFoundError:
        pass  # created with ACK_WAIT_S
    else:
        config.ack_wait = existing.config.ack_wait
    await js.add_consumer(stream, config)


async def _declare_bucket(
    js: JetStreamContext,
    bucket: str,
    replicas: int,
    *,
    direct: bool = False,
    max_age_s: float | None = None,
) -> None:
    """`max_age_s`: each key goes that long after its last write (None: kept)."""
    config = KeyValueConfig(bucket=bucket, replicas=replicas, direct=direct, ttl=max_age_s)
    try:
        await js.create_key_value(config)
    except BadRequestError:  # exists with other settings (say, a new replica count)
        info = await js.stream_info(f"KV_{bucket}")
        info.config.num_replicas = replicas
        info.config.allow_direct = bool(info.config.allow_direct) or direct
        if max_age_s is not None:
            info.config.max_age = max_age_s
        await js.update_stream(info.config)


# The work subject of each kind the outbox relay publishes, where it is not
# CONTACTS_SUBJECT (the ordered profile, consent and list work, and any kind
# added later unless it is given a subject here).
_WORK_SUBJECTS: dict[int, str] = {
    bus_pb2.KIND_EVENT_TRACKED: EVENTS_SUBJECT,
    bus_pb2.KIND_ENROLMENT_CHANGED: ENROLMENTS_SUBJECT,
    bus_pb2.KIND_ENROLMENTS_BEGUN: ENROLMENTS_SUBJECT,
}


def work_subject(kind: int) -> str:
    """The subject work of `kind` is published on (the consumer that delivers it)."""
    return _WORK_SUBJECTS.get(kind, CONTACTS_SUBJECT)


def dead_subject(kind: str) -> str:
    return f"{DEAD_SUBJECT_PREFIX}.{kind}"
