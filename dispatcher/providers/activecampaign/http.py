"""ActiveCampaign's HTTP API (v3) over httpx, with its errors translated at this boundary:

    network error before sending, 408, 429, 503      -> RetryableProviderError (Retry-After)
    timeout or broken connection after sending, 500,
      502, 504                                       -> RetryableProviderError, and for a write
                                                        the unknown outcome is counted
                                                        (metrics.PROVIDER_UNKNOWN_OUTCOMES)
    400 {"message": "Rate limit exceeded."}          -> RetryableProviderError (bulk import's
                                                        rate-limit answer is a 400)
    403 {"message": "Forbidden"} and other 4xx       -> PermanentProviderError
    404, and 403 "No Result found for ..."           -> None to the caller that allows a miss

Error bodies vary by path: {"errors": [{"title", "detail", "code", "source"}]}, {"errors":
["text"]}, {"message": "..."}, {"success": 0, "message", "failureReasons"} or {}; `describe`
reads them all. Ids and counters come as strings ("10") or numbers: `as_id` and `as_count`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from dispatcher import metrics
from dispatcher.providers import http_pool
from dispatcher.providers.activecampaign.limits import API_BUCKETS
from dispatcher.providers.base import RateBucket, RequestPacer, unpaced
from dispatcher.providers.errors import (
    RATE_LIMITED,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from dispatcher.providers.retry_after import parse_retry_after

JsonObject = dict[str, Any]
USER_AGENT = "marketing-automation-dispatcher/0.1"
PROVIDER = "activecampaign"
RATE_LIMIT_MESSAGE = "rate limit exceeded."
_MAX_DETAIL = 300
_WRITES = frozenset({"POST", "PUT", "DELETE"})
# A request that failed with one of these never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Server errors after which a write may or may not have been applied. (A 503 is what
# ActiveCampaign answers at its rate limit, before doing anything.)
_MAYBE_APPLIED = frozenset({500, 502, 504})


class ApiHttp:
    """Requests to one ActiveCampaign account's API; safe to share within one event loop.
    Each request is sent inside `pacer`, with the buckets it draws from (`call`'s `buckets`:
    the account's, and bulk import's for a bulk import)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/3",
            headers={
                "Api-Token": api_key,
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=httpx.Timeout(timeout_s),
            limits=http_pool.limits(),
            transport=transport,
            event_hooks={"request": [http_pool.note_leaving]},
        )
        self.pacer: RequestPacer = unpaced

    async def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: JsonObject | None = None,
        params: Mapping[str, str | int | Sequence[str]] | None = None,
        allow_missing: bool = False,
        buckets: Sequence[RateBucket] = API_BUCKETS,
    ) -> JsonObject | None:
        """The JSON object of a 2xx reply ({} when it has none). With `allow_missing`, a
        not-found answer (404, or a 403 saying "No Result found") is None."""
        content = None if body is None else encode(body, f"{method} {path}")
        headers = None if content is None else {"Content-Type": "application/json"}
        async with self.pacer(operation, buckets):
            response = await send(
                self.http, method, path, operation, content=content, headers=headers, params=params
            )
        if allow_missing and is_not_found(response):
            return None
        if response.is_success:
            return json_object(response)
        raise status_error(response, f"{method} {path}", operation, buckets)

    async def aclose(self) -> None:
        await self.http.aclose()


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    operation: str,
    **request: Any,
) -> httpx.Response:
    """One request; transport failures as provider errors, an unknown outcome counted."""
    try:
        return await http_pool.sent_in_time(lambda: http.request(method, url, **request))
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        # our own request is malformed (base_url scheme, header value): retrying cannot help
        raise PermanentProviderError(_transport_message(method, url, exc)) from exc
    except _NOT_SENT as exc:
        raise RetryableProviderError(_transport_message(method, url, exc)) from exc
    except httpx.RequestError as exc:
        if method in _WRITES:
            count_unknown_outcome(operation)
        raise RetryableProviderError(_transport_message(method, url, exc)) from exc


def count_unknown_outcome(operation: str) -> None:
    """A write was sent and no answer came back: ActiveCampaign may have applied it, and
    has no idempotency key to make the retry harmless."""
    metrics.PROVIDER_UNKNOWN_OUTCOMES.labels(PROVIDER, operation).inc()


def encode(body: object, what: str) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError as exc:
        raise PermanentProviderError(
            f"ActiveCampaign {what}: body is not JSON: {exc}", code="unserializable"
        ) from exc


