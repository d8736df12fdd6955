"""The bench's reading of a replica's stamp ages (tests/bench/stamp_ages.py) from the
dispatcher's own metrics: each lateness it reports is one of the histogram's bounds, and
requests noted later than it are counted over every operation, as are the requests found
late where they leave, by outcome."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import metrics
from tests.bench.stamp_ages import HISTOGRAM, LATE_S, late_counts


def _now() -> dict[str, int]:
    return late_counts(generate_latest(REGISTRY).decode())


def test_each_lateness_reported_is_a_bound_of_the_histogram() -> None:
    metrics.BUDGET_STAMP_AGE.labels("test-report-bounds").observe(0.0)
    bounds = {
        float(sample.labels["le"])
        for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        if family.name == HISTOGRAM
        for sample in family.samples
        if sample.name == f"{HISTOGRAM}_bucket"
    }
    assert set(LATE_S) <= bounds


def test_requests_later_than_each_bound_are_counted_over_every_operation() -> None:
    before = _now()
    noted = (("test-report-a", 0.004), ("test-report-a", 0.03), ("test-report-b", 0.07))
    for operation, age in (*noted, ("test-report-b", 0.2)):
        metrics.BUDGET_STAMP_AGE.labels(operation).observe(age)

    after = _now()
    added = {key: after[key] - before[key] for key in after}
    assert added == {
        "requests": 4,
        "over_25ms": 3,
        "over_50ms": 2,
        "over_100ms": 1,
        "restamped": 0,
        "called_off": 0,
    }


def test_requests_late_where_they_leave_are_counted_by_outcome_over_every_operation() -> None:
    before = _now()
    for operation, outcome, times in (
        ("test-report-a", "restamped", 2),
        ("test-report-b", "restamped", 1),
        ("test-report-b", "called_off", 3),
    ):
        metrics.BUDGET_LATE_REQUESTS.labels(operation, outcome).inc(times)

    after = _now()
    assert (
        after["restamped"] - before["restamped"],
        after["called_off"] - before["called_off"],
    ) == (
        3,
        3,
    )
