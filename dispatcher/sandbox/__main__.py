"""`python -m dispatcher.sandbox`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from dispatcher.sandbox.runner import start_sandbox

DEFAULT_ADDRESS = "127.0.0.1:8090"
log = logging.getLogger("marketing.sandbox")


def parse_address(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6 host]:port"."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"MARKETING_SANDBOX_ADDRESS must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, port = parse_address(os.environ.get("MARKETING_SANDBOX_ADDRESS", DEFAULT_ADDRESS))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    api_key = os.environ.get("MARKETING_SANDBOX_API_KEY") or None
    with start_sandbox(host, port, api_key=api_key) as sandbox:
        log.info("Klaviyo sandbox listening on %s", sandbox.base_url)
        stop.wait()


if __name__ == "__main__":
    main()
