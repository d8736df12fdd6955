"""What an operator reads about the NATS connection: one line per change of
its state, with the reason, and no traceback.

nats-py reports every failed (re)connect attempt to its error callback, whose
default logs a full traceback: once a second while NATS is down. Here the
attempts are counted instead, and only the changes are logged: connecting
fails (since when, why), connected, lost, reconnected, closed for good.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from nats import errors

log = logging.getLogger("marketing_runtime.connection")
# Errors nats-py reports just before it reconnects: the reason of the "lost" line.
_BREAKS_CONNECTION = (errors.UnexpectedEOF, errors.StaleConnectionError, OSError)


class ConnectionLog:
    """The state of one `Bus`'s connection, across the clients it opens."""

    def __init__(self, url: str, retry_s: float) -> None:
        self._url = url
        self._retry_s = retry_s
        self._connected = False
        self._down_since: float | None = None  # monotonic, while not connected
        self._failures = 0  # attempts that failed in the current outage
        self._last_error = ""  # the last error logged while connected
        self._lost_reason = ""  # why the connection broke, for the "lost" line
        self.failed_attempts = 0  # (re)connect attempts that failed, ever

    async def on_error(self, exc: Exception) -> None:
        """nats-py's error callback: a failed attempt, or an error while connected."""
        if not self._connected:
            self.attempt_failed(exc)
            return
        reason = reason_of(exc)
        if isinstance(exc, _BREAKS_CONNECTION):
            self._lost_reason = reason  # said once, by the "lost" line that follows
            return
        if reason != self._last_error:  # the same error again and again is one line
            self._last_error = reason
            log.warning("NATS at %s: %s", self._url, reason)

    def attempt_failed(self, exc: BaseException) -> None:
        """The first failure of an outage is logged; the next ones are counted."""
        self.failed_attempts += 1
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self._failures == 1:
            since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - self._down_since)
            log.warning(
                "cannot connect to NATS at %s (down since %s): %s; retrying every %.0f s",
                self._url,
                since.isoformat(timespec="seconds"),
                reason_of(exc),
                self._retry_s,
            )

    def connected(self, *, again: bool = False) -> None:
        was_down, failures = self._down_since, self._failures
        self._connected = True
        self._down_since = None
        self._failures = 0
        self._last_error = ""
        verb = "reconnected to" if again else "connected to"
        if was_down is None:
            log.info("%s NATS at %s", verb, self._url)
        else:
            log.info(
                "%s NATS at %s after %.1f s (%d attempts failed)",
                verb,
                self._url,
                time.monotonic() - was_down,
                failures,
            )

    def disconnected(self) -> None:
        """The connection broke; the client reconnects by itself."""
        if self._connected:
            self._connected = False
            self._down_since = time.monotonic()
            log.warning(
                "NATS connection to %s lost (%s); reconnecting",
                self._url,
                self._lost_reason or "no reason given",
            )
            self._lost_reason = ""

    def closed(self, reason: BaseException | None) -> None:
        """The client closed for good (nats-py does on a server's -ERR)."""
        self._connected = False
        self._down_since = time.monotonic()
        log.warning(
            "NATS connection to %s closed (%s); opening a new one",
            self._url,
            reason_of(reason) if reason is not None else "no reason given",
        )


def reason_of(exc: BaseException) -> str:
    """One line: the error's type and its text."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name
