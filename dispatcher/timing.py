"""The one way the dispatcher waits, so tests can drive it on a virtual clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]
