"""What one Klaviyo call may carry (revision 2026-07-15; see shared/PROVIDERS.md),
as the `Limits` of the `Provider` interface."""

from __future__ import annotations

from types import MappingProxyType

from dispatcher.providers.base import (
    CREATE_EVENTS,
    DELETE_PUSH_TOKEN,
    FIND_LIST,
    IMPORT_STATUS,
    READ_PERSON,
    REGISTER_PUSH_TOKEN,
    REQUEST_ERASURE,
    SEND_CAMPAIGN,
    START_IMPORT,
    UPSERT_PROFILE,
    Limits,
    OperationLimits,
    RateBucket,
    RateWindow,
)
from dispatcher.providers.klaviyo import imports
from dispatcher.providers.klaviyo.bodies import EVENTS_BULK_WRAPPING_BYTES
from dispatcher.providers.klaviyo.campaigns import CHANNELS
from dispatcher.providers.klaviyo.catalogue import (
    CAMPAIGN_VALUES,
    FIND_CONVERSION_METRIC,
    FLOW_VALUES,
    LIST_CAMPAIGNS,
    LIST_FLOWS,
)
from dispatcher.providers.klaviyo.consent_calls import SUBSCRIBE, SUPPRESS, UNSUBSCRIBE, UNSUPPRESS
from dispatcher.providers.klaviyo.enrolments import (
    ENROLMENT_EVENT,
    ENROLMENT_EVENTS,
    ENROLMENT_PROPERTY,
)
from dispatcher.providers.klaviyo.lists_calls import (
    ADD_TO_LIST,
    MAX_PROFILES_PER_CALL,
    REMOVE_FROM_LIST,
)

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
MAX_PROFILES_PER_IMPORT_JOB = 10_000
IMPORT_JOB_BYTES = 5 * MB
# A job's own body besides its profiles, a campaign's list named (imports.py).
IMPORT_JOB_WRAPPING_BYTES = imports.wrapping_bytes()


# Klaviyo's steady window, the one its RateLimit-Reset counts down.
STEADY_WINDOW_S = 60.0


def _burst(calls: int) -> RateWindow:
    """Klaviyo's 1-second window: counted as beginning at whole seconds of its clock
    (its windows are fixed ones; why this and not any alignment: dispatcher.budget)."""
    return RateWindow(calls, 1.0, clock_aligned=True)


def _per_endpoint(name: str, per_second: int, per_minute: int) -> tuple[RateBucket, ...]:
    """Klaviyo keeps a budget per endpoint: fixed 1-second and 1-minute windows."""
    return (RateBucket(name, (_burst(per_second), RateWindow(per_minute, STEADY_WINDOW_S))),)


# The buckets of the GET requests the multi-request calls make (each request names its own).
IMPORT_JOB = _per_endpoint("profile-bulk-import-jobs/{id}", 10, 150)
IMPORT_ERRORS = _per_endpoint("profile-bulk-import-jobs/{id}/import-errors", 10, 150)
PROFILES = _per_endpoint("profiles", 75, 750)
PROFILE_LISTS = _per_endpoint("profiles/{id}/lists", 3, 60)
# get_lists and create_list share a path, as add and remove profiles do: each is an endpoint
# of its own, with its own budget.
GET_LISTS = _per_endpoint("lists", 75, 750)
CREATE_LIST = (
    RateBucket(
        "lists (create)",
        (_burst(10), RateWindow(150, 60.0), RateWindow(150, 86_400.0)),
    ),
)
LIST_ADD = _per_endpoint("lists/{id}/relationships/profiles (add)", 10, 150)
LIST_REMOVE = _per_endpoint("lists/{id}/relationships/profiles (remove)", 10, 150)
# A profile upsert's endpoint, which an enrolment's property-only change also goes to.
PROFILE_IMPORTS = _per_endpoint("profile-import", 75, 750)
# The events worker's jobs and the enrolments' share one budget.
EVENTS_BULK = _per_endpoint("event-bulk-create-jobs", 10, 150)
# create_event, one event a request: an enrolment plan's only event. (The events worker's
# calls reserve event-bulk-create-jobs even when they carry one event and so go here: at
# most 150 a minute of this endpoint's 3,500 are not counted in this bucket.)
SINGLE_EVENTS = _per_endpoint("events", 350, 3500)
# The catalogue refresh's (catalogue.py): list pages, and the reporting endpoints, each with
# a daily window besides (PROVIDERS-API.md, "Reporting": 1/s, 2/m, 225/day).
CAMPAIGNS = _per_endpoint("campaigns", 10, 150)
FLOWS = _per_endpoint("flows", 3, 60)
# A campaign send's requests (campaigns.py), each endpoint with its own budget; finding the
# campaign by name draws from get_campaigns' (CAMPAIGNS), which the catalogue shares.
GET_CAMPAIGN = _per_endpoint("campaigns/{id}", 10, 150)
CREATE_CAMPAIGN = _per_endpoint("campaigns (create)", 10, 150)
ASSIGN_TEMPLATE = _per_endpoint("campaign-message-assign-template", 10, 150)
SEND_CAMPAIGN_JOB = _per_endpoint("campaign-send-jobs", 10, 150)
CREATE_TEMPLATE = _per_endpoint("templates (create)", 75, 750)
DELETE_TEMPLATE = _per_endpoint("templates/{id} (delete)", 75, 750)
METRICS = _per_endpoint("metrics", 10, 150)


