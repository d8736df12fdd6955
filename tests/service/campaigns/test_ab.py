"""A/B assignment (Property 27) and the winner (Property 28)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.campaigns.ab import MAX_VARIANTS, VariantResult, assign, choose_winner

CONTACTS = [uuid.UUID(int=n * 7919 + 17) for n in range(6000)]


# **Feature: marketing-automation, Property 27: A/B test random assignment**
@settings(max_examples=100, deadline=None)
@given(
    campaign=st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True),
    variants=st.integers(2, MAX_VARIANTS),
    fraction=st.sampled_from([0.2, 0.5, 1.0]),
)
def test_property_27_equal_chances_and_the_same_answer_every_time(
    campaign: str, variants: int, fraction: float
) -> None:
    got = [assign(campaign, c, variants, fraction) for c in CONTACTS]
    assert got == [assign(campaign, c, variants, fraction) for c in CONTACTS], "reproducible"
    pool = [g for g in got if g is not None]
    assert all(0 <= g < variants for g in pool)
    # The pool's share, and each variant's share of it, within 6 standard deviations of
    # the binomial's: a hash that favoured a variant would be seen at once.
    n = len(CONTACTS)
    assert abs(len(pool) - n * fraction) <= 6 * (n * fraction * (1 - fraction)) ** 0.5 + 1
    expected = len(pool) / variants
    spread = (len(pool) * (1 / variants) * (1 - 1 / variants)) ** 0.5
    for variant in range(variants):
        assert abs(pool.count(variant) - expected) <= 6 * spread, (variant, pool.count(variant))


results = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 2000)).map(
        lambda t: (max(t), min(t))  # recipients >= successes
    ),
    min_size=1,
    max_size=MAX_VARIANTS,
)


# **Feature: marketing-automation, Property 28: A/B test winner selection**
@settings(max_examples=200)
@given(drawn=results, override=st.one_of(st.none(), st.integers(0, MAX_VARIANTS - 1)))
def test_property_28_the_best_rate_wins_unless_someone_chose(drawn, override) -> None:
    variants = [VariantResult(i, n, s) for i, (n, s) in enumerate(drawn)]
    if override is not None and override >= len(variants):
        with pytest.raises(ValueError):
            choose_winner(variants, min_sample=100, confidence=0.95, override=override)
        return
    decision = choose_winner(variants, min_sample=100, confidence=0.95, override=override)
    if override is not None:
        assert decision.winner == override and decision.manual
        return
    best = max(r.rate for r in variants)
    assert variants[decision.winner].rate == best
    assert decision.winner == min(r.variant for r in variants if r.rate == best)
    if decision.significant:
        assert all(r.recipients >= 100 for r in variants)


def test_a_clear_difference_is_significant_and_a_small_one_is_not() -> None:
    clear = [VariantResult(0, 1000, 200), VariantResult(1, 1000, 300)]
    decision = choose_winner(clear, min_sample=100, confidence=0.95)
    assert (decision.winner, decision.significant) == (1, True)
    close = [VariantResult(0, 1000, 200), VariantResult(1, 1000, 210)]
    assert not choose_winner(close, min_sample=100, confidence=0.95).significant
    small = [VariantResult(0, 50, 5), VariantResult(1, 50, 40)]
    decision = choose_winner(small, min_sample=100, confidence=0.95)
    assert decision.winner == 1 and not decision.significant
    assert "below the minimum sample" in decision.reason
