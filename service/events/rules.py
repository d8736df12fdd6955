"""Behavioural events: validated at the door, logged, queued for the provider."""

from __future__ import annotations

import functools
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import orjson

from service.common import validation as check
from service.errors import Violations
from service.events.event_log import EventRecord
from service.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE

MAX_BATCH = 1000
PRODUCT_VIEWED = "product_viewed"
ADDED_TO_CART = "added_to_cart"
PLACED_ORDER = "placed_order"
CART_ABANDONED = "cart_abandoned"
TYPED_EVENTS = (PRODUCT_VIEWED, ADDED_TO_CART, PLACED_ORDER, CART_ABANDONED)
_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,126}$")
# Printable ASCII: safe as a NATS header value and as Klaviyo's unique_id.
_MAY_BREAK_SHAPE_LIMITS = 2 * check.MAX_ARRAY_ITEMS
_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


class MoneyField(NamedTuple):  # a tuple: one is made per amount on the ingest hot path
    path: str  # dotted path inside the payload, e.g. "order.total"
    currency_code: str
    units: int
    nanos: int


# The per-event classes below are not frozen: one of each is made for every
# event ingested, and a frozen dataclass's __init__ costs twice as much.
@dataclass(slots=True)
class EventInput:
    """An event as the API hands it over. `type` is the payload case name
    (or "" when the request had none) and `name` the custom event's name."""

    type: str
    email: str
    event_id: str = ""
    occur_time: datetime | None = None
    name: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    money: tuple[MoneyField, ...] = ()
    body: bytes = b""  # the bus body of field `type`, serialized (see bus_body)


@dataclass(slots=True)
class TrackResult:
    event_id: str
    duplicate: bool


def metric_name(e: EventInput) -> str:
    return e.name if e.type == "custom" else e.type


def validate_event(
    v: Violations, e: EventInput, prefix: str, now: datetime, skew: timedelta
) -> bytes:
    """Check the event; returns its payload encoded as JSON (b"" if unknown type)."""
    check.check_email(v, f"{prefix}email", e.email)
    if e.event_id and not _EVENT_ID.fullmatch(e.event_id):
        v.add(
            f"{prefix}event_id", "INVALID_EVENT_ID", "1-128 printable ASCII characters, no spaces"
        )
    check.check_not_future(v, f"{prefix}occur_time", e.occur_time, now, skew)
    rules = _PAYLOAD_RULES.get(e.type)
    if rules is None:
        v.add(
            prefix.rstrip(".") or "event",
            "UNKNOWN_EVENT_TYPE",
            "set exactly one known payload: product_viewed, added_to_cart, placed_order, "
            "cart_abandoned or custom",
        )
        return b""
    rules(v, f"{prefix}{e.type}.", e)
    for m in e.money:
        if _plainly_good(m):
            continue  # the full check, and its field path, only where it may find something
        field = f"{prefix}{e.type}.{m.path}"
        if check.check_money(v, field, m.currency_code, m.units, m.nanos, allow_negative=False):
            _GOOD_CURRENCIES.add(m.currency_code)
    return _check_encoded(v, e, f"{prefix}{e.type}")


# Currency codes seen to pass check_money: at most 26³ three-letter strings.
_GOOD_CURRENCIES: set[str] = set()


def _plainly_good(m: MoneyField) -> bool:
    """True only where check_money(allow_negative=False) finds nothing: a
    currency that passed before, and units and nanos in range, not negative."""
    return (
        m.currency_code in _GOOD_CURRENCIES
        and 0 <= m.units <= check.MAX_MONEY_UNITS
        and 0 <= m.nanos <= 999_999_999
    )


def _check_encoded(v: Violations, e: EventInput, field: str) -> bytes:
    """Encode the payload once (the event log keeps these very bytes as its
    JSON document) and check the provider's limits on them: the length is the
    exact UTF-8 size."""
    encoded = orjson.dumps(e.payload)
    if len(encoded) > check.MAX_EVENT_BYTES:
        v.add(field, "EVENT_TOO_LARGE", f"larger than the provider's {check.MAX_EVENT_BYTES} bytes")
    elif e.type != "custom" and len(encoded) > _MAY_BREAK_SHAPE_LIMITS:
        # Only a payload this large can hold a 100 KB string or a 4,000-item
        # array; typed payloads cannot nest past the limit at all.
        problem = check.shape_problem(e.payload)
        if problem:
            v.add(field, "INVALID_PAYLOAD", problem)
    if b"\\u0000" in encoded:
        v.add(field, "INVALID_PAYLOAD", "a string contains a NUL character")
    return encoded


def _require(v: Violations, payload: dict[str, Any], path: str, prefix: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, "", [], {}):
        v.add(f"{prefix}{path}", "REQUIRED", "this field is required")
    return value


def _check_item(v: Violations, item: dict[str, Any], prefix: str) -> None:
    _require(v, item, "product_id", prefix)
    if int(item.get("quantity", 0)) < 1:
        v.add(f"{prefix}quantity", "OUT_OF_RANGE", "must be at least 1")


def _check_items(v: Violations, items: Any, path: str, prefix: str) -> None:
    for i, item in enumerate(items or []):
        # The item's field path is built only for an item that may be bad.
        if not item.get("product_id") or int(item.get("quantity", 0)) < 1:
            _check_item(v, item, f"{prefix}{path}[{i}].")


