"""The shortcut that skips check_money for amounts it would pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.common import validation as check
from service.errors import Violations
from service.events import rules as events
from service.events.rules import MoneyField

_CURRENCIES = st.sampled_from(["EUR", "USD", "eur", "EU", "EURO", "", "E1R", "ÉUR"])


@settings(max_examples=300)
@given(
    seen=st.lists(_CURRENCIES, max_size=4),
    currency=_CURRENCIES,
    units=st.integers(-(2**63), 2**63 - 1),
    nanos=st.integers(-(2**31), 2**31 - 1),
)
def test_an_amount_is_only_waved_through_when_check_money_passes_it(
    seen: list[str], currency: str, units: int, nanos: int
) -> None:
    for code in seen:  # what earlier events taught the shortcut
        if check.check_money(Violations(), "x", code, 0, 0, allow_negative=False):
            events._GOOD_CURRENCIES.add(code)
    v = Violations()
    passes = check.check_money(v, "x", currency, units, nanos, allow_negative=False)
    if events._plainly_good(MoneyField("x", currency, units, nanos)):
        assert passes and not v