def json_object(response: httpx.Response) -> JsonObject:
    """The reply's JSON object; {} for an empty body. A 2xx that is not a JSON object (a
    proxy's page) is retryable: the caller's attempt budget bounds the retries."""
    if not response.content.strip():
        return {}
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise RetryableProviderError(
            f"ActiveCampaign {response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} without a JSON object",
            status=response.status_code,
            code="invalid_response",
        )
    return document


def _document(response: httpx.Response) -> JsonObject:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def is_not_found(response: httpx.Response) -> bool:
    """404, or the 403 some paths answer for an unknown id ("No Result found for ...");
    a 403 "Forbidden" is a wrong key, not a miss."""
    if response.status_code == 404:
        return True
    if response.status_code != 403:
        return False
    message = _document(response).get("message")
    return isinstance(message, str) and message.lower().startswith("no result found")


def status_error(
    response: httpx.Response, what: str, operation: str, buckets: Sequence[RateBucket] = ()
) -> ProviderError:
    """`buckets`: those the request drew from; bulk import's rate-limit answer stands for its
    own (not the account's 5/s, which answers 429)."""
    status = response.status_code
    document = _document(response)
    first = _first_error(document)
    code = str(first.get("code") or "") if first else ""
    message = f"ActiveCampaign {what}: HTTP {status} {describe(document, response)}".rstrip()
    if status in (408, 429) or status >= 500:
        if status in _MAYBE_APPLIED and response.request.method in _WRITES:
            count_unknown_outcome(operation)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RetryableProviderError(message, status=status, code=code, retry_after=retry_after)
    if status == 400 and str(document.get("message", "")).strip().lower() == RATE_LIMIT_MESSAGE:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        own = tuple(bucket for bucket in buckets if bucket not in API_BUCKETS)
        return RetryableProviderError(
            message, status=status, code=RATE_LIMITED, retry_after=retry_after, buckets=own
        )
    if status == 403 and not code:
        code = "forbidden"
    indexes = blamed_items(document.get("failureReasons"))
    return PermanentProviderError(message, status=status, code=code, item_indexes=indexes)


def blamed_items(reasons: object) -> tuple[int, ...]:
    """The contact indexes a bulk import's failureReasons name ([{"contact": 230, ...}])."""
    if not isinstance(reasons, list):
        return ()
    named = (as_id(r.get("contact")) for r in reasons if isinstance(r, dict))
    return tuple(sorted({int(i) for i in named if i.isdigit()}))


def _first_error(document: JsonObject) -> JsonObject:
    errors = document.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}


def describe(document: JsonObject, response: httpx.Response) -> str:
    """The provider's own words, whichever shape its error body has."""
    errors = document.get("errors")
    parts: list[str] = []
    if isinstance(errors, list):
        parts = [_error_text(error) for error in errors]
    if isinstance(document.get("message"), str):
        parts.insert(0, document["message"])
    reasons = document.get("failureReasons")
    if isinstance(reasons, list):
        parts.extend(_error_text(reason) for reason in reasons[:3])
    text = "; ".join(p for p in parts if p)
    if not text and not document:
        text = response.text.strip().replace("\n", " ")
    return text[:_MAX_DETAIL]


def _error_text(error: object) -> str:
    if isinstance(error, str):
        return error
    if not isinstance(error, dict):
        return ""
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    words = [
        error.get("code"),
        error.get("title"),
        error.get("detail"),
        error.get("failureReason"),
        pointer,
    ]
    return " ".join(str(w) for w in words if w)


def _transport_message(method: str, url: str, exc: httpx.RequestError) -> str:
    detail = str(exc) or type(exc).__name__
    return f"ActiveCampaign {method} {url}: {type(exc).__name__}: {detail}"


def as_id(value: object) -> str:
    """An id as ActiveCampaign sends it ("10" or 10) as a string; "" when there is none."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def as_count(value: object) -> int:
    """A counter ("12" or 12); 0 when absent or not a whole number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return 0
    return 0


def records(document: JsonObject | None, key: str) -> list[JsonObject]:
    """The objects of a list reply's array `key` ([] for a miss or another shape)."""
    items = (document or {}).get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def record_id(document: JsonObject | None, key: str) -> str:
    """The id of the object under `key` of a create reply (or the first of `key`s)."""
    document = document or {}
    item = document.get(key)
    if isinstance(item, dict):
        return as_id(item.get("id"))
    listed = records(document, key + "s")
    return as_id(listed[0].get("id")) if listed else ""
