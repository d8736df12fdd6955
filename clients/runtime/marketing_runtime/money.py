"""Exact amounts as bus Money (units and nanos of the same sign) and back."""

from __future__ import annotations

from decimal import Decimal

from marketing.bus.v1 import bus_pb2

__all__ = ["amount", "to_money"]

_NANOS = 1_000_000_000


def to_money(value: Decimal, currency_code: str) -> bus_pb2.Money:
    """`value` exactly (to the nano), as units and nanos of the same sign."""
    units = int(value)
    return bus_pb2.Money(
        currency_code=currency_code, units=units, nanos=int((value - units) * _NANOS)
    )


def amount(money: bus_pb2.Money) -> Decimal:
    """The exact amount of `money` (its currency aside)."""
    return Decimal(money.units) + Decimal(money.nanos) / _NANOS
