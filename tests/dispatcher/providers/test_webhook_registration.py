"""Registering the dispatcher's webhook receiver: each provider client's create_webhook,
list_webhooks and delete_webhook, and `marketing-dispatcher webhooks register --url ...` against
both sandboxes (in-process, with the sandbox credentials the dispatcher's provider uses without
keys): run again, it replaces our webhook and leaves others alone."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from dispatcher import main as dispatcher_main
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from dispatcher.sandbox.klaviyo.webhook_book import NewWebhook
from dispatcher.webhook_registration import WEBHOOK_NAME, endpoint_url, is_ours, main
from tests.dispatcher.helpers import with_client

T = TypeVar("T")

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
    """Records each wait; with `sandbox`, moves its clock on by it (its rate windows pass)."""

    def __init__(self, sandbox: Sandbox | ActiveCampaignSandbox | None = None) -> None:
        self.waits: list[float] = []
        self._sandbox = sandbox

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._sandbox is not None:
            self._sandbox.advance_clock(seconds)


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
    listing, creating = klaviyo.requests("/api/webhooks")
    assert (listing["method"], creating["method"]) == ("GET", "POST")
    assert creating["headers"]["revision"] == "2026-07-15"


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


# --- running it again: ours replaced, others left alone ---------------------------------------


def klaviyo_environment(monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox, secret: str) -> None:
    environment(
        monkeypatch,
        MARKETING_PROVIDER="sandbox",
        MARKETING_SANDBOX_URL=klaviyo.base_url,
        KLAVIYO_WEBHOOK_SECRET=secret,
    )


def activecampaign_environment(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox, secret: str
) -> None:
    environment(
        monkeypatch,
        MARKETING_PROVIDER="activecampaign",
        MARKETING_SANDBOX_URL=activecampaign.base_url,
        ACTIVECAMPAIGN_WEBHOOK_SECRET=secret,
    )


def plant_klaviyo_webhook(klaviyo: Sandbox, name: str, url: str) -> str:
    """A webhook made at the sandbox directly (create_webhook takes one a second)."""
    new = NewWebhook(name, None, url, "their-secret", (KLAVIYO_TOPICS[0],))
    return klaviyo.state.webhooks.create(new, "2026-01-01T00:00:00+00:00").id


def with_activecampaign(
    activecampaign: ActiveCampaignSandbox,
    operation: Callable[[ActiveCampaignClient], Awaitable[T]],
) -> T:
    async def run() -> T:
        tracking = TrackingAccount("1", "key", activecampaign.tracking_url)
        async with ActiveCampaignClient(activecampaign.base_url, "key", tracking) as client:
            return await operation(client)

    return asyncio.run(run())


def plant_activecampaign_webhooks(
    activecampaign: ActiveCampaignSandbox, *webhooks: tuple[str, str]
) -> list[str]:
    async def create(client: ActiveCampaignClient) -> list[str]:
        return [await client.create_webhook(name, url) for name, url in webhooks]

    return with_activecampaign(activecampaign, create)


def test_register_again_at_klaviyo_replaces_ours_by_the_new_one(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    klaviyo_environment(monkeypatch, klaviyo, "old-secret")
    _, first, _ = run(["--url", PUBLIC_URL], Sleeps(klaviyo))
    old = first.strip()
    klaviyo_environment(monkeypatch, klaviyo, "new-secret")  # rotated

    status, out, err = run(["--url", "https://hooks.example.com"], Sleeps(klaviyo))

    assert status == 0
    (kept,) = klaviyo.state.webhooks.book.all()
    assert (out, kept.secret_key) == (f"{kept.id}\n", "new-secret")
    assert kept.id != old
    assert err == f"marketing-dispatcher: replaced webhook {old}\n"
    calls = [(r["method"], r["path"]) for r in klaviyo.requests() if "webhook" in r["path"]]
    # Listed, then the new one created, then the old one deleted: no moment without one.
    assert calls[-3:] == [
        ("GET", "/api/webhooks"),
        ("POST", "/api/webhooks"),
        ("DELETE", f"/api/webhooks/{old}"),
    ]


def test_register_at_klaviyo_leaves_other_webhooks_alone(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    others = {
        plant_klaviyo_webhook(
            klaviyo, "another-tool", "https://hooks.example.com/webhooks/klaviyo"
        ),
        plant_klaviyo_webhook(
            klaviyo, WEBHOOK_NAME, "https://staging.example.com/webhooks/klaviyo"
        ),
    }
    klaviyo_environment(monkeypatch, klaviyo, "s3cret")

    status, out, err = run(["--url", PUBLIC_URL], Sleeps(klaviyo))

    assert (status, err) == (0, "")
    assert {w.id for w in klaviyo.state.webhooks.book.all()} == others | {out.strip()}


def test_register_again_at_activecampaign_replaces_ours_whatever_its_secret(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox
) -> None:
    activecampaign_environment(monkeypatch, activecampaign, "old-token")
    _, first, _ = run(["--url", "http://127.0.0.1:8091"], Sleeps(activecampaign))
    activecampaign_environment(monkeypatch, activecampaign, "new-token")  # rotated

    status, out, err = run(["--url", "http://127.0.0.1:8091/"], Sleeps(activecampaign))

    assert status == 0
    (kept,) = activecampaign.view("webhooks")
    assert out == f"{kept['id']}\n"
    assert kept["url"] == "http://127.0.0.1:8091/webhooks/activecampaign/new-token"
    assert err == f"marketing-dispatcher: replaced webhook {first.strip()}\n"


def test_register_at_activecampaign_leaves_other_webhooks_alone(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox
) -> None:
    others = plant_activecampaign_webhooks(
        activecampaign,
        ("another-tool", "http://127.0.0.1:8091/webhooks/activecampaign/t0ken"),
        (WEBHOOK_NAME, "http://127.0.0.1:9999/webhooks/activecampaign/t0ken"),
        (WEBHOOK_NAME, "http://127.0.0.1:8091/hooks/activecampaign"),
    )
    activecampaign_environment(monkeypatch, activecampaign, "t0ken")

    status, out, err = run(["--url", "http://127.0.0.1:8091"], Sleeps(activecampaign))

    assert (status, err) == (0, "")
    assert {w["id"] for w in activecampaign.view("webhooks")} == {*others, out.strip()}


def test_register_waits_out_a_throttled_delete(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    klaviyo_environment(monkeypatch, klaviyo, "s3cret")
    old = plant_klaviyo_webhook(klaviyo, WEBHOOK_NAME, "https://hooks.example.com/webhooks/klaviyo")
    klaviyo.add_fault(path=f"/api/webhooks/{old}", status=429, retry_after=3)
    sleeps = Sleeps(klaviyo)

    status, out, _ = run(["--url", PUBLIC_URL], sleeps)

    assert (status, sleeps.waits) == (0, [3.0])
    assert [w.id for w in klaviyo.state.webhooks.book.all()] == [out.strip()]


def test_a_refused_delete_at_klaviyo_exits_1_naming_the_webhook_to_delete(
    monkeypatch: pytest.MonkeyPatch, klaviyo: Sandbox
) -> None:
    klaviyo_environment(monkeypatch, klaviyo, "s3cret")
    old = plant_klaviyo_webhook(klaviyo, WEBHOOK_NAME, "https://hooks.example.com/webhooks/klaviyo")
    klaviyo.add_fault(path=f"/api/webhooks/{old}", status=403)

    status, out, err = run(["--url", PUBLIC_URL], Sleeps(klaviyo))

    assert status == 1
    new = out.strip()  # registered all the same
    assert {w.id for w in klaviyo.state.webhooks.book.all()} == {old, new}
    assert f"webhook {new} is registered" in err and "HTTP 403" in err
    assert f"delete webhook {old} at the provider by hand" in err
    assert "replaced" not in err


def test_a_failed_delete_at_activecampaign_exits_1_after_deleting_the_others(
    monkeypatch: pytest.MonkeyPatch, activecampaign: ActiveCampaignSandbox
) -> None:
    base = "http://127.0.0.1:8091/webhooks/activecampaign"
    stuck, gone = plant_activecampaign_webhooks(
        activecampaign, (WEBHOOK_NAME, f"{base}/one"), (WEBHOOK_NAME, f"{base}/two")
    )
    activecampaign.add_fault(path=f"/api/3/webhooks/{stuck}", status=500, times=10)
    activecampaign_environment(monkeypatch, activecampaign, "three")

    status, out, err = run(["--url", "http://127.0.0.1:8091"], Sleeps(activecampaign))

    assert status == 1
    assert {w["id"] for w in activecampaign.view("webhooks")} == {stuck, out.strip()}
    replaced, failed = err.splitlines()
    assert replaced == f"marketing-dispatcher: replaced webhook {gone}"
    assert f"delete webhook {stuck} at the provider by hand" in failed and "HTTP 500" in failed


# --- the clients' list_webhooks and delete_webhook --------------------------------------------


def test_the_klaviyo_client_lists_every_page_a_second_apart() -> None:
    pages = {
        "/api/webhooks": {
            "data": [
                {"type": "webhook", "id": "A", "attributes": {"name": "a", "endpoint_url": "u"}},
                {"type": "webhook", "attributes": {"name": "no id"}},
            ],
            "links": {"next": "https://a.klaviyo.test/api/webhooks?page%5Bcursor%5D=2"},
        },
        "/api/webhooks?page%5Bcursor%5D=2": {"data": [{"type": "webhook", "id": "B"}]},
    }
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path.decode())
        return httpx.Response(200, content=json.dumps(pages[asked[-1]]).encode())

    sleeps = Sleeps()

    async def list_them() -> list[tuple[str, str, str]]:
        transport = httpx.MockTransport(answer)
        async with KlaviyoClient(
            "pk_test", base_url="https://a.klaviyo.test", transport=transport, sleep=sleeps
        ) as client:
            return await client.list_webhooks()

    assert asyncio.run(list_them()) == [("A", "a", "u"), ("B", "", "")]
    assert asked == list(pages) and sleeps.waits == [1.0]


def test_the_activecampaign_client_lists_every_page() -> None:
    rows = [{"id": str(i), "name": f"w{i}", "url": f"https://h/{i}"} for i in range(1, 102)]
    offsets: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        offsets.append(str(offset))
        page = rows[offset : offset + limit]
        return httpx.Response(200, json={"webhooks": page, "meta": {"total": str(len(rows))}})

    async def list_them() -> list[tuple[str, str, str]]:
        tracking = TrackingAccount("1", "key")
        transport = httpx.MockTransport(answer)
        async with ActiveCampaignClient(
            "https://acct.api-us1.test", "key", tracking, transport=transport
        ) as client:
            return await client.list_webhooks()

    listed = asyncio.run(list_them())

    assert len(listed) == 101 and listed[100] == ("101", "w101", "https://h/101")
    assert offsets == ["0", "100"]


def test_deleting_a_webhook_already_gone_is_done(
    klaviyo: Sandbox, activecampaign: ActiveCampaignSandbox
) -> None:
    async def klaviyo_delete() -> None:
        async with KlaviyoClient("pk_test", base_url=klaviyo.base_url) as client:
            await client.delete_webhook("01NOSUCHWEBHOOK")

    asyncio.run(klaviyo_delete())
    with_activecampaign(activecampaign, lambda client: client.delete_webhook("404"))

    assert [r["status"] for r in klaviyo.rejections()] == [404]
    assert [r["status"] for r in activecampaign.rejections()] == [404]


@pytest.mark.parametrize(
    ("shown", "ours"),
    [
        ("https://hooks.example/webhooks/klaviyo", True),
        ("https://hooks.example/webhooks/kla…", True),  # shown cut short
        ("https://hooks.example/webh...", True),
        ("https://hooks.example/other…", False),
        ("https://…", False),  # too little left to tell
        ("https://staging.example/webhooks/klaviyo", False),
    ],
)
def test_a_klaviyo_webhook_shown_cut_short_is_still_recognised(shown: str, ours: bool) -> None:
    assert is_ours("klaviyo", "https://hooks.example", "secret", WEBHOOK_NAME, shown) is ours


def test_a_klaviyo_url_cut_within_the_base_path_is_not_taken_for_ours() -> None:
    """Cut before our base path ends, it could be another receiver's on the same host."""
    base = "https://hooks.example/prod"
    assert not is_ours("klaviyo", base, "s", WEBHOOK_NAME, "https://hooks.example/…")
    assert not is_ours("klaviyo", base, "s", WEBHOOK_NAME, "https://hooks.example/pr…")
    assert is_ours("klaviyo", base, "s", WEBHOOK_NAME, "https://hooks.example/prod/webho…")
