"""A/B tests: who gets which variant, and which variant wins.

Assignment (Property 27) is a pure function of the campaign and the contact: the first
64 bits of SHA-256("{campaign}:{contact}") read as an unsigned number h. With the pool's
bound T = floor(fraction x 2^64), a contact is in the test pool when h < T, and then gets
variant floor(h x n / T): each of the n variants with equal probability, the same answer
every time it is asked (a retry, another replica, an audit, or PostgreSQL doing the same
integer arithmetic for a whole audience), and no state to keep.

The winner (Property 28), once the test window is over: the variant with the highest
rate of the chosen metric among its test recipients (ties: the lower variant number).
The decision says whether it is significant: every variant reached the minimum sample,
and a one-sided two-proportion z-test of the winner against the runner-up passes at the
stated confidence. A manual override names the winner instead, and says so."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

MAX_VARIANTS = 7
_SPAN = 2**64


def position(campaign_id: str, contact_id: uuid.UUID) -> int:
    """The contact's place h in [0, 2^64) for this campaign."""
    digest = hashlib.sha256(f"{campaign_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def pool_bound(test_fraction: float) -> int:
    """T: the positions below it are the test pool."""
    return min(int(test_fraction * _SPAN), _SPAN)


def assign(
    campaign_id: str, contact_id: uuid.UUID, variants: int, test_fraction: float
) -> int | None:
    """The variant (0-based) a test recipient gets, or None for the remainder (who get
    the winner). A fraction of 1: everyone is a test recipient."""
    if not 1 <= variants <= MAX_VARIANTS or not 0 < test_fraction <= 1:
        raise ValueError("1 to 7 variants and a test fraction in (0, 1]")
    h, bound = position(campaign_id, contact_id), pool_bound(test_fraction)
    return h * variants // bound if h < bound else None


@dataclass(frozen=True)
class VariantResult:
    variant: int
    recipients: int  # test recipients the message was delivered to
    successes: int  # of them: opened, clicked, or placed an order (the metric)

    @property
    def rate(self) -> float:
        return self.successes / self.recipients if self.recipients else 0.0


@dataclass(frozen=True)
class Decision:
    winner: int
    manual: bool
    significant: bool
    reason: str  # what the decision rests on, in words, for the record


def choose_winner(
    results: Sequence[VariantResult],
    *,
    min_sample: int,
    confidence: float,
    override: int | None = None,
) -> Decision:
    if not results:
        raise ValueError("no variants")
    if override is not None:
        if override not in {r.variant for r in results}:
            raise ValueError(f"variant {override} is not in the test")
        return Decision(override, True, False, f"variant {override} chosen by hand")
    ranked = sorted(results, key=lambda r: (-r.rate, r.variant))
    best = ranked[0]
    if len(ranked) == 1:
        return Decision(best.variant, False, False, "a single variant")
    runner_up = ranked[1]
    small = [r.variant for r in results if r.recipients < min_sample]
    z = _z(best, runner_up)
    critical = NormalDist().inv_cdf(confidence)
    significant = not small and z >= critical
    reason = (
        f"variant {best.variant}: {best.rate:.2%} of {best.recipients} against variant "
        f"{runner_up.variant}: {runner_up.rate:.2%} of {runner_up.recipients}; z = {z:.2f}, "
        f"needed {critical:.2f} ({confidence:.0%} one-sided)"
    )
    if small:
        reason += f"; below the minimum sample of {min_sample}: variants {small}"
    return Decision(best.variant, False, significant, reason)


def _z(a: VariantResult, b: VariantResult) -> float:
    """One-sided two-proportion z statistic of a over b (0 when it cannot be told)."""
    if not a.recipients or not b.recipients:
        return 0.0
    pooled = (a.successes + b.successes) / (a.recipients + b.recipients)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.recipients + 1 / b.recipients))
    return (a.rate - b.rate) / spread if spread else 0.0
