"""The webhook receiver: the providers tell us what people did with our
messages (delivered, opened, clicked, bounced, complained, unsubscribed); the
receiver checks each delivery is theirs and publishes it on the bus for the
service to apply. `receiver` is the ASGI app, `server` runs it in the
dispatcher's event loop; `klaviyo` and `activecampaign` read each provider's
deliveries (pure functions)."""

from __future__ import annotations

from dispatcher.webhooks.receiver import ReceiverConfig, create_app
from dispatcher.webhooks.server import WebhookServer

__all__ = ["ReceiverConfig", "WebhookServer", "create_app"]
