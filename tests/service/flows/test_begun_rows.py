"""A decision's beginnings as KIND_ENROLMENTS_BEGUN outbox rows: how many go in one
message (a count and a byte cap), in what order, whose row it is, and what each
beginning says (the flow's shared fields with its own)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from marketing.bus.v1 import bus_pb2

from service.common.validation import email_key
from service.deliveries import outbox
from service.flows.definitions import (
    Entry,
    EntryRule,
    Exits,
    FlowDefinition,
    ProviderFlow,
    Trigger,
    TriggerKind,
)
from service.flows.enrolments import (
    BEGUN_MAX_BYTES,
    BEGUN_PER_MESSAGE,
    Addressed,
    begun_rows,
)

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
FLOW = FlowDefinition(
    id="back-in-stock",
    display_name="Back in stock",
    description="",
    trigger=Trigger(TriggerKind.BACK_IN_STOCK),
    entry=Entry(EntryRule.ONCE_PER_KEY, "subscription_id"),
    exits=Exits(),
    live=True,
    provider=ProviderFlow("Back in Stock", "Back in Stock Exit", "mkt_bis", "17"),
    completes_after=timedelta(days=1),
)


def _rows(
    count: int, *, email: str | None = None, context_bytes: int = 40
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, Addressed]]:
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "entry_key": f"key-{n}"} for n in range(count)
    ]
    addressed = {
        r["id"]: Addressed(
            email or f"person{n}@example.com", {"n": n, "padding": "x" * context_bytes}
        )
        for n, r in enumerate(rows)
    }
    return rows, addressed


def _messages(out: list[tuple[str, Any, bytes]]) -> list[bus_pb2.EnrolmentsBegun]:
    assert {kind for _, kind, _ in out} == {bus_pb2.KIND_ENROLMENTS_BEGUN}
    return [bus_pb2.EnrolmentsBegun.FromString(payload) for _, _, payload in out]


def test_a_thousand_beginnings_to_a_message_in_the_order_decided() -> None:
    rows, addressed = _rows(2 * BEGUN_PER_MESSAGE + 1)

    messages = _messages(begun_rows(FLOW, rows, addressed, NOW))

    assert [len(m.begun) for m in messages] == [BEGUN_PER_MESSAGE, BEGUN_PER_MESSAGE, 1]
    sent = [b.enrolment_id for m in messages for b in m.begun]
    assert sent == [str(r["id"]) for r in rows]


def test_no_message_passes_the_byte_cap_and_each_cut_short_is_an_even_share() -> None:
    rows, addressed = _rows(300, context_bytes=5000)  # about 5 KB a beginning: 104 would fit

    out = begun_rows(FLOW, rows, addressed, NOW)
    messages = _messages(out)

    assert all(len(payload) <= BEGUN_MAX_BYTES for _, _, payload in out)
    # 100 divides a provider call's thousand (the next share, 125, would not fit).
    assert [len(m.begun) for m in messages] == [100] * 3
    assert [b.enrolment_id for m in messages for b in m.begun] == [str(r["id"]) for r in rows]


def test_messages_cut_short_pack_a_provider_call_evenly() -> None:
    # About 900 bytes a beginning (a cart's lines): 580 fit the cap.
    rows, addressed = _rows(2 * BEGUN_PER_MESSAGE + 300, context_bytes=760)

    out = begun_rows(FLOW, rows, addressed, NOW)

    assert [len(m.begun) for m in _messages(out)] == [500] * 4 + [300]
    assert len(out[0][2]) + len(out[1][2]) > BEGUN_MAX_BYTES  # a thousand would not fit
    assert all(len(payload) <= BEGUN_MAX_BYTES for _, _, payload in out)


def test_beginnings_of_mixed_sizes_each_in_a_message_within_the_cap() -> None:
    small, small_addressed = _rows(100, context_bytes=100)
    large, large_addressed = _rows(3, context_bytes=BEGUN_MAX_BYTES // 2)
    rows = small[:50] + large + small[50:]

    out = begun_rows(FLOW, rows, small_addressed | large_addressed, NOW)
    messages = _messages(out)

    assert all(len(payload) <= BEGUN_MAX_BYTES for _, _, payload in out)
    # The 50 small ones with the first large one fit; 50 divides the thousand.
    assert [len(m.begun) for m in messages] == [50, 1, 1, 1 + 50]
    assert [b.enrolment_id for m in messages for b in m.begun] == [str(r["id"]) for r in rows]


def test_one_large_beginning_does_not_break_a_message_into_ever_smaller_shares() -> None:
    """A message is cut to an even share once; if the rest still does not fit, only
    the newest beginning moves on (not 500, 250, 200, 40, ...)."""
    small, small_addressed = _rows(999, context_bytes=100)
    (large,), large_addressed = _rows(1, context_bytes=BEGUN_MAX_BYTES - 1000)

    out = begun_rows(FLOW, [*small, large], small_addressed | large_addressed, NOW)

    assert [len(m.begun) for m in _messages(out)] == [500, 499, 1]


def test_a_beginning_over_the_cap_goes_alone_and_the_next_ones_after_it() -> None:
    (large,), large_addressed = _rows(1, context_bytes=BEGUN_MAX_BYTES + 1000)
    small, small_addressed = _rows(3)

    out = begun_rows(FLOW, [large, *small], small_addressed | large_addressed, NOW)

    assert [len(m.begun) for m in _messages(out)] == [1, 3]
    assert len(out[0][2]) > BEGUN_MAX_BYTES  # the relay fails what the bus cannot carry


def test_each_beginning_carries_the_flows_fields_and_its_own() -> None:
    rows, addressed = _rows(3)

    (message,) = _messages(begun_rows(FLOW, rows, addressed, NOW))

    for row, change in zip(rows, message.begun, strict=True):
        assert change.flow_id == "back-in-stock"
        assert change.active and not change.exit_reason
        assert (change.start_metric, change.exit_metric, change.property) == (
            "Back in Stock",
            "Back in Stock Exit",
            "mkt_bis",
        )
        assert change.automation_id == "17"
        assert change.change_time.ToDatetime(tzinfo=UTC) == NOW
        assert change.enrolment_id == str(row["id"])
        assert change.email == addressed[row["id"]].email
        assert change.entry_key == row["entry_key"]
        assert orjson.loads(change.context_json) == addressed[row["id"]].context
        assert not change.others_active


def test_a_row_of_one_persons_beginnings_is_theirs_and_of_many_no_ones() -> None:
    mine, my_addressed = _rows(3, email="ada@example.com")
    many, their_addressed = _rows(3)

    ((my_key, _, _),) = begun_rows(FLOW, mine, my_addressed, NOW)
    ((their_key, _, _),) = begun_rows(FLOW, many, their_addressed, NOW)

    assert my_key == email_key("ada@example.com")
    assert their_key == outbox.MANY_PEOPLE


def test_no_beginnings_no_rows() -> None:
    assert begun_rows(FLOW, [], {}, NOW) == []
