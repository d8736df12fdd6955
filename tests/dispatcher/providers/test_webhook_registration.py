"""Registering the dispatcher's webhook receiver: each provider client's create_webhook, and
`marketing-dispatcher webhooks register --url ...` against both sandboxes (in-process, with
the sandbox credentials the dispatcher's provider uses without keys)."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from dispatcher import main as dispatcher_main
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from dispatcher.webhook_registration import endpoint_url, main
from tests.dispatcher.helpers import with_client

PUBLIC_URL = "https://hooks.example.com/"
KLAVIYO_TOPICS = [
    "event:klaviyo.received_email",
    "event:klaviyo.opened_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.unsubscribed_from_sms_marketing",
    "event:klaviyo.sent_sms",
]
AC_EVENTS = ["sent", "open", "click", "bounce", "unsubscribe", "sms_unsub"]
# Not `api`: our own API calls (list status, say) would come back as events.
AC_SOURCES = ["public", "admin", "system"]
PROVIDER_ENV = (
    "MARKETING_PROVIDER",
    "MARKETING_SANDBOX_URL",
    "KLAVIYO_API_KEY",
    "KLAVIYO_WEBHOOK_SECRET",
    "ACTIVECAMPAIGN_URL",
    "ACTIVECAMPAIGN_API_KEY",
    "ACTIVECAMPAIGN_EVENT_ACCOUNT_ID",
    "ACTIVECAMPAIGN_EVENT_KEY",
    "ACTIVECAMPAIGN_WEBHOOK_SECRET",
)


@pytest.fixture
def klaviyo() -> Iterator[Sandbox]:
    """Any key, as the dispatcher's sandbox provider presents its own."""
    with start_sandbox() as running:
        yield running


@pytest.fixture
def activecampaign() -> Iterator[ActiveCampaignSandbox]:
    with start_activecampaign_sandbox() as running:
        yield running


def environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run(argv: list[str], sleep: Sleeps | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err, sleep=sleep or Sleeps())
    return status, out.getvalue(), err.getvalue()


def test_the_klaviyo_client_creates_a_webhook_of_the_receivers_topics(sandbox: Sandbox) -> None:
    url = "https://hooks.example.com/webhooks/klaviyo"

    webhook_id = with_client(sandbox, lambda c: c.create_webhook("ours", url, "s3cret"))

    (created,) = sandbox.state.webhooks.book.all()
    assert (created.id, created.endpoint_url, created.secret_key) == (webhook_id, url, "s3cret")
    assert list(created.topics) == KLAVIYO_TOPICS


def test_the_activecampaign_client_creates_a_webhook_of_every_source_but_the_api(
    activecampaign: ActiveCampaignSandbox,
) -> None:
    url = "https://hooks.example.com/webhooks/activecampaign/s3cret"

    async def create() -> str:
        tracking = TrackingAccount("1", "key", activecampaign.tracking_url)
        async with ActiveCampaignClient(activecampaign.base_url, "key", tracking) as client:
            return await client.create_webhook("ours", url)

    webhook_id = asyncio.run(create())

    (created,) = activecampaign.view("webhooks")
    assert (created["id"], created["url"]) == (webhook_id, url)
    assert created["events"] == AC_EVENTS
    assert created["sources"] == AC_SOURCES


