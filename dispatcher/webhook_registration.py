"""`marketing-dispatcher webhooks register --url <public base url>`: register the dispatcher's
webhook receiver (dispatcher/webhooks) at the configured provider, and print the new webhook's
id. The provider is the dispatcher's: MARKETING_PROVIDER with its credentials, or its sandbox
at MARKETING_SANDBOX_URL when none are given (as `build_provider` chooses).

    Klaviyo          <url>/webhooks/klaviyo, subscribed to the topics the receiver takes,
                     its deliveries signed with KLAVIYO_WEBHOOK_SECRET
    ActiveCampaign   <url>/webhooks/activecampaign/<ACTIVECAMPAIGN_WEBHOOK_SECRET> (its
                     deliveries are not signed: the secret in the URL, percent-encoded,
                     authenticates them), events sent, open, click, bounce, unsubscribe and
                     sms_unsub from the sources public, admin and system: not api, whose
                     events are what our own API calls did (a list status we set would come
                     back as the person's unsubscribe)

Exit status: 0 registered (the id on stdout); 2 a usage error, settings that do not validate
or no secret set for the provider; 1 the provider refused or could not be reached (why, on
stderr). A throttled call (429, or 503 at ActiveCampaign's limit) is tried again after its
Retry-After, a few times; it is one call, made directly (not through the replicas' shared
budget). Each run registers a webhook: running it twice registers two (delete the old one at
the provider).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO
from urllib.parse import quote

from pydantic import ValidationError

from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.errors import ProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.settings import DispatcherSettings

WEBHOOK_NAME = "marketing-automation"
DESCRIPTION = "Engagement for the marketing automation service (marketing-dispatcher)"
ATTEMPTS = 5
THROTTLED = frozenset({429, 503})
Sleep = Callable[[float], Awaitable[None]]


class NoSecret(Exception):
    """The provider's webhook secret is not set."""


def endpoint_url(provider: str, base_url: str, secret: str) -> str:
    """Where the provider is to send its deliveries: the receiver's path under `base_url`.
    ActiveCampaign's secret is one path segment, every character but letters, digits and
    `_.-~` percent-encoded (a `/`, `%`, `?` or `#` of it would change the path): the
    receiver compares it decoded."""
    base = base_url.rstrip("/")
    if provider == "klaviyo":
        return f"{base}/webhooks/klaviyo"
    return f"{base}/webhooks/activecampaign/{quote(secret, safe='')}"


def secret_of(settings: DispatcherSettings) -> str:
    if settings.provider_name == "klaviyo":
        secret, name = settings.klaviyo_webhook_secret, "KLAVIYO_WEBHOOK_SECRET"
    else:
        secret, name = settings.activecampaign_webhook_secret, "ACTIVECAMPAIGN_WEBHOOK_SECRET"
    value = secret.get_secret_value().strip()
    if not value:
        raise NoSecret(
            f"{name} is not set: set it (a long random string) here and on every dispatcher "
            "replica, then register again"
        )
    return value


async def register(settings: DispatcherSettings, base_url: str, *, sleep: Sleep) -> str:
    """Create the webhook at the provider; its id."""
    secret = secret_of(settings)
    url = endpoint_url(settings.provider_name, base_url, secret)
    api_url, key = settings.api_endpoint()
    timeout_s = settings.provider_timeout_s
    if settings.provider_name == "klaviyo":
        async with KlaviyoClient(key, base_url=api_url, timeout_s=timeout_s) as klaviyo:
            return await _retrying(
                lambda: klaviyo.create_webhook(WEBHOOK_NAME, url, secret, description=DESCRIPTION),
                sleep,
            )
    tracking_url, account_id, event_key = settings.event_tracking()
    tracking = TrackingAccount(account_id, event_key, tracking_url)
    async with ActiveCampaignClient(api_url, key, tracking, timeout_s=timeout_s) as client:
        return await _retrying(lambda: client.create_webhook(WEBHOOK_NAME, url), sleep)


async def _retrying(call: Callable[[], Awaitable[str]], sleep: Sleep) -> str:
    """`call`, tried again after a throttled answer (its Retry-After, else 1, 2, 4 ... s)."""
    attempt = 1
    while True:
        try:
            return await call()
        except RetryableProviderError as exc:
            if exc.status not in THROTTLED or attempt >= ATTEMPTS:
                raise
            await sleep(exc.retry_after if exc.retry_after is not None else 2.0 ** (attempt - 1))
        attempt += 1


def main(
    argv: Sequence[str],
    *,
    settings: DispatcherSettings | None = None,
    sleep: Sleep = asyncio.sleep,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The command, after `webhooks register`; its exit status. `out` and `err` are
    sys.stdout and sys.stderr unless given."""
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="marketing-dispatcher webhooks register",
        description="Register the dispatcher's webhook receiver at the configured provider.",
    )
    parser.add_argument(
        "--url", required=True, help="the receiver's public base URL, e.g. https://hooks.example"
    )
    args = parser.parse_args(argv)
    try:
        chosen = settings if settings is not None else DispatcherSettings()
        webhook_id = asyncio.run(register(chosen, args.url, sleep=sleep))
    except ValidationError as exc:
        print(f"marketing-dispatcher: invalid settings: {exc}", file=err)
        return 2
    except NoSecret as exc:
        print(f"marketing-dispatcher: {exc}", file=err)
        return 2
    except ProviderError as exc:
        print(f"marketing-dispatcher: the webhook was not registered: {exc}", file=err)
        return 1
    print(webhook_id, file=out)
    return 0
