"""An EnrolmentChanged delivery as the providers take it (`translate.enrolment_change`): every
field carried, the context read as a JSON object, the time the service decided it (else the
delivery's), `others_active` only on an end, and one no provider could be sent refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_timestamp

from dispatcher.delivery.translate import enrolment_change
from dispatcher.providers.base import EnrolmentChange
from tests.bus_helpers import delivery

CREATED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
DECIDED = datetime(2026, 11, 2, 9, 29, 58, tzinfo=UTC)


def _delivery(**fields: object) -> bus_pb2.Delivery:
    return delivery(
        id="d",
        kind=bus_pb2.KIND_ENROLMENT_CHANGED,
        contact_key="k",
        sequence=1,
        payload=bus_pb2.EnrolmentChanged(**fields),  # type: ignore[arg-type]
        created=CREATED,
    )


def test_every_field_is_carried() -> None:
    change = enrolment_change(
        _delivery(
            flow_id="abandoned-cart",
            enrolment_id="e-1",
            email="ada@example.com",
            active=False,
            exit_reason="event:placed_order",
            start_metric="Started",
            exit_metric="Exited",
            property="flow_abandoned_cart",
            automation_id="7",
            context_json=b'{"cart_id": "c-1", "lines": [{"sku": "mug"}]}',
            entry_key="c-1",
            change_time=to_timestamp(DECIDED),
            others_active=True,
        )
    )

    assert change == EnrolmentChange(
        flow_id="abandoned-cart",
        enrolment_id="e-1",
        email="ada@example.com",
        active=False,
        time=DECIDED,
        exit_reason="event:placed_order",
        start_metric="Started",
        exit_metric="Exited",
        profile_property="flow_abandoned_cart",
        automation_id="7",
        context={"cart_id": "c-1", "lines": [{"sku": "mug"}]},
        entry_key="c-1",
        others_active=True,
    )


def test_others_active_is_an_ends_only() -> None:
    """A beginning leaves nothing of the flow's state to keep: it is read as False there."""
    fields = {"enrolment_id": "e-1", "email": "a@b.co", "others_active": True}

    assert enrolment_change(_delivery(active=False, **fields)).others_active
    assert not enrolment_change(_delivery(active=True, **fields)).others_active


def test_without_a_context_or_a_time_the_context_is_empty_and_the_time_the_deliverys() -> None:
    change = enrolment_change(_delivery(enrolment_id="e-1", email="a@b.co", active=True))

    assert (change.context, change.time) == ({}, CREATED)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": ""}, "names no email"),
        ({"context_json": b"[1]"}, "not a JSON object"),
        ({"context_json": b"{nope"}, None),
    ],
)
def test_a_change_no_provider_could_be_sent_is_refused(
    fields: dict[str, object], message: str | None
) -> None:
    with pytest.raises(ValueError, match=message):
        enrolment_change(_delivery(**({"enrolment_id": "e-1", "email": "a@b.co"} | fields)))


def test_a_delivery_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"enrolment\.changed"):
        enrolment_change(bus_pb2.Delivery(type=bus_pb2.KIND_CONTACT_ERASED))
