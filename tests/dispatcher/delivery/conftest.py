"""Fixtures of the delivery tests beyond the dispatcher's own (tests/dispatcher/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.dispatcher.providers.under_test import AC_ACTID, AC_EVENT_KEY, AC_KEY


@pytest.fixture
def ac() -> Iterator[ActiveCampaignSandbox]:
    """An ActiveCampaign sandbox without rate limits, its imports done at once."""
    with start_activecampaign_sandbox(
        api_key=AC_KEY,
        tracking_actid=AC_ACTID,
        tracking_key=AC_EVENT_KEY,
        rate_limits=False,
        import_delay_s=0.0,
    ) as running:
        yield running
