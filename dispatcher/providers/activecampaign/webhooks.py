"""Registering our webhook receiver at ActiveCampaign: POST /webhooks (shared/PROVIDERS-API.md,
ActiveCampaign "Webhooks"). `EVENTS` are those the receiver (dispatcher/webhooks/
activecampaign.py) takes, from the contact's own actions (public), a user's (admin) and
ActiveCampaign's own (system: sends, bounces). Not from API calls (api): those are ours (the
list status the dispatcher sets), and would come back as the person's own unsubscribe, able to
withdraw a newer re-subscription (the receiver ignores them too). Deliveries are not signed:
the secret is in the URL the caller gives."""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.providers.activecampaign.http import JsonObject

PATH = "/webhooks"
CREATE_WEBHOOK = "create_webhook"  # the operation, as metrics name it
EVENTS = ("sent", "open", "click", "bounce", "unsubscribe", "sms_unsub")
SOURCES = ("public", "admin", "system")


def create_body(name: str, url: str, events: Sequence[str], sources: Sequence[str]) -> JsonObject:
    return {"webhook": {"name": name, "url": url, "events": list(events), "sources": list(sources)}}
