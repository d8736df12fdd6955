"""Edges of KlaviyoClient that the sandbox does not produce, through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from dispatcher.providers.base import (
    Profile,
    RequestStamp,
    WindowReport,
    stamped,
    window_reports,
)
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient

Handler = Callable[[httpx.Request], httpx.Response]


def upsert_with(handler: Handler, base_url: str = "https://a.klaviyo.com") -> str:
    async def run() -> str:
        transport = httpx.MockTransport(handler)
        async with KlaviyoClient("pk_x", base_url=base_url, transport=transport) as client:
            return await client.upsert_profile(Profile(email="ada@example.com"))

    return asyncio.run(run())


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<html>captive portal</html>"),
        httpx.Response(201, json={"data": {"type": "profile"}}),
        httpx.Response(201, json={"data": {"type": "profile", "id": ""}}),
        httpx.Response(201, json=["not", "an", "object"]),
    ],
)
def test_a_success_without_a_profile_id_is_retryable(reply: httpx.Response) -> None:
    with pytest.raises(RetryableProviderError) as caught:
        upsert_with(lambda request: reply)

    assert caught.value.code == "invalid_response"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (" 10 ", 10.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), ("nan", None)],
)
def test_retry_after_parsing(header: str, expected: float | None) -> None:
    with pytest.raises(RetryableProviderError) as caught:
        upsert_with(lambda request: httpx.Response(429, headers={"Retry-After": header}))

    assert caught.value.retry_after == expected


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)

    with pytest.raises(RetryableProviderError) as caught:
        upsert_with(lambda request: httpx.Response(503, headers={"Retry-After": later}))

    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 3600


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(400, text="Bad Request"),
        httpx.Response(400, json={"errors": "nope"}),
        httpx.Response(400, json={"errors": [{"code": "invalid", "source": "?"}]}),
        httpx.Response(400, json={"errors": [{"code": "invalid", "source": {"pointer": 3}}]}),
    ],
)
def test_odd_error_bodies_are_tolerated(reply: httpx.Response) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        upsert_with(lambda request: reply)

    assert caught.value.status == 400
    assert caught.value.item_indexes == ()


def test_a_redirect_is_permanent() -> None:
    with pytest.raises(PermanentProviderError) as caught:
        upsert_with(lambda request: httpx.Response(301, headers={"Location": "/elsewhere"}))

    assert caught.value.status == 301


def test_a_bad_base_url_scheme_is_permanent() -> None:
    async def run() -> None:
        async with KlaviyoClient("pk_x", base_url="ftp://a.klaviyo.com") as client:
            await client.request_erasure("ada@example.com")

    with pytest.raises(PermanentProviderError):
        asyncio.run(run())


def test_an_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="API key"):
        KlaviyoClient("  ")


def test_requests_carry_klaviyo_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"data": {"type": "profile", "id": "01ABC"}})

    assert upsert_with(handler, base_url="https://example.test") == "01ABC"
    (request,) = seen
    assert str(request.url) == "https://example.test/api/profile-import"
    assert request.headers["authorization"] == "Klaviyo-API-Key pk_x"
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["content-type"] == "application/vnd.api+json"
    assert request.headers["accept"] == "application/vnd.api+json"


def _reports_of(reply: httpx.Response) -> list[WindowReport]:
    with window_reports() as reports, contextlib.suppress(RetryableProviderError):
        upsert_with(lambda request: reply)
    return reports


def test_every_answer_but_a_429_reports_where_the_steady_window_stands() -> None:
    created = {"data": {"type": "profile", "id": "01ABC"}}
    answer = httpx.Response(201, json=created, headers={"RateLimit-Reset": "17"})
    assert _reports_of(answer) == [WindowReport(reset_s=17.0, seconds=60.0)]
    throttled = httpx.Response(429, headers={"RateLimit-Reset": "17", "Retry-After": "3"})
    assert _reports_of(throttled) == []
    assert _reports_of(httpx.Response(201, json=created)) == []  # no header, nothing learnt
    unreadable = httpx.Response(201, json=created, headers={"RateLimit-Reset": "soon"})
    assert _reports_of(unreadable) == []


def test_a_request_asks_whether_its_reservation_is_still_fresh_once_its_body_is_built() -> None:
    """The request's stamp is looked at after the body is made and before the request
    goes: a stale one is renewed first."""
    steps: list[str] = []

    def fresh() -> bool:
        steps.append("looked")
        return "renewed" in steps

    async def renew() -> None:
        steps.append("renewed")

    async def no_room() -> bool:  # a transport that traces nothing never asks
        raise AssertionError("looked at where it leaves")

    def handler(request: httpx.Request) -> httpx.Response:
        steps.append("sent")
        return httpx.Response(201, json={"data": {"type": "profile", "id": "01ABC"}})

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        async with KlaviyoClient("pk_x", transport=transport) as client:
            stamp = RequestStamp(
                "upsert_profile", lambda: 0.0, fresh, renew, no_room, lambda _: None
            )
            with stamped(stamp):
                await client.upsert_profile(Profile(email="ada@example.com"))

    asyncio.run(run())
    assert steps == ["looked", "renewed", "sent"]
