"""`python -m dispatcher.sandbox`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from dispatcher.sandbox.runner import start_sandbox
from dispatcher.sandbox.settings import SandboxSettings

log = logging.getLogger("marketing.sandbox")


def parse_address(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6 host]:port"."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"MARKETING_SANDBOX_ADDRESS must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = SandboxSettings()
    host, port = parse_address(settings.address)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    with start_sandbox(
        host,
        port,
        api_key=settings.api_key or None,
        rate_limits=settings.rate_limits,
        import_processing_s=settings.import_processing_s,
    ) as sandbox:
        limits = "on" if settings.rate_limits else "OFF (measuring ceilings only)"
        log.info("Klaviyo sandbox listening on %s, rate limits %s", sandbox.base_url, limits)
        stop.wait()


if __name__ == "__main__":
    main()