def _reporting(name: str) -> tuple[RateBucket, ...]:
    windows = (_burst(1), RateWindow(2, STEADY_WINDOW_S), RateWindow(225, 86_400.0))
    return (RateBucket(name, windows),)


CAMPAIGN_VALUES_REPORTS = _reporting("campaign-values-reports")
FLOW_VALUES_REPORTS = _reporting("flow-values-reports")

# Each operation's endpoint and its burst / steady limits (shared/PROVIDERS.md).
RATES = MappingProxyType(
    {
        UPSERT_PROFILE: PROFILE_IMPORTS,
        CREATE_EVENTS: EVENTS_BULK,
        SUBSCRIBE: _per_endpoint("profile-subscription-bulk-create-jobs", 75, 750),
        UNSUBSCRIBE: _per_endpoint("profile-subscription-bulk-delete-jobs", 75, 750),
        SUPPRESS: _per_endpoint("profile-suppression-bulk-create-jobs", 75, 750),
        UNSUPPRESS: _per_endpoint("profile-suppression-bulk-delete-jobs", 75, 750),
        REQUEST_ERASURE: _per_endpoint("data-privacy-deletion-jobs", 3, 60),
        REGISTER_PUSH_TOKEN: _per_endpoint("push-tokens", 75, 750),
        DELETE_PUSH_TOKEN: _per_endpoint("push-tokens/{id} (delete)", 3, 60),
        START_IMPORT: _per_endpoint("profile-bulk-import-jobs", 10, 150),
        # Paced per request (PACED): the job, then each page of its import errors.
        IMPORT_STATUS: (*IMPORT_JOB, *IMPORT_ERRORS),
        # Paced per request: get_profiles, then each page of get_profile_lists when a
        # newsletter list is configured.
        READ_PERSON: (*PROFILES, *PROFILE_LISTS),
        # Paced per request: get_lists, then create_list when no list has the name.
        FIND_LIST: (*GET_LISTS, *CREATE_LIST),
        # Paced per request: get_profiles per 100 emails, then the list's change.
        ADD_TO_LIST: (*PROFILES, *LIST_ADD),
        REMOVE_FROM_LIST: (*PROFILES, *LIST_REMOVE),
        # Paced per request: get_campaigns (each page), create_campaign when none is found,
        # an email's template (create, assign, delete), the send job, and get_campaign when
        # the send job is refused or a found campaign's message is not named.
        SEND_CAMPAIGN: (
            *CAMPAIGNS,
            *CREATE_CAMPAIGN,
            *CREATE_TEMPLATE,
            *ASSIGN_TEMPLATE,
            *DELETE_TEMPLATE,
            *SEND_CAMPAIGN_JOB,
            *GET_CAMPAIGN,
        ),
        # An enrolment plan's calls (enrolments.py), each one request.
        ENROLMENT_EVENTS: EVENTS_BULK,
        ENROLMENT_EVENT: SINGLE_EVENTS,
        ENROLMENT_PROPERTY: PROFILE_IMPORTS,
        # The catalogue refresh: list calls paced per page (PACED), a report one request.
        LIST_CAMPAIGNS: CAMPAIGNS,
        LIST_FLOWS: FLOWS,
        FIND_CONVERSION_METRIC: METRICS,
        CAMPAIGN_VALUES: CAMPAIGN_VALUES_REPORTS,
        FLOW_VALUES: FLOW_VALUES_REPORTS,
    }
)
# The calls that may make several requests: each of their requests is sent inside the
# pacer, with its own bucket. Every other call is one request, reserved by the gate as a whole.
PACED = frozenset(
    {
        IMPORT_STATUS,
        READ_PERSON,
        FIND_LIST,
        ADD_TO_LIST,
        REMOVE_FROM_LIST,
        SEND_CAMPAIGN,
        LIST_CAMPAIGNS,
        LIST_FLOWS,
        FIND_CONVERSION_METRIC,
    }
)

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
    rates=RATES,
    # A token deleted is permission revoked: compliance work, like consent.
    compliance=frozenset(
        {SUBSCRIBE, UNSUBSCRIBE, SUPPRESS, UNSUPPRESS, REQUEST_ERASURE, DELETE_PUSH_TOKEN}
    ),
    import_profiles=OperationLimits(
        max_items=MAX_PROFILES_PER_IMPORT_JOB,
        max_bytes=IMPORT_JOB_BYTES,
        wrapping_bytes=IMPORT_JOB_WRAPPING_BYTES,
    ),
    paces_requests=PACED,
    lists=MappingProxyType(
        {
            ADD_TO_LIST: OperationLimits(max_items=MAX_PROFILES_PER_CALL),
            REMOVE_FROM_LIST: OperationLimits(max_items=MAX_PROFILES_PER_CALL),
        }
    ),
    enrolments=MappingProxyType(
        {
            # An event's size counts the profile properties sent with it (enrolments.py).
            ENROLMENT_EVENTS: OperationLimits(
                max_items=MAX_EVENTS_PER_JOB,
                max_bytes=EVENTS_JOB_BYTES,
                wrapping_bytes=EVENTS_BULK_WRAPPING_BYTES,
            ),
            ENROLMENT_EVENT: OperationLimits(max_items=1),
            ENROLMENT_PROPERTY: OperationLimits(max_items=1),
        }
    ),
    offers_push=True,
    campaign_channels=frozenset(CHANNELS),
)
