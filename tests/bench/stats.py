"""Small numeric helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else math.nan
