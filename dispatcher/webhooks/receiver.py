"""The webhook receiver: an ASGI app (Starlette) taking the providers'
deliveries and publishing what they report to `marketing.webhooks.engagement`
as EngagementReceived (dispatcher.webhooks.messages), for the service to apply.
It needs nothing of the dispatcher but the bus's current JetStream context.

    POST /webhooks/klaviyo                  signed JSON, a batch of events
    POST /webhooks/activecampaign/{secret}  unsigned form, one event (the secret
                                            percent-encoded, compared decoded)

Answers (no body):
    200  published, and JetStream acknowledged it (a duplicate included); or
         nothing in it that we take (an ActiveCampaign event our own API calls
         caused, `initiated_from=api`, included)
    400  Klaviyo: signed, but not a delivery we can read
    401  Klaviyo: no valid signature with our secret, a timestamp outside the
         replay window, or a body naming another webhook (or no secret set)
    404  ActiveCampaign: not our secret in the URL (or none set)
    413  a body over MAX_BODY_BYTES
    503  the bus did not take it (NATS unreachable, no ack in time). Klaviyo
         delivers it again later; ActiveCampaign never retries, so that event
         is lost: the service's own records still stand
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.envelope import MSG_ID_HEADER
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher import metrics
from dispatcher.settings import DEFAULT_REPLAY_WINDOW_S, DispatcherSettings
from dispatcher.webhooks import activecampaign, klaviyo, messages
from dispatcher.webhooks.errors import (
    Malformed,
    Refused,
    TooLarge,
    Unavailable,
    WebhookError,
)

log = logging.getLogger(__name__)

# Klaviyo batches events; 5 MB is far above a batch's size and bounds what one
# request may make us hold.
MAX_BODY_BYTES = 5 * 1024 * 1024
# How long a request waits for JetStream's ack before it is answered 503.
PUBLISH_TIMEOUT_S = 5.0

# The bus's JetStream context now; None while NATS is not connected.
JetStream = Callable[[], JetStreamContext | None]
Read = Callable[[Request], Awaitable[list[bus_pb2.Engagement]]]

ACCEPTED, IGNORED = "accepted", "ignored"
# What each error answers, and the outcome it is counted as (the most specific
# class first). A refused request's status is its route's.
_ANSWERS: list[tuple[type[WebhookError], str, int]] = [
    (TooLarge, "malformed", 413),
    (Malformed, "malformed", 400),
    (Refused, "refused", 401),
    (Unavailable, "unavailable", 503),
]


@dataclass(frozen=True)
class ReceiverConfig:
    """The secrets (empty: that provider's deliveries are refused) and limits."""

    klaviyo_secret: str = field(repr=False)
    activecampaign_secret: str = field(repr=False)
    replay_window_s: float = DEFAULT_REPLAY_WINDOW_S
    max_body_bytes: int = MAX_BODY_BYTES
    publish_timeout_s: float = PUBLISH_TIMEOUT_S

    @classmethod
    def of(cls, settings: DispatcherSettings) -> ReceiverConfig:
        return cls(
            klaviyo_secret=settings.klaviyo_webhook_secret.get_secret_value(),
            activecampaign_secret=settings.activecampaign_webhook_secret.get_secret_value(),
            replay_window_s=settings.webhook_replay_window_s,
        )


def create_app(
    config: ReceiverConfig, jetstream: JetStream, *, clock: Clock = utc_now
) -> Starlette:
    """The receiver's ASGI app, publishing through `jetstream()` at each request."""
    for provider, secret, variable in (
        ("Klaviyo", config.klaviyo_secret, "KLAVIYO_WEBHOOK_SECRET"),
        ("ActiveCampaign", config.activecampaign_secret, "ACTIVECAMPAIGN_WEBHOOK_SECRET"),
    ):
        if not secret:
            log.info(
                "webhook receiver: %s is not set: %s's deliveries are refused", variable, provider
            )
    receiver = _Receiver(config, jetstream, clock)
    return Starlette(
        routes=[
            Route("/webhooks/klaviyo", receiver.klaviyo, methods=["POST"]),
            # `path`: the secret, decoded, whatever it holds (a `/` too: it is
            # registered percent-encoded, and the server decodes the path).
            Route(
                "/webhooks/activecampaign/{secret:path}", receiver.activecampaign, methods=["POST"]
            ),
        ]
    )


class _Receiver:
    def __init__(self, config: ReceiverConfig, jetstream: JetStream, clock: Clock) -> None:
        self._config = config
        self._jetstream = jetstream
        self._clock = clock

    async def klaviyo(self, request: Request) -> Response:
        return await self._answer(klaviyo.PROVIDER, request, self._read_klaviyo, refused=401)

    async def activecampaign(self, request: Request) -> Response:
        return await self._answer(
            activecampaign.PROVIDER, request, self._read_activecampaign, refused=404
        )

    async def _read_klaviyo(self, request: Request) -> list[bus_pb2.Engagement]:
        body = await read_body(request, self._config.max_body_bytes)
        webhook_id = klaviyo.verify(
            body,
            request.headers,
            secret=self._config.klaviyo_secret,
            now=self._clock(),
            window_s=self._config.replay_window_s,
        )
        return klaviyo.parse(body, webhook_id)

    async def _read_activecampaign(self, request: Request) -> list[bus_pb2.Engagement]:
        secret = request.path_params["secret"]
        if not activecampaign.secret_matches(secret, self._config.activecampaign_secret):
            raise Refused("not our secret in the URL (or ACTIVECAMPAIGN_WEBHOOK_SECRET unset)")
        found = activecampaign.parse(await read_body(request, self._config.max_body_bytes))
        return [found] if found is not None else []

    async def _answer(self, provider: str, request: Request, read: Read, refused: int) -> Response:
        started = time.monotonic()
        try:
            outcome, status = await self._take(provider, request, read)
        except WebhookError as exc:
            outcome, status = _answer_to(exc, refused)
            log.log(
                logging.DEBUG if status == 404 else logging.WARNING,
                "%s webhook answered %d: %s",
                provider,
                status,
                exc,
            )
        metrics.WEBHOOKS.labels(provider, outcome).inc()
        metrics.WEBHOOK_SECONDS.labels(provider).observe(time.monotonic() - started)
        return Response(status_code=status)

    async def _take(self, provider: str, request: Request, read: Read) -> tuple[str, int]:
        engagements = await read(request)
        if not engagements:
            return IGNORED, 200
        await self._publish(provider, engagements)
        for engagement in engagements:
            metrics.WEBHOOK_ENGAGEMENTS.labels(provider, type_name(engagement.type)).inc()
        return ACCEPTED, 200

    async def _publish(self, provider: str, engagements: Sequence[bus_pb2.Engagement]) -> None:
        """Publish and wait for JetStream's acks; Unavailable unless all were taken
        (a retry's repeats of those that were are dropped as duplicates)."""
        js = self._jetstream()
        if js is None:
            raise Unavailable("NATS is not connected")
        for message in messages.received(provider, engagements, self._clock()):
            try:
                ack = await js.publish(
                    topology.ENGAGEMENT_SUBJECT,
                    message.SerializeToString(),
                    timeout=self._config.publish_timeout_s,
                    stream=topology.WEBHOOKS_STREAM,
                    headers={MSG_ID_HEADER: message.id},
                )
            except (NatsError, OSError) as exc:  # OSError: TimeoutError, a broken socket
                raise Unavailable(f"JetStream did not take {message.id}: {exc!r}") from exc
            if ack.duplicate:
                log.debug("%s webhook: %s was taken before", provider, message.id)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; TooLarge past `limit` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > len(str(limit)) or int(declared) > limit):
        raise TooLarge(f"a body of {declared[:20]} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"a body of more than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise Malformed("the client went away before the body was whole") from exc
    return b"".join(chunks)


def type_name(kind: int) -> str:
    """ "opened" for ENGAGEMENT_TYPE_OPENED, and so on (a metric label)."""
    name: str = bus_pb2.EngagementType.Name(kind)
    return name.removeprefix("ENGAGEMENT_TYPE_").lower()


def _answer_to(exc: WebhookError, refused: int) -> tuple[str, int]:
    for error, outcome, status in _ANSWERS:
        if isinstance(exc, error):
            return outcome, refused if error is Refused else status
    raise exc  # a new WebhookError without an answer: the tests catch it
