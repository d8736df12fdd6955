"""`iso_time`, remembered per instant and offset: one instant at two offsets is
two texts, whichever was asked for first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dispatcher.providers.timefmt import iso_time

INSTANT = datetime(2027, 1, 15, 7, 30, tzinfo=UTC)


def test_one_instant_at_two_offsets_is_two_texts() -> None:
    plus_two = INSTANT.astimezone(timezone(timedelta(hours=2)))

    assert iso_time(plus_two) == "2027-01-15T09:30:00+02:00"
    assert iso_time(INSTANT) == "2027-01-15T07:30:00+00:00"
    assert iso_time(plus_two) == "2027-01-15T09:30:00+02:00"


def test_a_naive_time_is_taken_as_utc() -> None:
    assert iso_time(INSTANT.replace(tzinfo=None)) == "2027-01-15T07:30:00+00:00"
