"""Prometheus metrics of the service, served on MARKETING_METRICS_ADDRESS."""

from __future__ import annotations

from contextvars import ContextVar

from prometheus_client import Counter, Gauge, Histogram

# The caller of the RPC in hand, by its name in the auth file, set by the auth
# interceptor (service/api/auth.py); "" when unknown or authentication is off.
CALLER: ContextVar[str] = ContextVar("caller", default="")

RPC_REQUESTS = Counter(
    "marketing_rpc_requests",
    "RPCs handled, by method, status code and caller",
    ["method", "code", "caller"],
)
RPC_DURATION = Histogram(
    "marketing_rpc_duration_seconds",
    "Time to handle an RPC, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_ACCEPTED = Counter(
    "marketing_events_accepted", "Events accepted (not duplicates), by metric", ["metric"]
)
EVENTS_DUPLICATE = Counter("marketing_events_duplicate", "Events ignored as already accepted")
EVENTS_FALLBACK = Counter(
    "marketing_events_fallback",
    "Events stored in PostgreSQL because the bus did not acknowledge them",
)
CONSENT_RECORDS = Counter(
    "marketing_consent_records", "Consent records appended, by type and grant", ["type", "granted"]
)
UNSUBSCRIBES = Counter("marketing_unsubscribes", "Unsubscribes that changed state")
PREFERENCE_REQUESTS = Histogram(
    "marketing_preference_request_seconds",
    "Preference page requests, by what was asked (view, save, unsubscribe_all, "
    "subscribe_again, one_click) and the answer's status",
    ["action", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ONE_CLICK_APPLIED = Histogram(
    "marketing_preference_one_click_lag_seconds",
    "Time from a one-click unsubscribe's answer to its application (the address "
    "suppressed, the withdrawal recorded, the provider's work queued)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECONCILES = Counter(
    "marketing_reconciles",
    "ReconcileContact calls that reached the provider, by result (in_sync, repaired)",
    ["result"],
)
RECONCILE_DIFFERENCES = Counter(
    "marketing_reconcile_differences",
    "Differences (drift) ReconcileContact found, by field (custom properties as one)",
    ["field"],
)
SEGMENT_CHANGES = Counter(
    "marketing_segment_changes",
    "Contacts that joined or left a dynamic segment, by direction",
    ["direction"],
)
SEGMENT_EVALUATION_DURATION = Histogram(
    "marketing_segment_evaluation_seconds",
    "Time to evaluate a dynamic segment's membership, by scope (whole segment, or contacts)",
    ["scope"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60),
)
SEGMENT_MEMBERSHIP_LAG = Histogram(
    "marketing_segment_membership_lag_seconds",
    "From a contact's change (its row, consent, suppression, an event's acceptance) to its "
    "dynamic segments' membership being recorded, per contact drained",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SEGMENT_MEMBERS = Gauge(
    "marketing_segment_members",
    "Members of each segment, counted every segment refresher round",
    ["segment"],
)
FLOW_DECISIONS = Counter(
    "marketing_flow_decisions",
    "Flow enrolment decisions, by flow and outcome (enrolled, or the rejection reason)",
    ["flow", "outcome"],
)
FLOW_EXITS = Counter(
    "marketing_flow_exits", "Enrolments ended early, by flow and kind of reason", ["flow", "reason"]
)
TIMERS_FIRED = Counter("marketing_timers_fired", "Durable timers fired, by kind", ["kind"])
TIMER_LATENESS = Histogram(
    "marketing_timer_lateness_seconds",
    "From a timer's due time to its firing, by kind",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
ENGAGEMENT = Counter(
    "marketing_engagement",
    "Engagement the providers' webhooks reported, each counted once when recorded, by provider"
    " and type (delivered, opened, clicked, bounced, spam_complaint, unsubscribed,"
    " sms_unsubscribed, sent)",
    ["provider", "type"],
)
# The delivery queue as GetQueueStats reads it from PostgreSQL, refreshed every
# MARKETING_QUEUE_GAUGES_S by each process running the workers (every such
# process shows the same database-wide values: the alert rules take the max).
QUEUE_ITEMS = Gauge(
    "marketing_queue_items",
    "Delivery queue items, by state (pending, in_flight, failed), read from PostgreSQL",
    ["state"],
)
ATTRIBUTION_QUEUE = Gauge(
    "marketing_queue_attribution_entries",
    "Entries waiting for the attribution worker (marketing_attribution_pending: one per order "
    "or touch, so a person may have several), read from PostgreSQL",
)
QUEUE_OLDEST_AGE = Gauge(
    "marketing_queue_oldest_age_seconds",
    "Age of the oldest pending outbox row (the processing lag), and of the oldest failed one "
    "(since it failed), by state; 0 when there is none",
    ["state"],
)
# Engagement messages (EngagementReceived, one delivery of a provider's webhook)
# the engagement recorder gave up on: PostgreSQL refused their values even
# recorded alone (each logged with its id, and terminated: JetStream never
# delivers it again).
ENGAGEMENT_REJECTED = Counter(
    "marketing_engagement_rejected",
    "Engagement messages not recorded because PostgreSQL refused their values (logged with the"
    " message id, and terminated)",
)
