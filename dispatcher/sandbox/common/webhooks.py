"""The webhooks a sandbox sends, as its provider does: deliveries go out from one background
thread with an httpx client, never inside the request that caused them, and every attempt is
recorded with its answer (GET /_sandbox/webhook-deliveries).

Each sandbox says how (its `Policy`): how long a webhook's first pending event waits for
others to share its request (Klaviyo batches; ActiveCampaign sends one event a request), how
many attempts a delivery gets and the wait before the next (Klaviyo retries; ActiveCampaign
never does); how a request is made of a webhook's events (`Encode`), and which webhook an id
names when a request is about to go (`Resolve`: None once it was deleted or deactivated, and
nothing is sent). `Answered` hears of every attempt's answer (ActiveCampaign deactivates a
webhook that answers 410).

    an attempt as GET /_sandbox/webhook-deliveries shows it:
    {"seq", "webhook", "url", "attempt" (1 for the first), "status" (the answer's code; null
     when none came), "error" (why none came), "external_ids", "headers", "body" (as sent),
     "answer" (the receiver's body, its first 1,000 characters), "sent_at" (ISO 8601, on the
     sandbox's clock)}

The thread starts with the first delivery; `close()` ends it (what is pending is dropped).

The flows' messages are decided when something looks (common/flows.py: every request, every
view); once an account has a webhook, a `Ticker` also looks every 0.1 s, so that a message
sent is reported without a request to make it go."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dispatcher.sandbox.common.recording import iso

log = logging.getLogger("marketing.sandbox")
ANSWER_CHARS = 1000
DEFAULT_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 10.0
TICK_S = 0.1
COMPRESS_ABOVE = 8192  # characters of a logged body


@dataclass(frozen=True)
class Target:
    """Where a webhook's deliveries go, as it stands when one is sent."""

    webhook_id: str
    url: str
    secret: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One event for a webhook: the id the provider gives it, and what `Encode` makes a
    request of (a Klaviyo `data` item, an ActiveCampaign form body)."""

    external_id: str
    content: Any


@dataclass(frozen=True)
class Request:
    content: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Policy:
    """`batch_s`: how long a webhook's first pending event waits for others (up to
    `max_batch` a request); `max_attempts` per request, the second `backoff_s` after the
    first answer that was not a 2xx (or no answer), each further one twice as long after."""

    batch_s: float = 0.0
    max_batch: int = 1
    max_attempts: int = 1
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_s < 0 or self.backoff_s < 0 or self.max_batch < 1 or self.max_attempts < 1:
            raise ValueError("batch_s and backoff_s >= 0; max_batch and max_attempts >= 1")

    def wait_after(self, attempt: int) -> float:
        return float(self.backoff_s * 2 ** (attempt - 1))


# (the webhook, its events, the sending time on the sandbox's clock) -> the request
Encode = Callable[[Target, Sequence[Outgoing], float], Request]
Resolve = Callable[[str], Target | None]
Answered = Callable[[str, int | None], None]


@dataclass(eq=False)
class _Batch:
    webhook_id: str
    items: list[Outgoing] = field(default_factory=list)
    due: float = 0.0  # monotonic: when it goes (again)
    attempt: int = 1


@dataclass(frozen=True)
class _Compressed:
    """A long body as the log keeps it: a big campaign's engagements fill thousands of
    requests of 100 events, and their JSON compresses tenfold."""

    data: bytes

    @classmethod
    def of(cls, text: str) -> _Compressed:
        return cls(zlib.compress(text.encode(), 1))

    def text(self) -> str:
        return zlib.decompress(self.data).decode()


class DeliveryLog:
    """Every attempt, in the order made (a body longer than COMPRESS_ABOVE characters kept
    compressed, and shown as sent)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        body = entry.get("body")
        if isinstance(body, str) and len(body) > COMPRESS_ABOVE:
            entry = entry | {"body": _Compressed.of(body)}
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})

    def entries(self, webhook: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            chosen = [e for e in self._entries if webhook is None or e["webhook"] == webhook]
        return [_shown(entry) for entry in chosen]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of a logged attempt with its body as sent."""
    body = entry.get("body")
    return entry | {"body": body.text()} if isinstance(body, _Compressed) else dict(entry)


class WebhookSender:
    """Pending events per webhook, batched and sent by a background thread."""

    def __init__(
        self,
        policy: Policy,
        encode: Encode,
        resolve: Resolve,
        *,
        clock: Callable[[], float],
        answered: Answered | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        name: str = "sandbox-webhooks",
    ) -> None:
        self.policy = policy
        self.log = DeliveryLog()
        self._encode, self._resolve, self._answered = encode, resolve, answered
        self._clock = clock
        self._timeout_s = timeout_s
        self._name = name
        self._cond = threading.Condition()
        self._open: dict[str, _Batch] = {}  # filling up, per webhook
        self._ready: deque[_Batch] = deque()
        self._retries: list[tuple[float, int, _Batch]] = []  # a heap by due time
        self._order = itertools.count()
        self._busy = 0  # batches being sent
        self._generation = 0  # moved on by drop_pending: an attempt of before is not retried
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, webhook_id: str, items: Sequence[Outgoing]) -> None:
        """Queue events for a webhook; they go within `policy.batch_s`."""
        if not items:
            return
        with self._cond:
            if self._closed:
                return
            self._start()
            wake = False  # the thread only needs waking for a new due time or a full batch
            for item in items:
                batch = self._open.get(webhook_id)
                if batch is None:
                    due = time.monotonic() + self.policy.batch_s
                    batch = self._open[webhook_id] = _Batch(webhook_id, due=due)
                    wake = True
                batch.items.append(item)
                if len(batch.items) >= self.policy.max_batch:
                    self._ready.append(self._open.pop(webhook_id))
                    wake = True
            if wake:  # (waking it for every event of a big campaign costs the GIL each time)
                self._cond.notify_all()

    def backlog(self) -> int:
        """How many events wait to be sent (not those in flight or waiting for a retry): a
        producer of very many may wait for it to shrink."""
        with self._cond:
            batches = [*self._open.values(), *self._ready]
            return sum(len(batch.items) for batch in batches)

    def drop_pending(self) -> None:
        """Forget every event not sent yet, and every retry to come."""
        with self._cond:
            self._open.clear()
            self._ready.clear()
            self._retries.clear()
            self._generation += 1
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is pending, being sent or waiting for a retry; False when
        something still is after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._open or self._ready or self._retries or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_WAIT_S)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s) as client:
            while True:
                with self._cond:
                    batch = self._next()
                    generation = self._generation
                if batch is None:
                    return
                try:
                    self._deliver(client, batch, generation)
                except Exception:  # a bug must not stop every later delivery
                    log.exception("sandbox: webhook delivery to %s failed", batch.webhook_id)
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()

    def _next(self) -> _Batch | None:
        """The next batch to send, once one is due (the condition held); None: closed."""
        while not self._closed:
            now = time.monotonic()
            for webhook_id in [w for w, b in self._open.items() if b.due <= now]:
                self._ready.append(self._open.pop(webhook_id))
            while self._retries and self._retries[0][0] <= now:
                self._ready.append(heapq.heappop(self._retries)[2])
            if self._ready:
                self._busy += 1
                return self._ready.popleft()
            dues = [b.due for b in self._open.values()] + [r[0] for r in self._retries[:1]]
            self._cond.wait(max(0.0, min(dues) - now) if dues else None)
        return None

    def _deliver(self, client: httpx.Client, batch: _Batch, generation: int) -> None:
        target = self._resolve(batch.webhook_id)
        if target is None:  # deleted or deactivated meanwhile: nothing goes out
            return
        sent_at = self._clock()
        request = self._encode(target, batch.items, sent_at)
        status, error, answer = None, None, ""
        try:
            response = client.post(target.url, content=request.content, headers=request.headers)
            status, answer = response.status_code, response.text[:ANSWER_CHARS]
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.log.add(
            {
                "webhook": target.webhook_id,
                "url": target.url,
                "attempt": batch.attempt,
                "status": status,
                "error": error,
                "external_ids": [item.external_id for item in batch.items],
                "headers": request.headers,
                "body": request.content.decode("utf-8", "replace"),
                "answer": answer,
                "sent_at": iso(sent_at),
            }
        )
        if self._answered is not None:
            self._answered(target.webhook_id, status)
        if status is None or not 200 <= status < 300:
            self._retry(batch, generation)

    def _retry(self, batch: _Batch, generation: int) -> None:
        """Schedule the batch's next attempt, when it has one left (the same events: the
        receiver may see them twice, as it may from the provider)."""
        if batch.attempt >= self.policy.max_attempts:
            return
        with self._cond:
            if generation != self._generation or self._closed:
                return
            batch.due = time.monotonic() + self.policy.wait_after(batch.attempt)
            batch.attempt += 1
            heapq.heappush(self._retries, (batch.due, next(self._order), batch))
            self._cond.notify_all()


class Ticker:
    """Calls `tick` every `interval_s` from a daemon thread, from `start()` (which may be
    called any number of times) until `close()`."""

    def __init__(self, tick: Callable[[], None], *, interval_s: float = TICK_S, name: str) -> None:
        self._tick = tick
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._tick()
            except Exception:  # keep ticking: the next request would meet the same
                log.exception("sandbox: %s failed", self._name)

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_WAIT_S)
