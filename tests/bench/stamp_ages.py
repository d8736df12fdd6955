"""How late a replica's requests left after their stamps in the shared budget, read
from its own metrics (`marketing_dispatcher_budget_stamp_age_seconds`, noted as each
request's headers are written). The budget's proof counts on each leaving within half
its margin (50 ms by default): the phases that deliver at the provider's limits say
how many did not, and how many were found late where they leave
(`marketing_dispatcher_budget_late_requests_total`: restamped there, or called off)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM = "marketing_dispatcher_budget_stamp_age_seconds"
LATE_REQUESTS = "marketing_dispatcher_budget_late_requests"
# Later than these (seconds): a count of requests each.
LATE_S = (0.025, 0.05, 0.1)


async def stamp_ages(metrics_address: str) -> dict[str, int]:
    """Requests noted, and how many left later than each of `LATE_S`, over every operation."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        reply = await http.get(f"http://{metrics_address}/metrics")
        reply.raise_for_status()
    return late_counts(reply.text)


def late_counts(exposition: str) -> dict[str, int]:
    """From Prometheus's text format: the histogram's buckets, and the late requests by
    outcome, summed over operations."""
    within: dict[float, float] = {}
    total = 0.0
    outcomes = {"restamped": 0.0, "called_off": 0.0}
    for family in text_string_to_metric_families(exposition):
        if family.name not in (HISTOGRAM, LATE_REQUESTS):
            continue
        for sample in family.samples:
            if sample.name == f"{HISTOGRAM}_count":
                total += sample.value
            elif sample.name == f"{HISTOGRAM}_bucket":
                bound = float(sample.labels["le"])
                within[bound] = within.get(bound, 0.0) + sample.value
            elif sample.name == f"{LATE_REQUESTS}_total":
                outcome = sample.labels["outcome"]
                outcomes[outcome] = outcomes.get(outcome, 0.0) + sample.value
    counts = {"requests": int(total)}
    for late in LATE_S:
        counts[f"over_{late * 1000:.0f}ms"] = int(total - within.get(late, total))
    return counts | {name: int(count) for name, count in outcomes.items()}
