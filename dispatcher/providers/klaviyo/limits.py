"""What one Klaviyo call may carry (revision 2026-07-15; see shared/PROVIDERS.md),
as the `Limits` of the `Provider` interface."""

from __future__ import annotations

from types import MappingProxyType

from dispatcher.providers.base import Limits, OperationLimits
from dispatcher.providers.klaviyo.bodies import EVENTS_BULK_WRAPPING_BYTES
from dispatcher.providers.klaviyo.consent_calls import SUBSCRIBE, SUPPRESS, UNSUBSCRIBE, UNSUPPRESS

MB = 1024 * 1024
MAX_EVENTS_PER_JOB = 1000
MAX_SUBSCRIPTIONS_PER_JOB = 1000
MAX_UNSUBSCRIPTIONS_PER_JOB = 100
# Suppress and unsuppress jobs alike take at most 100 emails.
SUPPRESSION_BATCH = 100
# A bulk job's whole request body, as Klaviyo receives it. Counted in the JSON it
# is sent as, not in bus bytes (typed bodies are about half the size of their
# JSON): the job's own wrapping (bodies.EVENTS_BULK_WRAPPING_BYTES) plus each
# event's size as the client prepares it, its JSON:API resource in a profile
# entry of its own (KlaviyoClient.prepare_event).
EVENTS_JOB_BYTES = 5 * MB

LIMITS = Limits(
    create_events=OperationLimits(
        max_items=MAX_EVENTS_PER_JOB,
        max_bytes=EVENTS_JOB_BYTES,
        wrapping_bytes=EVENTS_BULK_WRAPPING_BYTES,
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
