"""A campaign's seeded engagements (POST /_sandbox/campaign-engagement), drawn and reported
after it is sent, from a background thread, as Klaviyo reports engagement after a send.

A send holds every request to the sandbox while it runs (campaigns.py), and its engagements
would hold them far longer: a draw costs about 7 us (random.Random seeded with a string), and
each engagement takes the path POST /_sandbox/engagement takes (webhook_events.py
`engaged_with`: effect on the account, then a signed event to each webhook subscribed); half a
million would stop the sandbox for a minute and queue a gigabyte of events. So a thread takes
each sent campaign in turn: it draws every sent message's engagements (kept a byte each,
common/campaign_sends.py `engagement_mask`) and hands their counts to the campaign (`counted`,
for the values reports), then reports them in message order, waiting whenever more than
`MAX_BACKLOG` events wait for the webhook sender: the send takes seconds, memory stays bounded,
and the webhooks follow at the sender's pace. `wait_idle` says when all is reported (the
in-process Sandbox's `webhooks_idle` waits for it).

Kinds no webhook is subscribed to when a campaign's reporting starts are counted only: with
nobody to tell and no effect on the account (delivered, opened and clicked have none), the
path would change nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from dispatcher.sandbox.common.campaign_sends import (
    CLICKED,
    DELIVERED,
    ENGAGEMENT_KINDS,
    KIND_BITS,
    OPENED,
    Drawn,
    EngagementSeed,
    RecordedSend,
    engagement_mask,
    engagements_of,
)
from dispatcher.sandbox.common.engagement import Engagement
from dispatcher.sandbox.klaviyo.webhook_events import KlaviyoWebhooks

log = logging.getLogger("marketing.sandbox")
MAX_BACKLOG = 20_000  # events waiting for the webhook sender before reporting pauses
BACKLOG_CHECK_EVERY = 1_000  # engagements reported between two looks at the backlog
BACKLOG_WAIT_S = 0.05
CLOSE_WAIT_S = 10.0


# Each seeded engagement's count in the values reports (catalogue.py COUNTS).
COUNTED = {DELIVERED: "delivered", OPENED: "opens_unique", CLICKED: "clicks_unique"}
Counted = Callable[[str, dict[str, float]], None]  # (campaign id, counts)


@dataclass(frozen=True)
class SeededSend:
    """A campaign sent while `seed` was configured."""

    campaign_id: str
    recorded: RecordedSend
    seed: EngagementSeed


@dataclass(frozen=True)
class DrawnSend:
    """A sent campaign's draws: `masks[i]` for its i-th message (0 for one not sent)."""

    campaign_id: str
    recorded: RecordedSend
    masks: bytearray

    @classmethod
    def of(cls, sent: SeededSend) -> DrawnSend:
        recorded = sent.recorded
        rates = sent.seed.rates(recorded.columns.content.subject_template)
        masks = bytearray(len(recorded.columns))
        for index in recorded.sent_indexes():
            masks[index] = engagement_mask(sent.seed.seed, recorded.first_id + index, rates)
        return cls(sent.campaign_id, recorded, masks)

    def counts(self) -> dict[str, float]:
        """How many messages were delivered, opened and clicked (unique per message, as the
        reports count)."""
        return {
            count: float(sum(1 for mask in self.masks if mask & KIND_BITS[kind]))
            for kind, count in COUNTED.items()
        }


class EngagementReporter:
    """Draws and reports seeded sends one after another, from a daemon thread (started on
    first use)."""

    def __init__(self, webhooks: KlaviyoWebhooks, counted: Counted) -> None:
        self._webhooks = webhooks
        self._counted = counted
        self._cond = threading.Condition()
        self._queue: deque[SeededSend] = deque()
        self._busy = False
        self._generation = 0  # moved on by `drop`: a send being reported stops
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, sent: SeededSend) -> None:
        with self._cond:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="klaviyo-sandbox-campaign-engagement", daemon=True
                )
                self._thread.start()
            self._queue.append(sent)
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
                sent, generation = self._queue.popleft(), self._generation
                self._busy = True
            try:
                drawn = DrawnSend.of(sent)
                self._counted(drawn.campaign_id, drawn.counts())
                self._report_send(drawn, generation)
            except Exception:  # a bug must not stop the later campaigns' reporting
                log.exception("sandbox: reporting campaign %s's engagement", sent.campaign_id)
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
