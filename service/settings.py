"""Typed settings, read once from the environment (prefix `MARKETING_`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from marketing_runtime.settings import ProcessSettings
from pydantic import Field, SecretStr, model_validator

# A million people's worth: most are imported and wait in the stream for their
# consent calls (about 40 KB a chunk), which may wait for the provider's next minute.
DEFAULT_SYNC_MAX_IN_FLIGHT = 1000
# Six of the dispatcher's batches (MARKETING_SYNC_CHUNKS_PER_BATCH, 10 chunks:
# one Klaviyo import job of 10,000): four in the dispatchers' hands (the
# consumer's max ack pending, 40), two waiting in the stream, so a batch fills
# up with a whole job's worth as soon as one is handed back.
DEFAULT_SYNC_MAX_IMPORTING = 60

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_SHUTDOWN_GRACE_S = 10.0
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
# Large enough for a TrackEvents batch of 1,000 events plus one event at the
# provider's 5 MB limit, so oversized events get INVALID_ARGUMENT with a field
# name instead of the transport's bare RESOURCE_EXHAUSTED.
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
DEFAULT_DB_POOL_SIZE = 10
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"
# The publisher's own default (marketing_runtime/publisher.py), repeated here so that
# reading settings does not import the NATS client; a test keeps them equal.
DEFAULT_PUBLISH_GROUP_COMMIT_MS = 5.0
MIN_PAGE_TOKEN_KEY_LENGTH = 32


def _random_page_token_key() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(MIN_PAGE_TOKEN_KEY_LENGTH))


class ServiceSettings(ProcessSettings):
    database_url: SecretStr = Field(
        description="SQLAlchemy URL of PostgreSQL, e.g. postgresql+asyncpg://user:pw@host/db",
    )
    grpc_address: str = DEFAULT_GRPC_ADDRESS
    shutdown_grace_s: float = Field(DEFAULT_SHUTDOWN_GRACE_S, gt=0)
    max_clock_skew_s: float = Field(DEFAULT_MAX_CLOCK_SKEW_S, ge=0)
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, gt=0)
    attribution_window_s: int = Field(
        5 * 24 * 3600,
        ge=3600,
        le=90 * 24 * 3600,
        description="how long after a person clicked (or opened) a message an order of theirs "
        "counts as that message's conversion; read by the attribution worker (a change "
        "attributes every order again)",
    )
    cost_per_message: str = Field(
        "",
        pattern=r"^(|[0-9]{1,9}(\.[0-9]{1,9})? [A-Z]{3})$",
        description='what one message costs, e.g. "0.002 EUR", for ROI; empty: ROI is 0',
    )
    db_pool_size: int = Field(DEFAULT_DB_POOL_SIZE, gt=0)
    # Past this many RPCs in progress, new ones get RESOURCE_EXHAUSTED at once
    # (retry with backoff) instead of queueing until they time out.
    max_concurrent_rpcs: int = Field(2000, gt=0)
    metrics_address: str = Field(
        DEFAULT_METRICS_ADDRESS, description='host:port of the Prometheus /metrics endpoint; "" off'
    )
    nats_url: str = Field(
        "", description="NATS server(s), e.g. nats://127.0.0.1:4222; empty: no bus (outbox only)"
    )
    provider_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="how long ReconcileContact waits for a dispatcher to read the person "
        "from the provider before answering UNAVAILABLE",
    )
    outbox_retention_s: float = Field(
        86_400.0, ge=0, description="How long delivered outbox rows are kept before pruning"
    )
    publish_group_commit_ms: float = Field(
        DEFAULT_PUBLISH_GROUP_COMMIT_MS,
        ge=0,
        le=100,
        description="while other publications await their acks, how long a TrackEvent call or "
        "TrackEvents batch waits to share one write to NATS with those arriving meanwhile; "
        "0 writes each at once",
    )
    bus_workers: bool = Field(
        True,
        description="serve also runs the background workers (outbox relay, event-log writer, "
        "result recorder, segment refresher; without NATS the segment refresher alone); false "
        "when they run as `marketing-service work` processes of their own",
    )
    sync_chunk_contacts: int = Field(
        1000,
        gt=0,
        le=10_000,
        description="contacts per chunk of a full contact sync (fewer when they would not fit "
        "the NATS server's max_payload); the dispatcher splits a chunk into provider-sized jobs",
    )
    segment_refresh_s: float = Field(
        60.0,
        ge=1.0,
        le=600.0,
        description="how often segments with relative time windows (in the last 90 days, more "
        "than 90 days ago) are re-evaluated as a whole: a contact crosses such a window without "
        "a change of their own, and joins or leaves within this long",
    )
    segment_drain_batch: int = Field(
        2000,
        ge=1,
        le=50_000,
        description="contacts whose dynamic segments are re-evaluated together after their "
        "changes: one evaluation per segment for the whole batch",
    )
    segment_drain_poll_s: float = Field(
        0.2,
        gt=0,
        le=10.0,
        description="how long the segment refresher waits for changed contacts when it has "
        "none left (the least membership lag, on top of the evaluation itself)",
    )
    timer_batch: int = Field(
        500,
        ge=1,
        le=10_000,
        description="due timers (abandoned carts, win-back, enrolment ends) taken and acted on "
        "in one transaction",
    )
    waitlist_batch: int = Field(
        2_000,
        ge=1,
        le=10_000,
        description="waitlist subscriptions a restock picked, notified in one transaction (a "
        "restock of a large waitlist is worked off at this many per statement)",
    )
    waitlist_concurrency: int = Field(
        3,
        ge=1,
        le=16,
        description="waitlist batches notified side by side in each service replica (each its "
        "own transaction over rows the others skip): PostgreSQL works on one while Python "
        "builds the next",
    )
    timer_max_sleep_s: float = Field(
        0.25,
        gt=0,
        le=10.0,
        description="the longest the timer loop sleeps between looks at the earliest due timer: "
        "how late a timer armed meanwhile for sooner can fire",
    )
    queue_gauges_s: float = Field(
        15.0,
        ge=1.0,
        le=600.0,
        description="how often the workers read the delivery queue (pending, in flight, failed, "
        "the oldest pending and failed rows' ages) from PostgreSQL into the "
        "marketing_queue_items and marketing_queue_oldest_age_seconds gauges",
    )
    sync_max_in_flight: int = Field(
        DEFAULT_SYNC_MAX_IN_FLIGHT,
        gt=0,
        description="chunks of a full contact sync published and not yet reported, at most: "
        "bounds what the sync holds on the bus, mostly chunks whose people are imported and "
        "wait for their consent calls (about 40 KB a chunk, on disk), which may wait for the "
        "next minute of the provider's consent endpoints",
    )
    sync_max_importing: int = Field(
        DEFAULT_SYNC_MAX_IMPORTING,
        gt=0,
        description="chunks of a full contact sync published and not yet imported (waiting "
        "in the stream or in a dispatcher's import job), at most: the dispatchers hold 40 of "
        "them (the consumer's max ack pending), the rest wait in the stream so that a "
        "dispatcher's next batch fills up with a whole job's worth at once",
    )
    sync_chunk_deadline_s: float = Field(
        7200.0,
        gt=0,
        description="seconds after publishing a chunk of a full contact sync with no result "
        "from the dispatcher, after which the chunk is given up (its people failed, the sync "
        "ends FAILED): a sync never stays RUNNING for good. Longer than the dispatcher's "
        "import polling (an hour by default)",
    )
    page_token_key: SecretStr = Field(
        default_factory=_random_page_token_key,
        min_length=MIN_PAGE_TOKEN_KEY_LENGTH,
        description="secret that signs page tokens; every replica needs the same one. The "
        "default is random per process: tokens then do not survive a restart and one replica's "
        "token is refused by another, so set it in production",
    )
    preferences_address: str = Field(
        "127.0.0.1:8081",
        description='host:port the preference pages are served on (HTTP); "" serves none',
    )
    preferences_base_url: str = Field(
        "http://127.0.0.1:8081",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="where people reach the preference pages (behind your TLS proxy): the "
        "start of every link in a message",
    )
    preferences_key: SecretStr = Field(
        default_factory=_random_page_token_key,
        min_length=MIN_PAGE_TOKEN_KEY_LENGTH,
        description="secret that signs preference links; every replica needs the same one, "
        "and links in sent messages stop working when it changes. The default is random per "
        "process, for development only",
    )
    preferences_link_days: int = Field(
        180, gt=0, le=3650, description="how long a preference link works after it was made"
    )
    sms_wording_version: str = Field(
        "sms-terms-1",
        min_length=1,
        max_length=64,
        description="the version of the SMS consent wording the preference page shows; an "
        "SMS grant made there records it",
    )
    sms_wording: str = Field(
        "I agree to receive recurring marketing text messages at the number on file. Consent "
        "is not a condition of purchase. Msg & data rates may apply. Reply STOP to opt out.",
        min_length=1,
        description="the SMS consent wording the preference page shows next to the SMS box",
    )
    frequency_cap_messages: int = Field(
        3,
        ge=0,
        le=1000,
        description="campaigns a person may be included in per frequency_cap_days at most; "
        "0: no cap",
    )
    frequency_cap_days: float = Field(
        7.0, gt=0, le=365, description="the period of the frequency cap, in days"
    )
    campaign_from_email: str = Field(
        "marketing@example.com",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="the sender address of campaign email (verified with the provider)",
    )
    campaign_from_label: str = Field(
        "Our shop", min_length=1, max_length=100, description="the sender name of campaign email"
    )
    campaign_reply_to: str = Field(
        "",
        description="where replies to campaign email go; empty: campaign_from_email",
    )
    campaign_upload_lead_s: float = Field(
        1800.0,
        ge=0,
        le=86_400,
        description="how long before a campaign's time its audience is resolved and its lists "
        "filled, so that the provider sends on time",
    )
    campaign_page_recipients: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="recipients per page handed to the dispatchers (a page also stays under "
        "the NATS server's max_payload)",
    )
    auth_file: Path | None = Field(
        None,
        description="TOML file of the callers and their token digests (see README, "
        "Authentication); re-read on SIGHUP",
    )
    auth: Literal["required", "disabled"] = Field(
        "required",
        description='"disabled" lets every call in without a token: only where nothing '
        "but trusted callers reach the port",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve gRPC over TLS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: require client certificates it signed (mutual TLS)"
    )

    @model_validator(mode="after")
    def _tls_files_together(self) -> ServiceSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("MARKETING_TLS_CERT and MARKETING_TLS_KEY go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("MARKETING_TLS_CLIENT_CA needs MARKETING_TLS_CERT and _KEY")
        return self


def async_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs too and select the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
