"""Exact amounts as bus Money (units and nanos of the same sign) and back."""

from __future__ import annotations

from decimal import Decimal

from marketing.bus.v1 import bus_pb2

__all__ = ["amount", "decimal_amount", "to_money"]

_NANOS = Decimal(1_000_000_000)


def to_money(value: Decimal, currency_code: str) -> bus_pb2.Money:
    """`value` exactly (to the nano), as units and nanos of the same sign."""
    units = int(value)
    return bus_pb2.Money(
        currency_code=currency_code, units=units, nanos=int((value - units) * _NANOS)
    )


def amount(money: bus_pb2.Money) -> Decimal:
    """The exact amount of `money` (its currency aside)."""
    return decimal_amount(money.units, money.nanos)


def decimal_amount(units: int, nanos: int) -> Decimal:
    """The exact amount of `units` and `nanos` (of any Money message: the API's
    and the bus's have the same fields)."""
    return Decimal(units) + Decimal(nanos) / _NANOS
