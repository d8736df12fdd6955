"""What a campaign is, as the caller sets it, and the checks on it.

A draft may be incomplete; what it holds is checked all the same. Scheduling
needs it whole: content (or an A/B test's variants) and a schedule."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from service.campaigns.ab import MAX_VARIANTS
from service.campaigns.content import Channel, Content, parse_content
from service.common import validation as check
from service.errors import Violations
from service.segments.names import parse_segment_name

MAX_DISPLAY_NAME = 200
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_WINDOW = timedelta(hours=4)
MIN_WINDOW, MAX_WINDOW = timedelta(hours=1), timedelta(days=7)
DEFAULT_MIN_SAMPLE = 100
DEFAULT_CONFIDENCE = 0.95
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}")


class Metric(enum.StrEnum):
    OPEN_RATE = "OPEN_RATE"
    CLICK_RATE = "CLICK_RATE"
    PLACED_ORDER_RATE = "PLACED_ORDER_RATE"


class When(enum.StrEnum):
    NOW = "now"
    AT = "at"
    LOCAL = "local"  # a wall-clock time in each recipient's zone


@dataclass(frozen=True)
class ContentSpec:
    subject: str
    body: str


@dataclass(frozen=True)
class AbTestSpec:
    variants: tuple[ContentSpec, ...]
    test_fraction: float | None  # None: the default
    metric: Metric | None
    window: timedelta | None
    min_sample: int | None
    confidence: float | None

    def settled(self) -> AbTestSpec:
        """The defaults filled in."""
        return AbTestSpec(
            self.variants,
            self.test_fraction or DEFAULT_TEST_FRACTION,
            self.metric,
            self.window or DEFAULT_WINDOW,
            self.min_sample or DEFAULT_MIN_SAMPLE,
            self.confidence or DEFAULT_CONFIDENCE,
        )


@dataclass(frozen=True)
class ScheduleSpec:
    when: When
    send_at: datetime | None = None  # AT
    local_date: str = ""  # LOCAL: "YYYY-MM-DD"
    local_time: str = ""  # LOCAL: "HH:MM"
    default_time_zone: str = ""  # LOCAL: for recipients without one ("" = UTC)


@dataclass(frozen=True)
class CampaignSpec:
    display_name: str
    channel: Channel | None
    audience: str  # `segments/{id}` as given
    content: ContentSpec | None
    ab_test: AbTestSpec | None
    schedule: ScheduleSpec | None


@dataclass(frozen=True)
class Checked:
    """A spec that passed: its audience's segment id and its parsed contents (one, or
    each variant's)."""

    segment_id: str
    contents: tuple[Content, ...]


def check_spec(
    v: Violations, spec: CampaignSpec, *, complete: bool, now: datetime, prefix: str = "campaign."
) -> Checked | None:
    check.check_required(v, f"{prefix}display_name", spec.display_name)
    check.check_length(v, f"{prefix}display_name", spec.display_name, MAX_DISPLAY_NAME)
    if spec.channel is None:
        v.add(f"{prefix}channel", "REQUIRED", "EMAIL, SMS or PUSH")
    segment_id = parse_segment_name(v, f"{prefix}audience", spec.audience)
    contents = _check_contents(v, spec, prefix)
    if complete and spec.content is None and spec.ab_test is None:
        v.add(f"{prefix}content", "REQUIRED", "a campaign needs content, or an A/B test")
    if spec.schedule is not None:
        _check_schedule(v, spec.schedule, now, f"{prefix}schedule.")
    elif complete:
        v.add(f"{prefix}schedule", "REQUIRED", "say when it goes out")
    if v or segment_id is None:
        return None
    return Checked(segment_id, contents)


