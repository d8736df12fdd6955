"""Whatever a client sends, every route answers with one of ActiveCampaign's answers: a body
the route does not expect is an error answer (ApiError), never a crash (a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.sandbox.activecampaign.body import Call
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.errors import ApiError
from dispatcher.sandbox.activecampaign.routes import ROUTES
from dispatcher.sandbox.activecampaign.routing import Route
from dispatcher.sandbox.activecampaign.store import Account, seeded_account

NOW = 1_800_000_000.0
# The names the routes read, so generated bodies reach past the first check.
NAMES = [
    *("contact", "contacts", "email", "firstName", "fieldValues", "field", "value", "list"),
    *("status", "tag", "automation", "title", "type", "relid", "name", "stringid", "fields"),
    *("sender_url", "sender_reminder", "contactList", "contactTag", "contactAutomation"),
    *("fieldValue", "fieldRel", "connection", "ecomCustomer", "ecomOrder", "externalid"),
    *("externalcheckoutid", "connectionid", "customerid", "totalPrice", "currency", "source"),
    *("externalCreatedDate", "orderProducts", "abandoned_date", "price", "quantity", "id"),
    *("subscribe", "unsubscribe", "listid", "tags", "first_name", "eventTracking", "enabled"),
    *("eventTrackingEvent", "service", "logoUrl", "linkUrl"),
    *("webhook", "url", "events", "sources"),
    *("message", "fromname", "fromemail", "reply2", "subject", "html", "canSplitContent"),
    *("listIds", "messageId", "scheduledDate"),
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "2", "0", "²", "a@b.co", "EUR", "2027-01-01T00:00:00+00:00"]),
    st.text(max_size=8),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=6),
    ),
    max_leaves=25,
)
QUERIES = st.dictionaries(
    st.sampled_from(["email", "limit", "offset", "id_greater", "listid", "batchId", "search"]),
    st.sampled_from(["", "1", "x", "²", "-1", "a@b.co"]),
    max_size=3,
)
PARAMS = st.sampled_from(["1", "2", "999", "x", "²"])


def populated() -> Account:
    """An account with one of everything, so ids 1 and 2 often exist."""
    account = seeded_account(NOW)
    for route, document in [
        ("POST /api/3/fields", {"field": {"title": "City", "type": "text"}}),
        (
            "POST /api/3/lists",
            {"list": dict.fromkeys(("name", "stringid", "sender_url", "sender_reminder"), "n")},
        ),
        ("POST /api/3/contact/sync", {"contact": {"email": "a@b.co"}}),
        ("POST /api/3/tags", {"tag": {"tag": "vip"}}),
        (
            "POST /api/3/connections",
            {
                "connection": dict.fromkeys(
                    ("service", "externalid", "name", "logoUrl", "linkUrl"), "s"
                )
            },
        ),
        (
            "POST /api/3/ecomCustomers",
            {"ecomCustomer": {"connectionid": "1", "externalid": "c", "email": "a@b.co"}},
        ),
        (
            "POST /api/3/messages",
            {
                "message": dict.fromkeys(("fromemail", "reply2"), "a@b.co")
                | {"fromname": "n", "subject": "Hi %FIRSTNAME%", "html": "<p>%EMAIL%</p>"}
            },
        ),
        ("POST /api/3/campaign", {"name": "c", "type": "single"}),
    ]:
        _route(route).handle(account, Call((), {}, document, NOW))
    return account


def _route(name: str) -> Route:
    return next(r for r in ROUTES if f"{r.method} {r.template}" == name)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
@settings(max_examples=50, deadline=None)  # x 42 routes
@given(document=DOCUMENTS, query=QUERIES, param=PARAMS)
def test_any_body_gets_an_answer_or_an_api_error(
    route: Route, document: Any, query: dict[str, str], param: str
) -> None:
    account = populated()
    params = (param,) * route.pattern.groups
    try:
        status, answer = route.handle(account, Call(params, query, document, NOW, size=100))
    except ApiError as error:
        assert 400 <= error.status < 500
    else:
        assert 200 <= status < 300 and isinstance(answer, dict)
    settle_due(account, NOW + 60)  # whatever was queued applies or sends without a crash too
