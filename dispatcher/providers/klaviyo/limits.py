"""What one Klaviyo call may carry (revision 2026-07-15; see shared/PROVIDERS.md),
as the `Limits` of the `Provider` interface."""

from __future__ import annotations

from types import MappingProxyType

from dispatcher.providers.base import Limits, OperationLimits
from dispatcher.providers.klaviyo.consent_calls import SUBSCRIBE, SUPPRESS, UNSUBSCRIBE, UNSUPPRESS

MB = 1024 * 1024
MAX_EVENTS_PER_JOB = 1000
MAX_SUBSCRIPTIONS_PER_JOB = 1000
MAX_UNSUBSCRIPTIONS_PER_JOB = 100
# Suppress and unsuppress jobs alike take at most 100 emails.
SUPPRESSION_BATCH = 100
EVENTS_JOB_BYTES = 5 * MB  # a bulk job's request body
# The bus messages of a bulk job's events are counted against less than the
# job's 5 MB: the JSON:API wrapping of each event (metric, profile, time,
# unique_id) and of the job comes on top.
EVENTS_JOB_PAYLOAD_BYTES = 4_000_000

LIMITS = Limits(
    create_events=OperationLimits(
        max_items=MAX_EVENTS_PER_JOB, payload_bytes=EVENTS_JOB_PAYLOAD_BYTES
    ),
    consent=MappingProxyType(
        {
            SUBSCRIBE: OperationLimits(max_items=MAX_SUBSCRIPTIONS_PER_JOB),
            UNSUPPRESS: OperationLimits(max_items=SUPPRESSION_BATCH),
            UNSUBSCRIBE: OperationLimits(max_items=MAX_UNSUBSCRIPTIONS_PER_JOB),
            SUPPRESS: OperationLimits(max_items=SUPPRESSION_BATCH),
        }
    ),
)
