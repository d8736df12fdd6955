"""The seed's unit cases for filter evaluation: each operator on each type,
matched and not, through PreviewSegment on one known contact."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from marketing.v1 import consent_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from tests.builders import upsert
from tests.harness import ServiceHarness
from tests.service.segments.test_segments_api import group

F = sp.SegmentFilter
OP = sp.FilterOperator
V = sp.FilterValue
DAY = 86400
TAG = uuid.uuid4().hex[:8]
EMAIL = f"operators-{TAG}@shop.example"


def when(seconds_ago: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    stamp.seconds -= seconds_ago
    return stamp


@pytest.fixture(scope="module")
def one_contact(segments_harness: ServiceHarness):
    stub = segments_harness.stub
    properties = struct_pb2.Struct()
    properties.update({"tag": TAG, "size": 3, "vip": True})
    stub.UpsertContact(
        upsert(
            EMAIL,
            loyalty_tier="gold",
            order_count=4,
            last_purchase_time=when(10 * DAY),
            custom_properties=properties,
        )
    )
    return stub


def _matches(stub, condition: F) -> bool:
    tag = F(custom_property="tag", operator=OP.FILTER_OPERATOR_EQUALS, value=V(string_value=TAG))
    both = group("and", [tag, condition])
    return stub.PreviewSegment(pb.PreviewSegmentRequest(filter=both)).contact_count == 1


def _field(field: sp.ContactField, op: sp.FilterOperator, value: V | None = None) -> F:
    return F(field=field, operator=op, value=value)


TIER = sp.CONTACT_FIELD_LOYALTY_TIER
ORDERS = sp.CONTACT_FIELD_ORDER_COUNT
BOUGHT = sp.CONTACT_FIELD_LAST_PURCHASE_TIME
DOMAIN = sp.CONTACT_FIELD_EMAIL_DOMAIN
CASES = [
    ("equals", _field(TIER, OP.FILTER_OPERATOR_EQUALS, V(string_value="gold")), True),
    ("equals, other", _field(TIER, OP.FILTER_OPERATOR_EQUALS, V(string_value="silver")), False),
    ("not_equals", _field(TIER, OP.FILTER_OPERATOR_NOT_EQUALS, V(string_value="silver")), True),
    ("contains", _field(DOMAIN, OP.FILTER_OPERATOR_CONTAINS, V(string_value="shop.")), True),
    ("contains, case", _field(DOMAIN, OP.FILTER_OPERATOR_CONTAINS, V(string_value="SHOP")), False),
    ("greater_than", _field(ORDERS, OP.FILTER_OPERATOR_GREATER_THAN, V(number_value=3)), True),
    (
        "greater_than, equal",
        _field(ORDERS, OP.FILTER_OPERATOR_GREATER_THAN, V(number_value=4)),
        False,
    ),
    ("at least", _field(ORDERS, OP.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL, V(number_value=4)), True),
    ("less_than", _field(ORDERS, OP.FILTER_OPERATOR_LESS_THAN, V(number_value=5)), True),
    (
        "in",
        _field(TIER, OP.FILTER_OPERATOR_IN, V(string_list=V.StringList(values=["a", "gold"]))),
        True,
    ),
    (
        "not_in",
        _field(TIER, OP.FILTER_OPERATOR_NOT_IN, V(string_list=V.StringList(values=["gold"]))),
        False,
    ),
    ("exists", _field(sp.CONTACT_FIELD_LOCATION, OP.FILTER_OPERATOR_EXISTS), False),
    (
        "within_last",
        _field(
            BOUGHT,
            OP.FILTER_OPERATOR_WITHIN_LAST,
            V(duration_value=duration_pb2.Duration(seconds=30 * DAY)),
        ),
        True,
    ),
    (
        "before_last",
        _field(
            BOUGHT,
            OP.FILTER_OPERATOR_BEFORE_LAST,
            V(duration_value=duration_pb2.Duration(seconds=30 * DAY)),
        ),
        False,
    ),
    (
        "time after",
        _field(BOUGHT, OP.FILTER_OPERATOR_GREATER_THAN, V(time_value=when(20 * DAY))),
        True,
    ),
    (
        "number property",
        F(custom_property="size", operator=OP.FILTER_OPERATOR_LESS_THAN, value=V(number_value=4)),
        True,
    ),
    (
        "bool property",
        F(custom_property="vip", operator=OP.FILTER_OPERATOR_EQUALS, value=V(bool_value=True)),
        True,
    ),
    (
        "property of another type",
        F(custom_property="size", operator=OP.FILTER_OPERATOR_EQUALS, value=V(string_value="3")),
        False,
    ),
    (
        "consent never assumed",
        F(
            consent=consent_pb2.CONSENT_TYPE_EMAIL,
            operator=OP.FILTER_OPERATOR_EQUALS,
            value=V(bool_value=True),
        ),
        False,
    ),
    (
        "not suppressed",
        F(
            flag=sp.CONTACT_FLAG_SUPPRESSED,
            operator=OP.FILTER_OPERATOR_EQUALS,
            value=V(bool_value=False),
        ),
        True,
    ),
    (
        "no such event",
        F(
            event=sp.EventCondition(event_type="placed_order"),
            operator=OP.FILTER_OPERATOR_EQUALS,
            value=V(number_value=0),
        ),
        True,
    ),
]


@pytest.mark.parametrize(("label", "condition", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_operator(one_contact, label: str, condition: F, expected: bool) -> None:
    assert _matches(one_contact, condition) is expected, label
