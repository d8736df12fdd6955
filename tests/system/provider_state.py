"""Each person's email consent at the provider, as the sandbox's Klaviyo model
holds it (GET /_sandbox/profiles), and the state our own consent state must
leave there. The Klaviyo rules live once, in dispatcher/sandbox/klaviyo/consent.py."""

from __future__ import annotations

from typing import Any

import httpx

from dispatcher.sandbox import Sandbox
from tests.consent_model import ConsentState
from tests.dispatcher.helpers import expected_consent
from tests.dispatcher.helpers import provider_consent as consent_of

ProviderConsent = dict[str, Any]


def provider_consent(provider: Sandbox, email: str) -> ProviderConsent:
    """What the provider holds for `email`, in the terms of `expected_at_provider`."""
    shown = httpx.get(f"{provider.base_url}/_sandbox/profiles", params={"email": email})
    shown.raise_for_status()
    state = consent_of(shown.json())
    del state["sms"]  # the consent traffic here is email only
    return state


def expected_at_provider(ours: ConsentState) -> ProviderConsent:
    """A suppressed address gets nothing, whatever its opt-in says."""
    state = expected_consent(email=ours.email_opt_in, sms=False, suppressed=ours.suppressed)
    del state["sms"]
    return state
