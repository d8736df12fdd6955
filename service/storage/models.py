"""Table definitions (SQLAlchemy 2 declarative). Migrations live in `migrations/`.

Personal data lives in `marketing_contact` and the tables that cascade from it,
so that erasing a contact is one DELETE. The suppression list and the erasure
log keep only a SHA-256 of the email (see README, "What erasure keeps").
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: Timestamp, dict[str, Any]: JSONB}


class ConsentType(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    MARKETING = "MARKETING"
    ANALYTICS = "ANALYTICS"


class EventStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class OutboxStatus(enum.StrEnum):
    PENDING = "PENDING"  # committed, not yet published to the bus
    IN_FLIGHT = "IN_FLIGHT"  # published, the provider has not acknowledged it yet
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # dead-lettered, waiting for manual review


class ContactSyncState(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class CampaignType(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    FLOW = "FLOW"


class CampaignStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    SENT = "SENT"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


def _pg_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Contact(Base):
    __tablename__ = "marketing_contact"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(16))
    registration_time: Mapped[datetime | None]
    loyalty_tier: Mapped[str | None] = mapped_column(String(64))
    lifetime_value: Mapped[Decimal | None] = mapped_column(Numeric(20, 9))
    lifetime_value_currency: Mapped[str | None] = mapped_column(String(3))
    order_count: Mapped[int | None] = mapped_column(Integer)
    last_purchase_time: Mapped[datetime | None]
    location: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    custom_properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Denormalised from the newest consent record of each type, updated in the
    # same transaction as the record.
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    push_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sync_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("ix_marketing_contact_created", "created_at", "id"),
        Index("ix_marketing_contact_phone", "phone", postgresql_where=text("phone IS NOT NULL")),
    )


class Consent(Base):
    """Append-only: a trigger in the migration rejects UPDATE."""

    __tablename__ = "marketing_consent"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    type: Mapped[ConsentType] = mapped_column(_pg_enum(ConsentType, "consent_type"))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(1024))
    consent_time: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    # SMS consent: the number it was given for, and the consent wording shown
    # (its version): with source, time and IP, the proof TCPA/CTIA ask for.
    phone: Mapped[str | None] = mapped_column(String(16))
    wording_version: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_marketing_consent_contact_type", "contact_id", "type"),
        Index("ix_marketing_consent_history", "contact_id", "consent_time", "id"),
        Index("ix_marketing_consent_time", "consent_time"),
    )


class SegmentKind(enum.StrEnum):
    DYNAMIC = "DYNAMIC"
    MANUAL = "MANUAL"


class Segment(Base):
    """A segment (migration 0005): dynamic from its filter, or manual."""

    __tablename__ = "marketing_segment"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[SegmentKind] = mapped_column(_pg_enum(SegmentKind, "segment_kind"))
    filter: Mapped[dict[str, Any] | None]
    relative: Mapped[bool] = mapped_column(Boolean, default=False)
    has_events: Mapped[bool] = mapped_column(Boolean, default=False)
    # The event types its event conditions count (migration 0006).
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    depends_on: Mapped[list[str]] = mapped_column(ARRAY(String(63)), default=list)
    built_in: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    evaluated_at: Mapped[datetime | None]
    # Its email audience kept in a provider list (migration 0007): `list_id`
    # is given, or the provider's once it found or created the list.
    list_linked: Mapped[bool] = mapped_column(Boolean, default=False)
    list_id: Mapped[str | None] = mapped_column(String(64))
    list_name: Mapped[str | None] = mapped_column(String(200))  # found or created by name
    list_link_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the link's own id
    list_synced_at: Mapped[datetime | None]

    __table_args__ = (
        # One segment per list: two would take people out of each other's list.
        Index(
            "uq_marketing_segment_list_id",
            "list_id",
            unique=True,
            postgresql_where=text("list_linked AND list_id IS NOT NULL"),
        ),
    )


class SegmentMembership(Base):
    __tablename__ = "marketing_segment_membership"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(
        String(64), ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(server_default=func.now())

    # Audiences page through a segment's members in contact id order (0008).
    __table_args__ = (
        Index("ix_marketing_segment_membership_segment_contact", "segment", "contact_id"),
    )


class SegmentPending(Base):
    """A contact whose dynamic segments must be re-evaluated (migration 0006):
    written in the transaction of the change (one row per change: append-only,
    so a drain never takes a row whose change is uncommitted), taken by the
    segment refresher. `since`: when the change was made (the lag's start)."""

    __tablename__ = "marketing_segment_pending"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    since: Mapped[datetime]

    __table_args__ = (Index("ix_marketing_segment_pending_contact", "contact_id"),)


class SegmentListMember(Base):
    """Whether a contact was last sent into a linked segment's provider list or
    out of it (migration 0007); `outbox_id` is the row carrying that decision
    until the provider's result comes back (a pending change)."""

    __tablename__ = "marketing_segment_list_member"

    segment_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE"), primary_key=True
    )
    in_list: Mapped[bool] = mapped_column(Boolean)
    outbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        Index("ix_marketing_segment_list_member_contact", "contact_id"),
        Index(
            "ix_marketing_segment_list_member_outbox",
            "outbox_id",
            postgresql_where=text("outbox_id IS NOT NULL"),
        ),
        Index(
            "ix_marketing_segment_list_member_pending",
            "segment_id",
            postgresql_where=text("outbox_id IS NOT NULL"),
        ),
    )