def _check_contents(v: Violations, spec: CampaignSpec, prefix: str) -> tuple[Content, ...]:
    if spec.channel is None:
        return ()
    if spec.content is not None and spec.ab_test is not None:
        v.add(f"{prefix}content", "NOT_ALLOWED", "give content or an A/B test's variants, not both")
        return ()
    if spec.content is not None:
        one = _content(v, f"{prefix}content.", spec.channel, spec.content)
        return () if one is None else (one,)
    if spec.ab_test is None:
        return ()
    ab = spec.ab_test
    test = f"{prefix}ab_test."
    if not 2 <= len(ab.variants) <= MAX_VARIANTS:
        v.add(f"{test}variants", "OUT_OF_RANGE", f"2 to {MAX_VARIANTS} variants")
    if ab.test_fraction is not None and not 0 < ab.test_fraction < 1:
        v.add(f"{test}test_fraction", "OUT_OF_RANGE", "a share in (0, 1), e.g. 0.2")
    if ab.metric is None:
        v.add(f"{test}metric", "REQUIRED", "OPEN_RATE, CLICK_RATE or PLACED_ORDER_RATE")
    if ab.window is not None and not MIN_WINDOW <= ab.window <= MAX_WINDOW:
        v.add(f"{test}window", "OUT_OF_RANGE", "1 hour to 7 days")
    if ab.min_sample is not None and ab.min_sample < 1:
        v.add(f"{test}min_sample", "OUT_OF_RANGE", "at least 1")
    if ab.confidence is not None and not 0.5 <= ab.confidence <= 0.999:
        v.add(f"{test}confidence", "OUT_OF_RANGE", "0.5 to 0.999")
    parsed = [
        _content(v, f"{test}variants[{i}].", spec.channel, variant)
        for i, variant in enumerate(ab.variants)
    ]
    return tuple(p for p in parsed if p is not None)


def _content(v: Violations, prefix: str, channel: Channel, c: ContentSpec) -> Content | None:
    return parse_content(v, prefix, channel, c.subject, c.body)


def _check_schedule(v: Violations, s: ScheduleSpec, now: datetime, prefix: str) -> None:
    if s.when is When.AT:
        if s.send_at is None:
            v.add(f"{prefix}send_time", "REQUIRED", "the moment to send")
        elif s.send_at <= now:
            v.add(f"{prefix}send_time", "IN_THE_PAST", "must lie in the future")
    elif s.when is When.LOCAL:
        local = f"{prefix}local_time."
        if local_date(s) is None:
            v.add(f"{local}date", "INVALID_DATE", "YYYY-MM-DD")
        if local_time(s) is None:
            v.add(f"{local}time", "INVALID_TIME", "HH:MM, 24-hour")
        if s.default_time_zone:
            check.check_timezone(v, f"{local}default_time_zone", s.default_time_zone)
        day = local_date(s)
        if day is not None and day < (now - timedelta(days=1)).date():
            v.add(f"{local}date", "IN_THE_PAST", "must not lie in the past")


def local_date(s: ScheduleSpec) -> date | None:
    if not _DATE.fullmatch(s.local_date):
        return None
    try:
        return date.fromisoformat(s.local_date)
    except ValueError:
        return None


def local_time(s: ScheduleSpec) -> time | None:
    if not _TIME.fullmatch(s.local_time):
        return None
    try:
        return time.fromisoformat(s.local_time)
    except ValueError:
        return None


# --- as stored (marketing_campaign's JSONB columns) -------------------------------------


def content_document(c: ContentSpec | None) -> dict[str, Any] | None:
    return None if c is None else {"subject": c.subject, "body": c.body}


def content_of(document: dict[str, Any] | None) -> ContentSpec | None:
    return None if document is None else ContentSpec(document["subject"], document["body"])


def ab_test_document(ab: AbTestSpec | None) -> dict[str, Any] | None:
    if ab is None:
        return None
    return {
        "variants": [content_document(c) for c in ab.variants],
        "test_fraction": ab.test_fraction,
        "metric": None if ab.metric is None else ab.metric.value,
        "window_s": None if ab.window is None else ab.window.total_seconds(),
        "min_sample": ab.min_sample,
        "confidence": ab.confidence,
    }


def ab_test_of(document: dict[str, Any] | None) -> AbTestSpec | None:
    if document is None:
        return None
    window = document.get("window_s")
    metric = document.get("metric")
    return AbTestSpec(
        tuple(ContentSpec(c["subject"], c["body"]) for c in document["variants"]),
        document.get("test_fraction"),
        None if metric is None else Metric(metric),
        None if window is None else timedelta(seconds=window),
        document.get("min_sample"),
        document.get("confidence"),
    )


def schedule_document(s: ScheduleSpec | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "when": s.when.value,
        "send_at": None if s.send_at is None else s.send_at.isoformat(),
        "local_date": s.local_date,
        "local_time": s.local_time,
        "default_time_zone": s.default_time_zone,
    }


def schedule_of(document: dict[str, Any] | None) -> ScheduleSpec | None:
    if document is None:
        return None
    send_at = document.get("send_at")
    return ScheduleSpec(
        When(document["when"]),
        None if send_at is None else datetime.fromisoformat(send_at),
        document.get("local_date", ""),
        document.get("local_time", ""),
        document.get("default_time_zone", ""),
    )
