"""Registering our webhook receiver at ActiveCampaign: POST /webhooks (shared/PROVIDERS-API.md,
ActiveCampaign "Webhooks"). `EVENTS` are those the receiver (dispatcher/webhooks/
activecampaign.py) takes, from every source: the contact's own actions (public), a user's
(admin), API calls (api) and ActiveCampaign's own (system: sends, bounces). Deliveries are not
signed: the secret is in the URL the caller gives."""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.providers.activecampaign.http import JsonObject

PATH = "/webhooks"
CREATE_WEBHOOK = "create_webhook"  # the operation, as metrics name it
EVENTS = ("sent", "open", "click", "bounce", "unsubscribe", "sms_unsub")
SOURCES = ("public", "admin", "api", "system")


def create_body(name: str, url: str, events: Sequence[str], sources: Sequence[str]) -> JsonObject:
    return {"webhook": {"name": name, "url": url, "events": list(events), "sources": list(sources)}}
