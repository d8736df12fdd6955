"""Event RPCs: event messages to validated inputs for the event use cases, results back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import UnacceptableValue, optional_time, unacceptable
from service.events import rules
from service.events.bus_body import body_bytes
from service.events.payload_json import payload_dict
from service.events.rules import EventInput, EventSink, MoneyField


class EventHandlers:
    def __init__(self, sink: EventSink, *, clock: Clock, max_clock_skew: timedelta) -> None:
        self._sink = sink
        self._clock = clock
        self._skew = max_clock_skew

    async def track_event(self, request: pb.TrackEventRequest) -> pb.TrackEventResponse:
        result = await rules.track_event(
            self._sink, event_input(request.event), now=self._clock(), skew=self._skew
        )
        return pb.TrackEventResponse(event_id=result.event_id, duplicate=result.duplicate)

    async def track_events(self, request: pb.TrackEventsRequest) -> pb.TrackEventsResponse:
        results = await rules.track_events(
            self._sink,
            [event_input(e, i) for i, e in enumerate(request.events)],
            now=self._clock(),
            skew=self._skew,
        )
        return pb.TrackEventsResponse(
            results=[
                pb.TrackEventResponse(event_id=r.event_id, duplicate=r.duplicate) for r in results
            ]
        )


def event_input(e: event_pb2.Event, index: int | None = None) -> EventInput:
    """The event of TrackEvent (`index` None) or `events[index]` of TrackEvents."""
    path = "event" if index is None else f"events[{index}]"
    case = e.WhichOneof("payload") or ""
    payload: dict[str, Any] = {}
    money: list[MoneyField] = []
    body = b""
    if case:
        api_body = getattr(e, case)
        # Fields this release does not know would ride along in the body's bytes
        # onto the bus, unvalidated and uncounted by the size limits.
        api_body.DiscardUnknownFields()
        try:
            payload = payload_dict(api_body, money)
        except UnacceptableValue as bad:
            raise unacceptable(bad, f"{path}.{case}.") from None
        body = body_bytes(case, api_body, payload)
    return EventInput(
        type=case,
        email=e.email,
        event_id=e.event_id,
        occur_time=optional_time(e, "occur_time", f"{path}.occur_time"),
        name=e.custom.name if case == "custom" else "",
        payload=payload,
        money=tuple(money),
        body=body,
    )
