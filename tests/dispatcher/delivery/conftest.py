"""Fixtures of the delivery tests beyond the dispatcher's own (tests/dispatcher/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.providers.under_test import activecampaign_sandbox


@pytest.fixture
def ac() -> Iterator[ActiveCampaignSandbox]:
    """An ActiveCampaign sandbox of the test account, without rate limits."""
    with activecampaign_sandbox() as running:
        yield running