def _product_viewed(v: Violations, prefix: str, e: EventInput) -> None:
    _require(v, e.payload, "product.product_id", prefix)


def _added_to_cart(v: Violations, prefix: str, e: EventInput) -> None:
    if _require(v, e.payload, "item", prefix):
        _check_item(v, e.payload["item"], f"{prefix}item.")
    if "cart" in e.payload:
        _require(v, e.payload, "cart.cart_id", prefix)
        _check_items(v, e.payload["cart"].get("items"), "cart.items", prefix)


def _placed_order(v: Violations, prefix: str, e: EventInput) -> None:
    _require(v, e.payload, "order.order_id", prefix)
    _require(v, e.payload, "order.total", prefix)
    lines = _require(v, e.payload, "order.lines", prefix)
    _check_items(v, lines, "order.lines", prefix)


def _cart_abandoned(v: Violations, prefix: str, e: EventInput) -> None:
    _require(v, e.payload, "cart.cart_id", prefix)
    items = _require(v, e.payload, "cart.items", prefix)
    _check_items(v, items, "cart.items", prefix)


def _custom(v: Violations, prefix: str, e: EventInput) -> None:
    if not e.name:
        v.add(f"{prefix}name", "REQUIRED", "a custom event needs a name")
    elif not _CUSTOM_NAME.fullmatch(e.name):
        v.add(f"{prefix}name", "INVALID_EVENT_NAME", "lower snake case, at most 127 characters")
    elif e.name in TYPED_EVENTS:
        v.add(f"{prefix}name", "RESERVED_EVENT_NAME", f"use the typed {e.name} payload instead")
    check.check_properties(v, f"{prefix}properties", e.payload.get("properties", {}))


_PAYLOAD_RULES = {
    PRODUCT_VIEWED: _product_viewed,
    ADDED_TO_CART: _added_to_cart,
    PLACED_ORDER: _placed_order,
    CART_ABANDONED: _cart_abandoned,
    "custom": _custom,
}


class EventSink(Protocol):
    """Where accepted events become durable (PostgreSQL, or the bus first)."""

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        """Store the events; return the ids that were new."""
        ...


async def track_events(
    sink: EventSink, events: list[EventInput], *, now: datetime, skew: timedelta
) -> list[TrackResult]:
    """All or nothing: every event is valid and durable, or the call fails.
    An id seen before (in this batch or earlier) is a duplicate and writes nothing."""
    v = Violations()
    if not events:
        v.add("events", "REQUIRED", "at least one event is required")
    if len(events) > MAX_BATCH:
        v.add("events", "TOO_MANY_EVENTS", f"at most {MAX_BATCH} events per call")
    encoded = [validate_event(v, e, f"events[{i}].", now, skew) for i, e in enumerate(events)]
    v.raise_if_any()
    return await _store(sink, events, encoded, now)


async def track_event(
    sink: EventSink, event: EventInput, *, now: datetime, skew: timedelta
) -> TrackResult:
    v = Violations()
    encoded = validate_event(v, event, "event.", now, skew)
    v.raise_if_any()
    return await _store_one(sink, event, encoded, now)


async def _store_one(
    sink: EventSink, event: EventInput, encoded: bytes, now: datetime
) -> TrackResult:
    """`_store` for one event (every unary TrackEvent): no batch to deduplicate
    and nothing to tally: a few µs less of the ~50 the call costs us."""
    event_id = event.event_id or str(uuid.uuid4())
    record = _record(event_id, event, encoded, now)
    if event_id in await sink.accept([record], now):
        _accepted_series(record.metric).inc()
        return TrackResult(event_id, False)
    EVENTS_DUPLICATE.inc()
    return TrackResult(event_id, True)


async def _store(
    sink: EventSink, events: list[EventInput], encoded: list[bytes], now: datetime
) -> list[TrackResult]:
    ids = [e.event_id or str(uuid.uuid4()) for e in events]
    first_of = {event_id: i for i, event_id in reversed(list(enumerate(ids)))}
    records = [_record(ids[i], events[i], encoded[i], now) for i in sorted(first_of.values())]
    accepted = await sink.accept(records, now)
    results = [
        TrackResult(event_id, not (event_id in accepted and first_of[event_id] == i))
        for i, event_id in enumerate(ids)
    ]
    # Counted per metric name, not per event: labels() costs as much as the rest of a record.
    for metric, count in Counter(r.metric for r in records if r.event_id in accepted).items():
        _accepted_series(metric).inc(count)
    duplicates = sum(r.duplicate for r in results)
    if duplicates:
        EVENTS_DUPLICATE.inc(duplicates)
    return results


@functools.lru_cache(maxsize=1024)  # the few metric names in use; a miss only costs labels()
def _accepted_series(metric: str) -> Any:  # prometheus_client types its children as Any too
    return EVENTS_ACCEPTED.labels(metric)


def _record(event_id: str, e: EventInput, payload_json: bytes, now: datetime) -> EventRecord:
    email = check.normalize_email(e.email)
    return EventRecord(
        event_id=event_id,
        email=email,
        contact_key=check.normalized_email_key(email),
        metric=metric_name(e),
        payload=e.payload,
        occurred_at=e.occur_time or now,
        payload_json=payload_json,
        body_field=e.type,
        body=e.body,
    )
