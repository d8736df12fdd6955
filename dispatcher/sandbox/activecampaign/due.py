"""What the sandbox's clock has made due, settled before anything looks at the account or
changes it (every API call, /event, every view, engagement, exclusions): the automations'
messages (judged on the account as it was when each fell due), the campaigns (each sent to
its lists as they were when it fell due: the import batches completed by then are applied
first), then the rest of the import batches."""

from __future__ import annotations

from dispatcher.sandbox.activecampaign import automation_flows, campaign_sending, imports
from dispatcher.sandbox.activecampaign.store import Account


def settle_due(account: Account, now: float) -> None:
    automation_flows.send_due(account, now)
    campaign_sending.send_due(account, now)
    imports.settle(account, now)
