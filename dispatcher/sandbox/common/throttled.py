"""Rate-limit refusals a sandbox answered, and GET /_sandbox/throttled, one shape for every
sandbox:

    {"total": refusals answered,
     "buckets": {bucket: {"refused": n, "windows": {"<seconds>": {"limit", "peak"}}}},
     "answers": [{method, path, endpoint, bucket, window_s, status, retry_after,
                  received_at}, ...]}

A bucket is what one limit counts: a Klaviyo endpoint ("POST /api/events"), ActiveCampaign's
account-wide "api". Queued faults are not rate-limit refusals and are not counted here."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from dispatcher.sandbox.common.recording import Arrival
from dispatcher.sandbox.common.windows import Refusal, WindowCounter


class RefusalLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: list[dict[str, Any]] = []

    def add(self, arrival: Arrival, refusal: Refusal, status: int) -> None:
        """A refusal answered with `status` (429, or a provider's own, as bulk import's 400)."""
        window = refusal.window
        answer: dict[str, Any] = {
            "method": arrival.method,
            "path": arrival.path,
            "endpoint": arrival.endpoint,
            "bucket": window.name,
            "window_s": window.seconds,
            "status": status,
            "retry_after": refusal.retry_after,
            "received_at": arrival.received_at,
        }
        with self._lock:
            self._answers.append(answer)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()

    def report(self, windows: WindowCounter) -> dict[str, Any]:
        """The refusals with the windows' limits and peaks (the shape above)."""
        with self._lock:
            answers = [dict(answer) for answer in self._answers]
        refused = Counter(answer["bucket"] for answer in answers)
        peaks = windows.peaks()
        buckets = {
            name: {"refused": refused.get(name, 0), "windows": peaks.get(name, {})}
            for name in (*peaks, *(name for name in refused if name not in peaks))
        }
        return {"total": len(answers), "buckets": buckets, "answers": answers}
