"""What one ActiveCampaign call may carry and the budgets it draws from (shared/PROVIDERS.md,
PROVIDERS-API.md), as the `Limits` of the `Provider` interface.

ActiveCampaign keeps one budget per account, 5 requests/s shared by every key and every /api/3
path; bulk import adds 100 calls a minute of its own; event tracking (trackcmp) is another host
whose limits are not published, given 5/s here like the sandbox. An import of one contact
draws from a bucket of 20 a minute instead of bulk import's. Each operation below is one
provider method; the budget counts its HTTP requests, not its calls: the client sends each
request inside its pacer, with the buckets that request draws from (`API_BUCKETS`,
`IMPORT_BUCKETS`, `SINGLE_IMPORT_BUCKETS`, `TRACKING_BUCKETS`; `paces_requests`), as many as
a call turns out to make.
Most make one HTTP request once the ids they need are remembered; some look before they
write (requests per call, steady state):

    upsert_profile 1        consent_record 1        list_status 1 per list
    create_events 1 (a tracked event) or 2 (an order or cart: look, write)
    unsuppress 1-2, suppress 1-2 (look at the contact's tags, then change them if needed)
    request_erasure 1-2     read_person 2           start_import 1, import_status 1
    enrol_automation 1-2 (the contact's enrolments, then an enrolment unless one runs)
    remove_automation 1 + one per enrolment removed
    list_join 1-2, list_leave 1-2 (the contact's look-up unless remembered, its status)
    find_list 0 once remembered; else 1 look (a page of 100 lists so named), + 1 create
    send_campaign 4 (look for the campaign, its message, the campaign, its edit); 1 when
        found sent already; the first use of its fields as below

The first use of a custom field, the suppression tag, the store's connection or a person's
e-commerce customer adds a look-up and a create, once per process. A list whose stringid is
taken adds a look and a create per try, and a list status refused as "related_missing" one
look at the list (lists.py).
"""

from __future__ import annotations

from types import MappingProxyType

from dispatcher.providers.base import (
    CREATE_EVENTS,
    FIND_LIST,
    IMPORT_STATUS,
    READ_PERSON,
    REQUEST_ERASURE,
    SEND_CAMPAIGN,
    START_IMPORT,
    UPSERT_PROFILE,
    Limits,
    OperationLimits,
    RateBucket,
    RateWindow,
)

# The consent operations (see consent_calls.py), and the automation operations: one of our
# enrolments' beginning and end (`plan_enrolments`), a call each (no bulk call exists).
CONSENT_RECORD = "consent_record"
LIST_STATUS = "list_status"
UNSUPPRESS = "unsuppress"
SUPPRESS = "suppress"
ENROL_AUTOMATION = "enrol_automation"
REMOVE_AUTOMATION = "remove_automation"
# The list operations (`plan_lists`, lists.py): into a segment's list, and out of it. A leave
# is compliance work: it is what stops the list's campaigns reaching someone who left the
# email audience (withdrew consent, was suppressed); a join is not.
LIST_JOIN = "list_join"
LIST_LEAVE = "list_leave"
# The catalogue refresh (catalogue.py): a page of campaigns, of automations, a request each.
LIST_CAMPAIGNS = "list_campaigns"
LIST_AUTOMATIONS = "list_automations"

MAX_CONTACTS_PER_IMPORT = 250
# "at most 399,999 bytes" for the whole request body of a bulk import.
IMPORT_BODY_BYTES = 399_999
# The longest list id a campaign's import makes room for (ActiveCampaign's are numbers); a
# longer one still goes, the import's real size checked before it is sent (imports.py).
MAX_LIST_ID_DIGITS = 20
# A campaign's import names its list on every contact (at most a call's 250).
# (Quoted: an id too large for a number goes as text.)
_SUBSCRIBE_BYTES = len(b',"subscribe":[{"listid":""}]') + MAX_LIST_ID_DIGITS
# The body of a bulk import besides its contacts (imports.py sends no automations), with room
# for a campaign's list on each contact.
IMPORT_WRAPPING_BYTES = (
    len(b'{"contacts":[],"exclude_automations":true}') + MAX_CONTACTS_PER_IMPORT * _SUBSCRIBE_BYTES
)