def test_register_at_the_klaviyo_sandbox_prints_the_webhook_id(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    environment(
        monkeypatch,
        MARKETING_PROVIDER="sandbox",
        MARKETING_SANDBOX_URL=klaviyo.base_url,
        KLAVIYO_WEBHOOK_SECRET="s3cret",
    )

    status, out, err = run(["--url", PUBLIC_URL])

    assert (status, err) == (0, "")
    (created,) = klaviyo.state.webhooks.book.all()
    assert out == f"{created.id}\n"
    assert created.endpoint_url == "https://hooks.example.com/webhooks/klaviyo"
    assert (created.secret_key, list(created.topics)) == ("s3cret", KLAVIYO_TOPICS)
    (request,) = klaviyo.requests("/api/webhooks")
    assert request["headers"]["revision"] == "2026-07-15"


def test_register_at_the_activecampaign_sandbox_puts_the_secret_in_the_url(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox
) -> None:
    environment(
        monkeypatch,
        MARKETING_PROVIDER="activecampaign",
        MARKETING_SANDBOX_URL=activecampaign.base_url,
        ACTIVECAMPAIGN_WEBHOOK_SECRET="t0ken",
    )

    status, out, _ = run(["--url", "http://127.0.0.1:8091"])

    assert (status, out) == (0, "1\n")
    (created,) = activecampaign.view("webhooks")
    assert created["url"] == "http://127.0.0.1:8091/webhooks/activecampaign/t0ken"
    assert (created["events"], created["sources"]) == (AC_EVENTS, AC_SOURCES)


def test_register_at_the_activecampaign_sandbox_quotes_the_secret_in_the_url(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox
) -> None:
    environment(
        monkeypatch,
        MARKETING_PROVIDER="activecampaign",
        MARKETING_SANDBOX_URL=activecampaign.base_url,
        ACTIVECAMPAIGN_WEBHOOK_SECRET="a/b%c d?",
    )

    status, _, _ = run(["--url", "http://127.0.0.1:8091/"])

    assert status == 0
    (created,) = activecampaign.view("webhooks")
    assert created["url"] == "http://127.0.0.1:8091/webhooks/activecampaign/a%2Fb%25c%20d%3F"


@pytest.mark.parametrize(
    ("secret", "path"),
    [
        ("t0ken", "t0ken"),
        ("a/b", "a%2Fb"),
        ("50%off", "50%25off"),
        ("../x", "..%2Fx"),
        ("q?x=1#f", "q%3Fx%3D1%23f"),
        ("ü", "%C3%BC"),
    ],
)
def test_the_activecampaign_endpoint_quotes_every_character_of_the_secret(
    secret: str, path: str
) -> None:
    assert endpoint_url("activecampaign", "https://hooks.example.com/", secret) == (
        f"https://hooks.example.com/webhooks/activecampaign/{path}"
    )
    assert endpoint_url("klaviyo", "https://hooks.example.com/", secret) == (
        "https://hooks.example.com/webhooks/klaviyo"
    )


@pytest.mark.parametrize(
    ("provider", "secret"),
    [("sandbox", "KLAVIYO_WEBHOOK_SECRET"), ("activecampaign", "ACTIVECAMPAIGN_WEBHOOK_SECRET")],
)
def test_register_without_a_secret_refuses_with_status_2(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox, provider: str, secret: str
) -> None:
    environment(monkeypatch, MARKETING_PROVIDER=provider, MARKETING_SANDBOX_URL=klaviyo.base_url)

    status, out, err = run(["--url", PUBLIC_URL])

    assert (status, out) == (2, "")
    assert f"{secret} is not set" in err
    assert klaviyo.requests() == []


def test_register_waits_out_a_429_and_tries_again(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    environment(monkeypatch, MARKETING_SANDBOX_URL=klaviyo.base_url, KLAVIYO_WEBHOOK_SECRET="s")
    klaviyo.add_fault(path="/api/webhooks", status=429, retry_after=7, times=2)
    sleeps = Sleeps()

    status, _, _ = run(["--url", PUBLIC_URL], sleeps)

    assert status == 0 and sleeps.waits == [7.0, 7.0]
    assert len(klaviyo.state.webhooks.book.all()) == 1


def test_register_gives_up_after_a_few_throttled_tries(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    environment(monkeypatch, MARKETING_SANDBOX_URL=klaviyo.base_url, KLAVIYO_WEBHOOK_SECRET="s")
    klaviyo.add_fault(path="/api/webhooks", status=429, retry_after=1, times=10)
    sleeps = Sleeps()

    status, out, err = run(["--url", PUBLIC_URL], sleeps)

    assert (status, out) == (1, "")
    assert "429" in err and len(sleeps.waits) == 4


def test_register_reports_the_providers_refusal_with_status_1(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    environment(monkeypatch, MARKETING_SANDBOX_URL=klaviyo.base_url, KLAVIYO_WEBHOOK_SECRET="s")

    status, out, err = run(["--url", "http://hooks.example.com"])  # Klaviyo wants https

    assert (status, out) == (1, "")
    assert "HTTP 400" in err and "/data/attributes/endpoint_url" in err


def test_register_needs_a_url() -> None:
    with pytest.raises(SystemExit) as exited:
        run([])

    assert exited.value.code == 2


def test_marketing_dispatcher_webhooks_register_runs_the_command(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox, capsys: pytest.CaptureFixture[Any]
) -> None:
    environment(monkeypatch, MARKETING_SANDBOX_URL=klaviyo.base_url, KLAVIYO_WEBHOOK_SECRET="s")
    argv = ["marketing-dispatcher", "webhooks", "register", "--url", PUBLIC_URL]
    monkeypatch.setattr(sys, "argv", argv)

    with pytest.raises(SystemExit) as exited:
        dispatcher_main.main()

    assert exited.value.code == 0
    (created,) = klaviyo.state.webhooks.book.all()
    assert capsys.readouterr().out == f"{created.id}\n"
