"""Retry timing as pure functions (the seed's schedule: 1, 2, 4, 8, 16, 32 s)."""

from __future__ import annotations


def compute_backoff(attempt: int, *, base_s: float = 1.0) -> float:
    """Delay after failed attempt number `attempt` (1-based): base * 2^(attempt-1)."""
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    return float(base_s * 2 ** (attempt - 1))


def retry_delay(attempt: int, *, retry_after: float | None, base_s: float = 1.0) -> float:
    """The backoff, or the provider's Retry-After when that asks for longer."""
    return max(compute_backoff(attempt, base_s=base_s), retry_after or 0.0)


def exhausted(attempt: int, *, max_attempts: int) -> bool:
    return attempt >= max_attempts
