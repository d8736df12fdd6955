"""A campaign's seeded engagements (POST /_sandbox/campaign-engagement), drawn when it is sent
and reported afterwards from a background thread, as Klaviyo reports engagement after a send.

When a campaign is sent (campaigns.py), every sent message's draws are made at once and kept a
byte each (common/campaign_sends.py `engagement_mask`), so the campaign's counts for the values
reports are known when it is Sent. Reporting them is the slow part: each engagement takes the
path POST /_sandbox/engagement takes (webhook_events.py `engaged_with`: effect on the account,
then a signed event to each webhook subscribed) and half a million of them would hold up every
request for a minute and queue a gigabyte of events. So a thread reports them, in message
order, waiting whenever more than `MAX_BACKLOG` events wait for the webhook sender: the send
takes seconds, memory stays bounded, and the webhooks follow at the sender's pace.
`wait_idle` says when all is reported (the in-process Sandbox's `webhooks_idle` waits for it).

Kinds no webhook is subscribed to when a campaign's reporting starts are counted only: with
nobody to tell and no effect on the account (delivered, opened and clicked have none), the
path would change nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from dispatcher.sandbox.common.campaign_sends import (
    ENGAGEMENT_KINDS,
    Drawn,
    RecordedSend,
    engagements_of,
)
from dispatcher.sandbox.common.engagement import Engagement
from dispatcher.sandbox.klaviyo.webhook_events import KlaviyoWebhooks

log = logging.getLogger("marketing.sandbox")
MAX_BACKLOG = 20_000  # events waiting for the webhook sender before reporting pauses
BACKLOG_CHECK_EVERY = 1_000  # engagements reported between two looks at the backlog
BACKLOG_WAIT_S = 0.05
CLOSE_WAIT_S = 10.0


@dataclass(frozen=True)
class DrawnSend:
    """A sent campaign's draws: `masks[i]` for its i-th message (0 for one not sent)."""

    campaign_id: str
    recorded: RecordedSend
    masks: bytearray


class EngagementReporter:
    """Reports drawn sends one after another from a daemon thread (started on first use)."""

    def __init__(self, webhooks: KlaviyoWebhooks) -> None:
        self._webhooks = webhooks
        self._cond = threading.Condition()
        self._queue: deque[DrawnSend] = deque()
        self._busy = False
        self._generation = 0  # moved on by `drop`: a send being reported stops
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, drawn: DrawnSend) -> None:
        with self._cond:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="klaviyo-sandbox-campaign-engagement", daemon=True
                )
                self._thread.start()
            self._queue.append(drawn)
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every send submitted is reported; False if one still is not."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def drop(self) -> None:
        """Forget what is not reported yet (the sandbox's reset)."""
        with self._cond:
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._generation += 1
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_WAIT_S)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                drawn, generation = self._queue.popleft(), self._generation
                self._busy = True
            try:
                self._report_send(drawn, generation)
            except Exception:  # a bug must not stop the later campaigns' reporting
                log.exception("sandbox: reporting campaign %s's engagement", drawn.campaign_id)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _report_send(self, drawn: DrawnSend, generation: int) -> None:
        observed = {kind for kind in ENGAGEMENT_KINDS if self._webhooks.observable(kind)}
        if not observed:
            return
        heard = (
            (message_id, email, engagement)
            for message_id, email, engagement in _engagements(drawn)
            if engagement.kind in observed
        )
        for reported, (message_id, email, engagement) in enumerate(heard, start=1):
            self._report(drawn.campaign_id, message_id, email, engagement)
            if reported % BACKLOG_CHECK_EVERY == 0 and not self._wait_for_sender(generation):
                return

    def _report(self, campaign_id: str, message_id: int, email: str | None, drawn: Drawn) -> None:
        """One engagement, as POST /_sandbox/engagement would tell it: the campaign named in
        `$campaign`, the message (its id in GET /_sandbox/campaign-messages) in `$message`."""
        engagement = Engagement(
            email or "", drawn.kind, str(message_id), url=drawn.url, campaign_id=campaign_id
        )
        self._webhooks.engaged_with(engagement, {"$message": str(message_id)})

    def _wait_for_sender(self, generation: int) -> bool:
        """Wait while the webhook sender has more than MAX_BACKLOG events to send; False when
        the reporting is to stop (dropped or closed)."""
        while self._webhooks.sender.backlog() > MAX_BACKLOG:
            with self._cond:
                if generation != self._generation:
                    return False
                self._cond.wait(BACKLOG_WAIT_S)
        with self._cond:
            return generation == self._generation


def _engagements(drawn: DrawnSend) -> Iterator[tuple[int, str | None, Drawn]]:
    """(message id, email, engagement) of each engagement drawn, in message order."""
    columns, first_id = drawn.recorded.columns, drawn.recorded.first_id
    for index, mask in enumerate(drawn.masks):
        if mask:
            body = partial(columns.content.body, columns.values[index])  # for a click only
            for engagement in engagements_of(mask, body):
                yield first_id + index, columns.emails[index], engagement
