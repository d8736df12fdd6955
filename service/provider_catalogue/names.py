"""Resource names of the cached provider resources: `providerCampaigns/{external_id}` and
`providerFlows/{external_id}` (our own campaigns, issue 17, are `campaigns/{id}`)."""

from __future__ import annotations

import re

from service.errors import Violations

CAMPAIGNS = "providerCampaigns/"
FLOWS = "providerFlows/"
# What providers' ids look like (Klaviyo: letters and digits; ActiveCampaign: digits).
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def campaign_name(external_id: str) -> str:
    return f"{CAMPAIGNS}{external_id}"


def flow_name(external_id: str) -> str:
    return f"{FLOWS}{external_id}"


def parse_campaign_name(v: Violations, field_path: str, name: str) -> str:
    """The external id of `providerCampaigns/{external_id}`; "" with a violation otherwise."""
    if not name:
        v.add(field_path, "REQUIRED", "name the campaign: providerCampaigns/{external_id}")
        return ""
    external_id = name.removeprefix(CAMPAIGNS)
    if not name.startswith(CAMPAIGNS) or EXTERNAL_ID.fullmatch(external_id) is None:
        v.add(field_path, "INVALID_NAME", "must look like providerCampaigns/{external_id}")
        return ""
    return external_id