class SegmentChange(Base):
    """Who joined or left a segment, and when (migration 0005)."""

    __tablename__ = "marketing_segment_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    segment_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("marketing_segment.id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    joined: Mapped[bool]
    changed_at: Mapped[datetime]


class Flow(Base):
    """A flow we decide enrolments for (migration 0009); see flow.proto. The
    trigger and exits are columns, so the decisions find the flows an event
    type, a segment or a timer concerns with a plain WHERE."""

    __tablename__ = "marketing_flow"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # EVENT, SEGMENT_ENTERED, NO_PURCHASE, REGISTRATION or BACK_IN_STOCK
    # (service/flows/definitions.py).
    trigger_kind: Mapped[str] = mapped_column(String(20))
    trigger_event: Mapped[str | None] = mapped_column(String(128))
    trigger_filter: Mapped[dict[str, Any] | None]  # the segment filter tree (to_json)
    trigger_segment: Mapped[str | None] = mapped_column(String(63))
    no_purchase_for_s: Mapped[int | None] = mapped_column(BigInteger)
    # ONCE_PER_CONTACT, ONCE_PER_KEY, REENTER_AFTER_EXIT or REENTER_AFTER_COOLDOWN.
    entry_rule: Mapped[str] = mapped_column(String(24))
    entry_key_property: Mapped[str | None] = mapped_column(String(900))
    cooldown_s: Mapped[int | None] = mapped_column(BigInteger)
    exit_events: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    exit_segments: Mapped[list[str]] = mapped_column(ARRAY(String(63)), default=list)
    exit_on_unsubscribe: Mapped[bool] = mapped_column(Boolean, default=True)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    klaviyo_start_metric: Mapped[str] = mapped_column(String(128), default="")
    klaviyo_exit_metric: Mapped[str] = mapped_column(String(128), default="")
    klaviyo_property: Mapped[str] = mapped_column(String(128), default="")
    activecampaign_automation_id: Mapped[str] = mapped_column(String(64), default="")
    klaviyo_flow_id: Mapped[str] = mapped_column(String(128), default="")  # migration 0011
    completes_after_s: Mapped[int] = mapped_column(BigInteger)
    built_in: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Enrolment(Base):
    """One decision about a contact and a flow (migration 0009): an enrolment
    (ACTIVE, COMPLETED, EXITED) or a refused attempt (REJECTED). `trigger_ref`
    names what set it off (`event:<id>`, `segment:<signal id>`, `waitlist:<id>`, ...): one
    decision per flow and trigger, so a trigger seen twice (an event
    redelivered) decides nothing twice. At most one ACTIVE per flow, contact
    and key: the database refuses a second, whoever races."""

    __tablename__ = "marketing_enrolment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # A flow, with no foreign key: flows are never deleted nor their ids changed
    # (triggers refuse that), and the key's per-row lookup was about a quarter of
    # what PostgreSQL spent copying a restock's enrolments (migration 0022).
    flow_id: Mapped[str] = mapped_column(String(63))
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(12))
    entry_key: Mapped[str] = mapped_column(String(256), default="")
    trigger_ref: Mapped[str] = mapped_column(String(200))
    # The trigger's kind (as Flow.trigger_kind), with its reference (event
    # id, segment id, subscription id) and time (the event's or the cart's
    # last activity, the last purchase, the registration).
    cause_kind: Mapped[str] = mapped_column(String(20))
    cause_ref: Mapped[str] = mapped_column(String(128), default="")
    cause_time: Mapped[datetime | None]
    # What the provider's message needed is not kept here: the cause holds it (the
    # event's body in the event log, the restock's product; migration 0023).
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(300))
    rejection_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # Trigger first: probed by trigger, the flow a filter (migration 0018).
        Index("uq_marketing_enrolment_trigger", "trigger_ref", "flow_id", unique=True),
        Index(
            "uq_marketing_enrolment_active",
            "flow_id",
            "contact_id",
            "entry_key",
            unique=True,
            postgresql_where=text("state = 'ACTIVE'"),
        ),
        Index("ix_marketing_enrolment_contact", "contact_id", "flow_id"),
        Index("ix_marketing_enrolment_flow_created", "flow_id", "created_at", "id"),
        Index("ix_marketing_enrolment_created", "created_at", "id"),
    )