ACCOUNT = RateBucket("account", (RateWindow(5, 1.0),))
BULK_IMPORT = RateBucket("bulk_import", (RateWindow(100, 60.0),))
# A bulk import of one contact counts against this bucket instead (PROVIDERS-API.md: 20
# single-contact requests a minute); packing's tails and narrowing make such imports.
SINGLE_CONTACT_IMPORT = RateBucket("bulk_import_single_contact", (RateWindow(20, 60.0),))
EVENT_TRACKING = RateBucket("event_tracking", (RateWindow(5, 1.0),))

# What one request draws from: any /api/3 request, a bulk import (of several contacts, of
# one), a tracked event (trackcmp).
API_BUCKETS = (ACCOUNT,)
IMPORT_BUCKETS = (ACCOUNT, BULK_IMPORT)
SINGLE_IMPORT_BUCKETS = (ACCOUNT, SINGLE_CONTACT_IMPORT)
TRACKING_BUCKETS = (EVENT_TRACKING,)

RATES = MappingProxyType(
    {
        UPSERT_PROFILE: API_BUCKETS,
        # Tracked events go to trackcmp; placed orders and abandoned carts, which arrive as
        # events too, are e-commerce objects under /api/3. Each request names its own
        # bucket (paces_requests), so a tracked event spends only event tracking's.
        CREATE_EVENTS: (EVENT_TRACKING, ACCOUNT),
        CONSENT_RECORD: API_BUCKETS,
        LIST_STATUS: API_BUCKETS,
        UNSUPPRESS: API_BUCKETS,
        SUPPRESS: API_BUCKETS,
        REQUEST_ERASURE: API_BUCKETS,
        START_IMPORT: (ACCOUNT, BULK_IMPORT, SINGLE_CONTACT_IMPORT),
        IMPORT_STATUS: API_BUCKETS,
        READ_PERSON: API_BUCKETS,
        ENROL_AUTOMATION: API_BUCKETS,
        REMOVE_AUTOMATION: API_BUCKETS,
        FIND_LIST: API_BUCKETS,
        LIST_JOIN: API_BUCKETS,
        LIST_LEAVE: API_BUCKETS,
        LIST_CAMPAIGNS: API_BUCKETS,
        LIST_AUTOMATIONS: API_BUCKETS,
        SEND_CAMPAIGN: API_BUCKETS,
    }
)

# Every consent, list and automation operation changes one contact per HTTP request, so a
# call carries one person.
_ONE_PERSON = OperationLimits(max_items=1)

LIMITS = Limits(
    # Event tracking takes one event per request (no bulk endpoint); the body is a small form.
    create_events=OperationLimits(max_items=1),
    consent=MappingProxyType(
        {
            CONSENT_RECORD: _ONE_PERSON,
            LIST_STATUS: _ONE_PERSON,
            UNSUPPRESS: _ONE_PERSON,
            SUPPRESS: _ONE_PERSON,
        }
    ),
    rates=RATES,
    compliance=frozenset(
        {CONSENT_RECORD, LIST_STATUS, UNSUPPRESS, SUPPRESS, REQUEST_ERASURE, LIST_LEAVE}
    ),
    import_profiles=OperationLimits(
        max_items=MAX_CONTACTS_PER_IMPORT,
        max_bytes=IMPORT_BODY_BYTES,
        wrapping_bytes=IMPORT_WRAPPING_BYTES,
    ),
    paces_requests=frozenset(RATES),  # every operation: a call may make several requests
    lists=MappingProxyType({LIST_JOIN: _ONE_PERSON, LIST_LEAVE: _ONE_PERSON}),
    enrolments=MappingProxyType({ENROL_AUTOMATION: _ONE_PERSON, REMOVE_AUTOMATION: _ONE_PERSON}),
    # The API makes email campaigns only (campaigns.py).
    campaign_channels=frozenset({"email"}),
)
