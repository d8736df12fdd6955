"""Registering our webhook receiver at ActiveCampaign: POST /webhooks (shared/PROVIDERS-API.md,
ActiveCampaign "Webhooks"), and GET /webhooks (limit/offset) and DELETE /webhooks/{id} to replace
the one registered before. `EVENTS` are those the receiver (dispatcher/webhooks/
activecampaign.py) takes, from the contact's own actions (public), a user's (admin) and
ActiveCampaign's own (system: sends, bounces). Not from API calls (api): those are ours (the
list status the dispatcher sets), and would come back as the person's own unsubscribe, able to
withdraw a newer re-subscription (the receiver ignores them too). Deliveries are not signed:
the secret is in the URL the caller gives."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from dispatcher.providers.activecampaign.http import JsonObject, as_id

PATH = "/webhooks"
# The operations, as metrics name them.
CREATE_WEBHOOK, LIST_WEBHOOKS, DELETE_WEBHOOK = "create_webhook", "list_webhooks", "delete_webhook"
PAGE = 100  # the most a list page takes
EVENTS = ("sent", "open", "click", "bounce", "unsubscribe", "sms_unsub")
SOURCES = ("public", "admin", "system")


def create_body(name: str, url: str, events: Sequence[str], sources: Sequence[str]) -> JsonObject:
    return {"webhook": {"name": name, "url": url, "events": list(events), "sources": list(sources)}}


def webhook_path(webhook_id: str) -> str:
    return f"{PATH}/{quote(webhook_id, safe='')}"


def listed(rows: Sequence[JsonObject]) -> list[tuple[str, str, str]]:
    """(id, name, url) of each webhook of a list page that has an id (one without could
    not be deleted anyway)."""
    found = [(as_id(row.get("id")), row.get("name"), row.get("url")) for row in rows]
    return [
        (webhook_id, name if isinstance(name, str) else "", url if isinstance(url, str) else "")
        for webhook_id, name, url in found
        if webhook_id
    ]