class Timer(Base):
    """A durable timer (migration 0009): due at `due_at`, taken once by the
    service's timer loop (deleted in the transaction that acts on it, rows
    locked SKIP LOCKED, oldest due first). One per (kind, key): arming again
    moves it. `base_at` is the fact it counts from (the cart's last activity,
    the last purchase), so a changed delay moves pending timers."""

    __tablename__ = "marketing_timer"

    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    # The person it is of; none for many people's (migration 0019).
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    due_at: Mapped[datetime]
    base_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_marketing_timer_due", "due_at"),
        Index("ix_marketing_timer_contact", "contact_id", "kind"),
    )


class FlowSignal(Base):
    """A join or leave of a segment some flow names, for the flow worker
    (migration 0009: written by a trigger on marketing_segment_change)."""

    __tablename__ = "marketing_flow_signal"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    segment_id: Mapped[str] = mapped_column(String(63))
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    joined: Mapped[bool]
    changed_at: Mapped[datetime]


class Suppression(Base):
    """Addresses that must receive no marketing. Keyed by SHA-256 of the email so
    the entry can outlive an erasure without keeping the address itself."""

    __tablename__ = "marketing_suppression"

    email_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SmsSuppression(Base):
    """Numbers that must receive no marketing SMS (an SMS opt-out or STOP). Keyed by
    SHA-256 of the E.164 number, like the email list, so it outlives an erasure."""

    __tablename__ = "marketing_sms_suppression"

    phone_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PushToken(Base):
    """A device a contact gets push notifications on: one contact at a time."""

    __tablename__ = "marketing_push_token"

    token: Mapped[str] = mapped_column(String(1024), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    platform: Mapped[str] = mapped_column(String(16))
    vendor: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_marketing_push_token_contact", "contact_id", "created_at"),)


class CampaignState(enum.StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    TESTING = "TESTING"
    SENT = "SENT"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class CampaignChannel(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


class Campaign(Base):
    """A campaign we orchestrate (migration 0015)."""

    __tablename__ = "marketing_campaign"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[CampaignChannel] = mapped_column(_pg_enum(CampaignChannel, "campaign_channel"))
    audience: Mapped[str] = mapped_column(String(63))  # a segment id
    content: Mapped[dict[str, Any] | None]  # {"subject", "body"}
    ab_test: Mapped[dict[str, Any] | None]
    schedule: Mapped[dict[str, Any] | None]
    state: Mapped[CampaignState] = mapped_column(_pg_enum(CampaignState, "campaign_state"))
    failure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    send_start_at: Mapped[datetime | None]
    # migration 0016: when a scheduled campaign's send begins; when its A/B test parts
    # went out; the A/B decision ({"winner", "manual", "significant", "reason", "decided_at"})
    due_at: Mapped[datetime | None]
    test_sent_at: Mapped[datetime | None]
    ab_decision: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_marketing_campaign_created", "created_at", "id"),)


class CampaignRecipient(Base):
    """One person's decision for a campaign (migration 0015): included with their
    A/B variant (None: the remainder, who get the winner), or why not."""

    __tablename__ = "marketing_campaign_recipient"

    campaign_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("marketing_campaign.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE"), primary_key=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    variant: Mapped[int | None] = mapped_column(SmallInteger)
    decided_at: Mapped[datetime]
    # migration 0016: the part that carries them to the provider, and the provider's
    # import's reason when it refused them (they got nothing)
    part: Mapped[int | None] = mapped_column(SmallInteger)
    failure: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_marketing_campaign_recipient_included",
            "contact_id",
            "decided_at",
            postgresql_where=text("decision = 'included'"),
        ),
    )


class CampaignPartState(enum.StrEnum):
    FILLING = "FILLING"  # its pages are being imported into its provider list
    SENDING = "SENDING"  # the provider campaign was asked for
    SENT = "SENT"
    FAILED = "FAILED"


class CampaignPart(Base):
    """What one provider campaign carries (migration 0016): an A/B variant (or the whole
    audience, or the remainder with the winner) at one send instant, in its own list."""

    __tablename__ = "marketing_campaign_part"

    campaign_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("marketing_campaign.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    variant: Mapped[int | None] = mapped_column(SmallInteger)
    remainder: Mapped[bool] = mapped_column(default=False)
    send_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))
    recipients: Mapped[int]
    published_through: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    pages: Mapped[int] = mapped_column(default=0)
    pages_done: Mapped[int] = mapped_column(default=0)
    all_paged: Mapped[bool] = mapped_column(default=False)
    imported: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    list_id: Mapped[str | None] = mapped_column(Text)
    provider_campaign_id: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    send_failures: Mapped[int] = mapped_column(SmallInteger, default=0)


