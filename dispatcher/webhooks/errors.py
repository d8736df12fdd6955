"""Why the receiver did not take a webhook request. The receiver answers each
with its own status (dispatcher.webhooks.receiver); nothing is published.

    WebhookError
     ├── Refused      not from the provider as far as we can tell: Klaviyo 401,
     │                ActiveCampaign 404 (an unknown URL, to whoever guesses)
     ├── Malformed    from the provider, but unreadable: 400
     │    └── TooLarge  a body over the receiver's limit: 413
     └── Unavailable  read, but the bus did not take it all: 503
"""

from __future__ import annotations


class WebhookError(Exception):
    """A webhook request not taken; the message says why (for the log, never the answer)."""


class Refused(WebhookError):
    pass


class Malformed(WebhookError):
    pass


class TooLarge(Malformed):
    pass


class Unavailable(WebhookError):
    pass
