"""Prometheus metrics of the dispatcher."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "marketing_dispatcher_deliveries",
    "Deliveries finished, by kind and outcome",
    ["kind", "outcome"],
)
PUSH_NOT_OFFERED = Counter(
    "marketing_dispatcher_push_not_offered",
    "Device token changes delivered without a call: the provider has no push channel",
    ["registered"],
)
RETRIES = Counter(
    "marketing_dispatcher_retries", "Retryable provider failures, by operation", ["operation"]
)
PROVIDER_CALLS = Histogram(
    "marketing_dispatcher_provider_call_seconds",
    "Time of one provider call, by operation and result",
    ["operation", "result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "marketing_dispatcher_batch_size",
    "Items per provider call",
    ["operation"],
    buckets=(1, 10, 50, 100, 250, 500, 1000),
)
PROVIDER_UNKNOWN_OUTCOMES = Counter(
    "marketing_dispatcher_provider_unknown_outcomes",
    "Writes sent to a provider without idempotency keys whose outcome is unknown (a timeout or"
    " a dropped connection after sending): a retry may apply them twice",
    ["provider", "operation"],
)
BUDGET_CALLS = Counter(
    "marketing_dispatcher_budget_calls",
    "Calls reserved in the shared provider budget (tokens used), by rate bucket",
    ["bucket"],
)
BUDGET_WAIT = Histogram(
    "marketing_dispatcher_budget_wait_seconds",
    "Time a call waited for room in the shared provider budget, by operation and bucket",
    ["operation", "bucket"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BUDGET_KV_OPS = Counter(
    "marketing_dispatcher_budget_kv_operations",
    "NATS KV operations of the shared provider budget: get, update, conflict (a refused update)",
    ["operation"],
)
BUDGET_EDGE = Gauge(
    "marketing_dispatcher_budget_window_edge_seconds",
    "How closely the shared budget knows where the provider's fixed windows of a bucket begin "
    "(the width of the range, from the provider's RateLimit-Reset); -1 while unknown: the "
    "bucket's minute is then counted as a sliding one (Klaviyo's seconds are counted on the "
    "clock, but for an hour after a 429)",
    ["bucket"],
)
BUDGET_STALE = Counter(
    "marketing_dispatcher_budget_stale_reservations",
    "Reservations given back unused because they aged before the call could go, by operation",
    ["operation"],
)
BUDGET_STAMP_AGE = Histogram(
    "marketing_dispatcher_budget_stamp_age_seconds",
    "How long after its stamp in the shared provider budget a request's first bytes were "
    "written, by operation (the budget counts on each leaving within half its margin)",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
BUDGET_GIVEN_BACK = Counter(
    "marketing_dispatcher_budget_given_back",
    "Reservations given back unused because their call failed, was called off or was "
    "cancelled before its request sent a byte (no connection to be had, say; a cancel "
    "while reserving or waiting for a connection too), by operation",
    ["operation"],
)
BUDGET_LATE_REQUESTS = Counter(
    "marketing_dispatcher_budget_late_requests",
    "Requests whose budget stamp had aged past half the budget's margin as their first bytes "
    "were about to be written, by operation and what was done: restamped (it went on a stamp "
    "taken there, the budget having room at once) or called_off (nothing sent; sent again on a "
    "stamp taken outside httpx)",
    ["operation", "outcome"],
)
SYNC_NEWER_AT_PROVIDER = Counter(
    "marketing_dispatcher_sync_newer_at_provider",
    "People of a full sync whose profile or consent was not sent: a change newer than their"
    " chunk had reached the provider through the ordered path, by aspect",
    ["aspect"],
)
WEBHOOKS = Counter(
    "marketing_dispatcher_webhooks",
    "Webhook requests answered, by provider and outcome (accepted, refused, malformed, ignored,"
    " unavailable)",
    ["provider", "outcome"],
)
WEBHOOK_ENGAGEMENTS = Counter(
    "marketing_dispatcher_webhook_engagements",
    "Engagements the webhook receiver published, by provider and type",
    ["provider", "type"],
)
WEBHOOK_SECONDS = Histogram(
    "marketing_dispatcher_webhook_seconds",
    "Time to answer a webhook request, by provider",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CATALOGUE_REFRESHES = Counter(
    "marketing_dispatcher_catalogue_refreshes",
    "Catalogue refreshes (the provider's campaigns and flows) by outcome: published, failed",
    ["outcome"],
)
CATALOGUE_FIGURES_SKIPPED = Counter(
    "marketing_dispatcher_catalogue_figures_skipped",
    "Figures a catalogue refresh went without (the endpoint's limit far off, or a failure), by"
    " operation",
    ["operation"],
)