class CampaignPage(Base):
    """A page of a part's recipients handed to the provider (migration 0016): those with
    contact ids in (after, through], written down before it is published."""

    __tablename__ = "marketing_campaign_page"

    campaign_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    part: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sequence: Mapped[int] = mapped_column(primary_key=True)
    after: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    through: Mapped[uuid.UUID] = mapped_column(Uuid)
    recipients: Mapped[int]
    published_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(SmallInteger, default=0)

    __table_args__ = (
        ForeignKeyConstraint(
            ["campaign_id", "part"],
            ["marketing_campaign_part.campaign_id", "marketing_campaign_part.part"],
            ondelete="CASCADE",
        ),
    )


class OneClickRequest(Base):
    """A one-click unsubscribe (RFC 8058) answered and not yet applied (migration 0017):
    the preference page writes it in one statement, the one-click worker applies it and
    deletes it in one transaction. One per contact: a repeated click finds it queued.
    No foreign key: an erasure meanwhile must not take the person's objection with it,
    so the row keeps the address's SHA-256 (as the suppression list does)."""

    __tablename__ = "marketing_one_click"

    contact_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64), index=True)
    clicked_at: Mapped[datetime] = mapped_column(index=True)


class ErasureLog(Base):
    """Proof that an erasure request was carried out (accountability)."""

    __tablename__ = "marketing_erasure_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    erased_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EventLog(Base):
    __tablename__ = "marketing_event_log"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the event id
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="SET NULL")
    )
    contact_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the email
    type: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    external_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[EventStatus] = mapped_column(
        _pg_enum(EventStatus, "event_status"), default=EventStatus.PENDING
    )
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=6)
    next_retry_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("ix_marketing_event_log_status_retry", "status", "next_retry_at"),
        Index("ix_marketing_event_log_contact", "contact_id"),
        Index("ix_marketing_event_log_contact_key", "contact_key"),
        Index("ix_marketing_event_log_type", "type"),
        # Segments' event conditions (migration 0005): one person's events of a
        # type in a window, or everyone's from the index alone.
        Index("ix_marketing_event_log_key_type_time", "contact_key", "type", "occurred_at"),
        Index(
            "ix_marketing_event_log_type_time",
            "type",
            "occurred_at",
            postgresql_include=["contact_key"],
        ),
    )


class BackInStockSubscription(Base):
    """A person waiting for a product, or one variant (migration 0010). One
    WAITING (or NOTIFYING) per person, product and variant; once notified,
    skipped or removed it stays as the record of what happened (with the
    restock that answered it)."""

    __tablename__ = "marketing_back_in_stock_subscription"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    product_id: Mapped[str] = mapped_column(String(128))
    variant_id: Mapped[str] = mapped_column(String(128), default="")
    # WAITING, NOTIFYING (picked by a restock with a quantity), NOTIFIED,
    # SKIPPED, REMOVED.
    state: Mapped[str] = mapped_column(String(12), default="WAITING")
    reason: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100), default="")
    restock_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    enrolment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ended_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_back_in_stock_waiting",
            "contact_id",
            "product_id",
            "variant_id",
            unique=True,
            postgresql_where=text("state IN ('WAITING', 'NOTIFYING')"),
        ),
        Index("ix_back_in_stock_product", "product_id", "variant_id", "created_at", "id"),
        Index("ix_back_in_stock_contact", "contact_id", "created_at", "id"),
        Index(
            "ix_back_in_stock_notifying",
            "created_at",
            "id",
            postgresql_where=text("state = 'NOTIFYING'"),
        ),
        # A restock's range, oldest first, of those still waiting (migration 0020).
        Index(
            "ix_back_in_stock_waiting",
            "product_id",
            "created_at",
            "id",
            postgresql_where=text("state = 'WAITING'"),
        ),
    )


