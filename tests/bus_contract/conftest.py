"""The dispatcher tests' sandbox fixtures, for the tests that take an event
from the service's validation to the provider."""

from __future__ import annotations

from tests.dispatcher.conftest import http, sandbox

__all__ = ["http", "sandbox"]
