"""What an engagement with a campaign's email does to the campaign: its counters, and how the
webhook naming it describes it (webhook_events.py reports both seeded engagement and POST
/_sandbox/engagement this way).

Counters (strings, as GET /campaigns lists them): a send sets `send_amt` and `total_amt` to
the messages sent; an open adds to `opens`, and to `uniqueopens` the first time the contact
opens this campaign; a click adds to `linkclicks`, to `uniquelinkclicks` the first time the
contact clicks that url, and to `subscriberclicks` the first time the contact clicks at all;
a bounce to `hardbounces` or `softbounces`; an unsubscribe or a spam complaint to
`unsubscribes`, and to `unsubreasons` when it gives a reason. ASSUMED: ActiveCampaign
documents the names, not how each is counted; these are the meanings its reports give them.

The campaign in a webhook (PROVIDERS-API.md, "Webhooks": campaign[id|name|status|type|
recipients|message][id|subject]): campaign[id], campaign[name], campaign[type],
campaign[status] (as it stands then), campaign[recipients] (its send_amt) and, for a campaign
made through the API, campaign[message][id] and campaign[message][subject] (its message's id
and subject as written)."""

from __future__ import annotations

from typing import Any

from dispatcher.sandbox.activecampaign.store import Account, CampaignReach, Row
from dispatcher.sandbox.common import engagement as kinds
from dispatcher.sandbox.common.engagement import Engagement


def count_sent(campaign: Row, sent: int) -> None:
    """A send's messages sent (a campaign goes out once)."""
    campaign["send_amt"] = campaign["total_amt"] = str(sent)


def count_engagement(account: Account, campaign: Row, contact: Row, engagement: Engagement) -> None:
    """Add one engagement of `contact` to the campaign's counters."""
    reach = account.campaign_reach.setdefault(campaign["id"], CampaignReach())
    contact_id = contact["id"]
    kind = engagement.type
    if kind == kinds.OPENED:
        _add(campaign, "opens")
        _add_first(campaign, "uniqueopens", reach.opened, contact_id)
    elif kind == kinds.CLICKED:
        _add(campaign, "linkclicks")
        _add_first(campaign, "uniquelinkclicks", reach.links, (contact_id, engagement.url or ""))
        _add_first(campaign, "subscriberclicks", reach.clicked, contact_id)
    elif kind == kinds.BOUNCED:
        _add(campaign, "hardbounces" if engagement.hard_bounce else "softbounces")
    elif kind in (kinds.UNSUBSCRIBED, kinds.SPAM):
        _add(campaign, "unsubscribes")
        if engagement.reason:
            _add(campaign, "unsubreasons")


def _add(campaign: Row, counter: str) -> None:
    campaign[counter] = str(int(campaign[counter]) + 1)


def _add_first(campaign: Row, counter: str, seen: set[Any], key: Any) -> None:
    if key not in seen:
        seen.add(key)
        _add(campaign, counter)


def webhook_fields(account: Account, campaign: Row) -> dict[str, str]:
    """The campaign as a webhook names it (the form's campaign[...] fields)."""
    fields = {
        "campaign[id]": campaign["id"],
        "campaign[name]": campaign["name"],
        "campaign[type]": campaign["type"],
        "campaign[status]": campaign["status"],
        "campaign[recipients]": campaign["send_amt"],
    }
    message = account.email_messages.get(campaign.get("basemessageid") or "")
    if message is not None:
        fields["campaign[message][id]"] = message["id"]
        fields["campaign[message][subject]"] = message["subject"]
    return fields
