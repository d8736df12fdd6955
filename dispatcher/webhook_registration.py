"""`marketing-dispatcher webhooks register --url <public base url>`: register the dispatcher's
webhook receiver (dispatcher/webhooks) at the configured provider, replacing the one registered
before, and print the new webhook's id. The provider is the dispatcher's: MARKETING_PROVIDER with
its credentials, or its sandbox at MARKETING_SANDBOX_URL when none are given (as `build_provider`
chooses).

    Klaviyo          <url>/webhooks/klaviyo, subscribed to the topics the receiver takes,
                     its deliveries signed with KLAVIYO_WEBHOOK_SECRET
    ActiveCampaign   <url>/webhooks/activecampaign/<ACTIVECAMPAIGN_WEBHOOK_SECRET> (its
                     deliveries are not signed: the secret in the URL, percent-encoded,
                     authenticates them), events sent, open, click, bounce, unsubscribe and
                     sms_unsub from the sources public, admin and system: not api, whose
                     events are what our own API calls did (a list status we set would come
                     back as the person's unsubscribe)

Running it again (a new secret, a deploy script) leaves one webhook, not two delivering every
engagement twice: it lists the provider's webhooks, creates the new one, then deletes ours that
were there before (`is_ours`: named WEBHOOK_NAME, for the same receiver), naming them on
stderr. Created first, so that deliveries never stop; a webhook of another name or base URL
is left alone.

Exit status: 0 registered (the id on stdout); 2 a usage error, settings that do not validate
or no secret set for the provider; 1 the provider refused or could not be reached (why, on
stderr), or an old webhook could not be deleted: the new one is registered (its id on stdout)
and stderr names the old one to delete at the provider by hand. A throttled call (429, or 503
at ActiveCampaign's limit) is tried again after its Retry-After, a few times; each is made
directly (not through the replicas' shared budget).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO, TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.errors import ProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.settings import DispatcherSettings

WEBHOOK_NAME = "marketing-automation"
DESCRIPTION = "Engagement for the marketing automation service (marketing-dispatcher)"
ATTEMPTS = 5
# Answers after which the call certainly changed nothing: a 429 from either, and
# ActiveCampaign's 503 at its limit. Klaviyo's 503 may come after the webhook was made.
THROTTLED = {"klaviyo": frozenset({429}), "activecampaign": frozenset({429, 503})}
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class NoSecret(Exception):
    """The provider's webhook secret is not set."""


class Webhooks(Protocol):
    """What both provider clients offer to find and delete webhooks."""

    async def list_webhooks(self) -> list[tuple[str, str, str]]: ...

    async def delete_webhook(self, webhook_id: str) -> None: ...


@dataclass(frozen=True)
class Registered:
    """The new webhook; ours from before that were deleted, and those that could not be
    (id, why)."""

    webhook_id: str
    replaced: tuple[str, ...] = ()
    not_deleted: tuple[tuple[str, str], ...] = ()


def endpoint_url(provider: str, base_url: str, secret: str) -> str:
    """Where the provider is to send its deliveries: the receiver's path under `base_url`.
    ActiveCampaign's secret is one path segment, every character but letters, digits and
    `_.-~` percent-encoded (a `/`, `%`, `?` or `#` of it would change the path): the
    receiver compares it decoded."""
    base = base_url.rstrip("/")
    if provider == "klaviyo":
        return f"{base}/webhooks/klaviyo"
    return f"{base}/webhooks/activecampaign/{quote(secret, safe='')}"


def is_ours(provider: str, base_url: str, secret: str, name: str, url: str) -> bool:
    """A webhook this command registered for the same receiver: named WEBHOOK_NAME, and at
    Klaviyo sent to the same endpoint, at ActiveCampaign to the same base URL whatever the
    secret segment (after a rotation the old one's is the old secret). One of another name or
    base URL (a staging receiver's, another tool's) is not ours to delete."""
    if name != WEBHOOK_NAME:
        return False
    if provider == "klaviyo":
        return _same_or_cut_short(url, endpoint_url(provider, base_url, secret), base_url)
    return url.startswith(endpoint_url(provider, base_url, ""))  # the path up to the secret


def _same_or_cut_short(shown: str, ours: str, base_url: str) -> bool:
    """Klaviyo's answers show `endpoint_url` truncated (PROVIDERS-API.md, in a form it does
    not document): a shown URL that ends in an ellipsis counts as ours when what is left of
    it reaches past our base URL and begins ours (cut shorter, it could be another
    receiver's under the same host). A form cut elsewhere is not recognised, and the old
    webhook stays (the stderr line names none replaced)."""
    if shown == ours:
        return True
    kept = shown.removesuffix("…").removesuffix("...")
    past_base = kept.startswith(base_url.rstrip("/") + "/")
    return kept != shown and past_base and ours.startswith(kept)


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


