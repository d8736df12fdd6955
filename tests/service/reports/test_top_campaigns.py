"""The dashboard's top campaigns: amounts in different currencies are never added."""

from __future__ import annotations

from service.reports.figures import Figures
from service.reports.rules import _top_campaigns

EUR = 10**9  # nanos of a unit


def test_revenue_ranks_in_the_main_currency_then_orders_then_deliveries() -> None:
    campaigns = {
        # 5,000 JPY is less than 40 EUR: added as numbers it would rank first.
        "yen": Figures(delivered=10, conversions=1, revenue={"JPY": 5_000 * EUR}),
        "euro-big": Figures(delivered=5, conversions=2, revenue={"EUR": 3_000 * EUR}),
        "euro-small": Figures(delivered=50, conversions=1, revenue={"EUR": 100 * EUR}),
        "orders": Figures(delivered=1, conversions=3),
        "deliveries": Figures(delivered=99),
        "quiet": Figures(delivered=2),
    }
    ranked = [name for name, _ in _top_campaigns(campaigns, "EUR")]
    # Then, without EUR revenue: by attributed orders (yen's one before none), deliveries.
    assert ranked == ["euro-big", "euro-small", "orders", "yen", "deliveries"]


def test_without_revenue_orders_then_deliveries_decide() -> None:
    campaigns = {
        "a": Figures(delivered=10, conversions=0),
        "b": Figures(delivered=5, conversions=1),
        "c": Figures(delivered=20, conversions=0),
    }
    assert [name for name, _ in _top_campaigns(campaigns, "")] == ["b", "c", "a"]