class Restock(Base):
    """A NotifyBackInStock call (migration 0010): the product as notified.
    Without a quantity, the range of subscriptions it answers (migration 0020):
    those waiting for it (its variant, or any), oldest first, up to the last
    one (`until_created_at`, `until_id`); the flow worker notifies them until
    none waits (`finished_at`). With a quantity (or none waiting) it is
    finished as it is made: its picked subscriptions are NOTIFYING."""

    __tablename__ = "marketing_restock"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    product_id: Mapped[str] = mapped_column(String(128))
    variant_id: Mapped[str] = mapped_column(String(128), default="")
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    product: Mapped[dict[str, Any]] = mapped_column(default=dict)
    picked: Mapped[int] = mapped_column(BigInteger, default=0)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, unique=True
    )  # the caller's retry key
    created_at: Mapped[datetime]
    until_created_at: Mapped[datetime | None]
    until_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_restock_open", "created_at", "id", postgresql_where=text("finished_at IS NULL")),
    )


class Engagement(Base):
    """What a person did with a provider's message, as its webhook reported it
    (migration 0011): one row per (provider, external_id), so a delivery
    repeated by the provider is applied once."""

    __tablename__ = "marketing_engagement"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(24))
    provider_type: Mapped[str] = mapped_column(String(128), default="")
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    email_sha256: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(String(128), default="")
    flow_id: Mapped[str] = mapped_column(String(128), default="")
    message_id: Mapped[str] = mapped_column(String(128), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    bounce_type: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(String(255), default="")
    effect: Mapped[str] = mapped_column(String(32), default="")
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_engagement_provider_id"),
        Index("ix_engagement_campaign_time", "campaign_id", "occurred_at"),  # migration 0013
        Index("ix_engagement_flow", "flow_id", "type", "occurred_at"),
        Index("ix_engagement_contact", "contact_id", "occurred_at"),
        Index("ix_engagement_occurred", "occurred_at"),
        Index("ix_engagement_person", "email_sha256", "occurred_at"),
    )


class ContactDay(Base):
    """Contacts created on a UTC day (migration 0013), kept by triggers on the
    contact table over several shard rows a day: a day's count is the sum of
    its rows; first/last bound the creation times of the day's contacts."""

    __tablename__ = "marketing_contact_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    contacts: Mapped[int] = mapped_column(BigInteger)
    first_created: Mapped[datetime]
    last_created: Mapped[datetime]


class AttributionPending(Base):
    """A person whose orders are to be attributed again (migration 0013):
    queued by triggers when an order is logged or a message is opened or
    clicked (an entry each time), drained by the attribution worker."""

    __tablename__ = "marketing_attribution_pending"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    contact_key: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_attribution_pending_person", "contact_key"),)


class AttributionWindow(Base):
    """The window the conversions were attributed with (one row, id 1)."""

    __tablename__ = "marketing_attribution_window"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    window_s: Mapped[int] = mapped_column(BigInteger)


class Conversion(Base):
    """An order and the message it is attributed to (service.reports.attribution)."""

    __tablename__ = "marketing_conversion"

    order_event_id: Mapped[str] = mapped_column(
        ForeignKey("marketing_event_log.id", ondelete="CASCADE"), primary_key=True
    )
    contact_key: Mapped[str] = mapped_column(String(64))
    ordered_at: Mapped[datetime]
    engagement_id: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[str] = mapped_column(String(128))
    flow_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    amount_nanos: Mapped[Decimal] = mapped_column(Numeric)

    __table_args__ = (
        Index("ix_conversion_person", "contact_key"),
        Index("ix_conversion_ordered", "ordered_at"),
        Index("ix_conversion_campaign", "campaign_id", "ordered_at"),
        Index("ix_conversion_flow", "provider", "flow_id", "ordered_at"),
    )


class EngagementReach(Base):
    """A person counted in one figure of a campaign, flow or flow message
    (migration 0013's trigger on the engagement table): once, however often
    the provider reports them."""

    __tablename__ = "marketing_engagement_reach"

    person: Mapped[str] = mapped_column(String(160), primary_key=True)  # first: erasure
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)