async def register(settings: DispatcherSettings, base_url: str, *, sleep: Sleep) -> Registered:
    """Create the webhook at the provider, replacing ours from before (`_replace`)."""
    secret = secret_of(settings)
    provider = settings.provider_name
    url = endpoint_url(provider, base_url, secret)
    ours = functools.partial(is_ours, provider, base_url, secret)
    api_url, key = settings.api_endpoint()
    timeout_s = settings.provider_timeout_s
    if provider == "klaviyo":
        async with KlaviyoClient(
            key, base_url=api_url, timeout_s=timeout_s, sleep=sleep
        ) as klaviyo:
            create = functools.partial(
                klaviyo.create_webhook, WEBHOOK_NAME, url, secret, description=DESCRIPTION
            )
            return await _replace(klaviyo, create, ours, _Retry(sleep, THROTTLED["klaviyo"]))
    tracking_url, account_id, event_key = settings.event_tracking()
    tracking = TrackingAccount(account_id, event_key, tracking_url)
    async with ActiveCampaignClient(api_url, key, tracking, timeout_s=timeout_s) as client:
        create = functools.partial(client.create_webhook, WEBHOOK_NAME, url)
        return await _replace(client, create, ours, _Retry(sleep, THROTTLED["activecampaign"]))


async def _replace(
    webhooks: Webhooks,
    create: Callable[[], Awaitable[str]],
    ours: Callable[[str, str], bool],
    retry: _Retry,
) -> Registered:
    """List ours, create the new one, then delete the old: in this order no delivery is
    missed (some may come twice for a moment), and a failed create leaves the old one
    working. A delete that fails is reported, not raised: the new one
    exists, and the caller must say which to delete by hand."""
    before = [
        webhook_id
        for webhook_id, name, url in await retry(webhooks.list_webhooks)
        if ours(name, url)
    ]
    webhook_id = await retry(create)
    replaced: list[str] = []
    not_deleted: list[tuple[str, str]] = []
    for old in before:
        try:
            await retry(functools.partial(webhooks.delete_webhook, old))
        except ProviderError as exc:
            not_deleted.append((old, str(exc)))
        else:
            replaced.append(old)
    return Registered(webhook_id, tuple(replaced), tuple(not_deleted))


@dataclass(frozen=True)
class _Retry:
    """Calls tried again after a throttled answer (its Retry-After, else 1, 2, 4 ... s)."""

    sleep: Sleep
    throttled: frozenset[int]

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 1
        while True:
            try:
                return await call()
            except RetryableProviderError as exc:
                if exc.status not in self.throttled or attempt >= ATTEMPTS:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 2.0 ** (attempt - 1)
                await self.sleep(wait)
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
        description="Register the dispatcher's webhook receiver at the configured provider, "
        "replacing the one registered before.",
    )
    parser.add_argument(
        "--url", required=True, help="the receiver's public base URL, e.g. https://hooks.example"
    )
    args = parser.parse_args(argv)
    try:
        chosen = settings if settings is not None else DispatcherSettings()
        registered = asyncio.run(register(chosen, args.url, sleep=sleep))
    except ValidationError as exc:
        print(f"marketing-dispatcher: invalid settings: {exc}", file=err)
        return 2
    except NoSecret as exc:
        print(f"marketing-dispatcher: {exc}", file=err)
        return 2
    except ProviderError as exc:
        print(f"marketing-dispatcher: the webhook was not registered: {exc}", file=err)
        return 1
    print(registered.webhook_id, file=out)
    return _report(registered, err)


def _report(registered: Registered, err: TextIO) -> int:
    """What was replaced, on stderr; 1 when an old webhook is left (it delivers every
    engagement a second time until it is deleted)."""
    if registered.replaced:
        print(f"marketing-dispatcher: replaced webhook {', '.join(registered.replaced)}", file=err)
    for old, why in registered.not_deleted:
        print(
            f"marketing-dispatcher: webhook {registered.webhook_id} is registered, but the one "
            f"it replaces, {old}, was not deleted ({why}): delete webhook {old} at the provider "
            "by hand, or run this again",
            file=err,
        )
    return 1 if registered.not_deleted else 0
