"""Page tokens over gRPC: only tokens the service signed are taken, by all three
lists; anything else a caller sends is INVALID_ARGUMENT naming page_token."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from marketing.v1 import service_pb2 as pb

from tests.builders import upsert
from tests.harness import ServiceHarness, field_violations, unique_email

ListCall = Callable[[Any, str], Any]


def _list_contacts(stub: Any, token: str) -> Any:
    return stub.ListContacts(pb.ListContactsRequest(page_size=1, page_token=token))


def _list_failed(stub: Any, token: str) -> Any:
    return stub.ListFailedDeliveries(pb.ListFailedDeliveriesRequest(page_size=1, page_token=token))


@pytest.fixture(scope="module")
def parent(harness: ServiceHarness) -> str:
    """A contact with consents, so its list has pages."""
    email = unique_email("tokens")
    name: str = harness.stub.UpsertContact(upsert(email)).contact.name
    for _ in range(2):
        harness.stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="t"))
    return name


@pytest.fixture(scope="module")
def lists(parent: str) -> dict[str, ListCall]:
    def list_consents(stub: Any, token: str) -> Any:
        request = pb.ListConsentsRequest(parent=parent, page_size=1, page_token=token)
        return stub.ListConsents(request)

    return {
        "ListContacts": _list_contacts,
        "ListConsents": list_consents,
        "ListFailedDeliveries": _list_failed,
    }


def _unsigned(scope: str, cursor: Any) -> str:
    """A token as the service wrote them before they were signed: base64 of
    {"s": scope, "c": cursor}. Anyone could make one."""
    raw = json.dumps({"s": scope, "c": cursor}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _assert_rejected(call: ListCall, stub: Any, token: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call(stub, token)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert field_violations(err.value) == {"page_token": "INVALID_PAGE_TOKEN"}


_SOME_ID = str(uuid.uuid4())
# Unsigned, these were taken as they are: most came back INTERNAL from the
# driver or PostgreSQL, the rest silently paged from a made-up place.
FORGED = {
    "ListContacts": [
        {"t": "0001-01-01T00:00:00-12:00", "i": _SOME_ID},  # before year 1 in UTC
        {"t": "9999-12-31T23:59:59+00:00", "i": 12},  # a number where an id belongs
        {"t": "2024-01-01T00:00:00", "i": _SOME_ID},  # no time zone
        {"t": 1, "i": _SOME_ID},
    ],
    "ListConsents": [
        {"t": "2024-01-01T00:00:00+00:00", "i": 2**64},  # beyond int64
        {"t": "2024-01-01T00:00:00+00:00", "i": "1e400"},
        {"t": "0001-01-01T00:00:00-12:00", "i": 1},
    ],
    "ListFailedDeliveries": [{"s": 2**63}, {"s": -(2**70)}, {"s": True}],
}


def _scope(method: str, parent: str) -> str:
    return {
        "ListContacts": "contacts",
        "ListConsents": f"consents:{parent}",
        "ListFailedDeliveries": "failedDeliveries",
    }[method]


@pytest.mark.parametrize(
    ("method", "cursor"), [(m, c) for m, cursors in FORGED.items() for c in cursors]
)
def test_forged_cursor_is_invalid_argument(
    stub: Any, lists: dict[str, ListCall], parent: str, method: str, cursor: Any
) -> None:
    _assert_rejected(lists[method], stub, _unsigned(_scope(method, parent), cursor))


@pytest.mark.parametrize("method", sorted(FORGED))
def test_a_well_formed_unsigned_token_is_refused(
    stub: Any, harness: ServiceHarness, lists: dict[str, ListCall], parent: str, method: str
) -> None:
    """Cursor values the list could use, but not signed by the service."""
    cursor = {
        "ListContacts": {"t": "2020-01-01T00:00:00+00:00", "i": _SOME_ID},
        "ListConsents": {"t": "2020-01-01T00:00:00+00:00", "i": 1},
        "ListFailedDeliveries": {"s": 1},
    }[method]
    _assert_rejected(lists[method], stub, _unsigned(_scope(method, parent), cursor))


@pytest.fixture
def two_failed_deliveries(harness: ServiceHarness) -> Iterator[None]:
    """Enough for a second page; removed again, so no later test retries them."""
    key = f"tokens-{uuid.uuid4().hex}"
    harness.sql(
        "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, attempts, "
        "retry_count) SELECT gen_random_uuid(), :key, 'contact.upserted', '{}', 'FAILED', 1, 0 "
        "FROM generate_series(1, 2)",
        key=key,
    )
    yield
    harness.sql("DELETE FROM marketing_outbox WHERE contact_key = :key", key=key)


@pytest.mark.parametrize("method", sorted(FORGED))
@pytest.mark.usefixtures("two_failed_deliveries")
def test_an_edited_token_is_refused(stub: Any, lists: dict[str, ListCall], method: str) -> None:
    for _ in range(2):
        stub.UpsertContact(upsert(unique_email("edited")))
    token = lists[method](stub, "").next_page_token
    assert token, "the list has a second page"
    lists[method](stub, token)  # the token as given is taken
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1  # one bit of the cursor
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    _assert_rejected(lists[method], stub, edited)


def test_a_consent_token_is_bound_to_its_contact(stub: Any, parent: str) -> None:
    token = stub.ListConsents(pb.ListConsentsRequest(parent=parent, page_size=1)).next_page_token
    other = stub.UpsertContact(upsert(unique_email())).contact.name
    with pytest.raises(grpc.RpcError) as err:
        stub.ListConsents(pb.ListConsentsRequest(parent=other, page_token=token))
    assert field_violations(err.value) == {"page_token": "INVALID_PAGE_TOKEN"}


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(),
        st.text(max_size=30),
        st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
        st.uuids().map(str),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
_cursors = st.fixed_dictionaries(
    {}, optional={"t": _json_values, "i": _json_values, "s": _json_values}
)
_tokens = st.one_of(
    st.text(min_size=1, max_size=200),
    st.binary(min_size=1, max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    st.tuples(st.sampled_from(sorted(FORGED)), _cursors | _json_values),
)


@given(token=_tokens)
def test_no_token_is_ever_internal(
    stub: Any, lists: dict[str, ListCall], parent: str, token: Any
) -> None:
    """Whatever a caller sends as page_token, all three lists answer
    INVALID_ARGUMENT naming it (no token made up by a caller is valid)."""
    if isinstance(token, tuple):
        token = _unsigned(_scope(token[0], parent), token[1])
    assume(_is_utf8(token))  # protobuf strings are UTF-8; a lone surrogate cannot be sent
    for call in lists.values():
        _assert_rejected(call, stub, token)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