class EngagementFigures(Base):
    """The people counted in each figure of a campaign (scope_id), a flow or a
    flow's message (scope_id and message_id) at a provider: the sum of a
    scope's shard rows; first_at/last_at span its engagement."""

    __tablename__ = "marketing_engagement_figures"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sent: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    opened: Mapped[int] = mapped_column(BigInteger)
    clicked: Mapped[int] = mapped_column(BigInteger)
    bounced: Mapped[int] = mapped_column(BigInteger)
    unsubscribed: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]


class CampaignCache(Base):
    """The provider's campaigns and flows (type FLOW) as the dispatcher last read them
    (migration 0012; service/provider_catalogue). `metrics` holds the provider's figures:
    {"source", "timeframe", "statistics": {name: number}, "fetch_time"}, {} for none."""

    __tablename__ = "marketing_campaign_cache"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[CampaignType] = mapped_column(_pg_enum(CampaignType, "campaign_type"))
    status: Mapped[CampaignStatus] = mapped_column(_pg_enum(CampaignStatus, "campaign_status"))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_fetched_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    provider: Mapped[str] = mapped_column(String(32), default="")
    provider_status: Mapped[str] = mapped_column(String(64), default="")
    send_time: Mapped[datetime | None]
    trigger_type: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        Index("ix_marketing_campaign_cache_type_status", "type", "status"),
        Index("ix_campaign_cache_created", "created_at", "id"),
        UniqueConstraint("type", "external_id", name="uq_campaign_cache_type_external_id"),
    )


class Outbox(Base):
    """Work for the provider, committed in the same transaction as the change it
    describes. The relay publishes rows in `seq` order with Nats-Msg-Id = id."""

    __tablename__ = "marketing_outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    contact_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the email
    kind: Mapped[str] = mapped_column(String(64))
    # The kind's bus payload message, serialized (see bus.proto); empty once
    # the person was erased.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(
        _pg_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Provider attempts of the last delivery, and manual re-drives so far.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_marketing_outbox_status_seq", "status", "seq"),
        Index("ix_marketing_outbox_contact_key", "contact_key", "seq"),
        # Rows of many people's beginnings, for an erasure to find (migration 0019).
        Index(
            "ix_marketing_outbox_enrolments_begun",
            "seq",
            postgresql_where=text("kind = 'enrolments.begun' AND contact_key = ''"),
        ),
    )


class ContactSync(Base):
    """A full sync of every contact (migration 0004). The driver publishes the
    contacts in id order, a chunk at a time, and keeps its place here."""

    __tablename__ = "marketing_contact_sync"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    state: Mapped[ContactSyncState] = mapped_column(
        _pg_enum(ContactSyncState, "contact_sync_state")
    )
    checkpoint: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the last contact id published
    pending_sequence: Mapped[int | None] = mapped_column(BigInteger)
    pending_upper: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reached_end: Mapped[bool] = mapped_column(Boolean, default=False)
    total_contacts: Mapped[int] = mapped_column(BigInteger, default=0)
    published_contacts: Mapped[int] = mapped_column(BigInteger, default=0)
    published_chunks: Mapped[int] = mapped_column(BigInteger, default=0)
    reported_chunks: Mapped[int] = mapped_column(BigInteger, default=0)
    given_up_chunks: Mapped[int] = mapped_column(BigInteger, default=0)
    imported_contacts: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_contacts: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_jobs: Mapped[int] = mapped_column(BigInteger, default=0)
    last_provider_job: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cancel_requested_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_marketing_contact_sync_running",
            "state",
            unique=True,
            postgresql_where=text("state = 'RUNNING'"),
        ),
        Index("ix_marketing_contact_sync_created", "created_at", "id"),
    )


class ContactSyncChunk(Base):
    """A chunk published, and its result once recorded: a result delivered
    again finds `reported_at` set and counts nothing twice."""

    __tablename__ = "marketing_contact_sync_chunk"

    sync_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact_sync.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    contacts: Mapped[int | None] = mapped_column(Integer)
    published_at: Mapped[datetime | None]
    imported: Mapped[int | None] = mapped_column(Integer)
    failed: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None]


class ContactSyncError(Base):
    """A person of a sync the provider did not import. Personal data: cascades
    from the contact, so an erasure takes it too."""

    __tablename__ = "marketing_contact_sync_error"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    sync_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact_sync.id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("marketing_contact.id", ondelete="CASCADE")
    )
    sequence: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_marketing_contact_sync_error_sync", "sync_id", "id"),
        Index("ix_marketing_contact_sync_error_contact", "contact_id"),
    )
