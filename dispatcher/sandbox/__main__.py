"""`python -m dispatcher.sandbox [--provider klaviyo|activecampaign]`: serve until SIGTERM or
SIGINT. Without --provider, MARKETING_PROVIDER=activecampaign chooses the ActiveCampaign
sandbox; anything else the Klaviyo one."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from dispatcher.sandbox.activecampaign.state import DEFAULT_IMPORT_DELAY_S
from dispatcher.sandbox.runner import Sandbox, start_sandbox

DEFAULT_ADDRESS = "127.0.0.1:8090"
PROVIDERS = ("klaviyo", "activecampaign")
log = logging.getLogger("marketing.sandbox")


def parse_address(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6 host]:port"."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"MARKETING_SANDBOX_ADDRESS must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def chosen_provider(argv: Sequence[str] | None, env: Mapping[str, str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m dispatcher.sandbox")
    parser.add_argument("--provider", choices=PROVIDERS, help="default: from MARKETING_PROVIDER")
    provider: str | None = parser.parse_args(argv).provider
    if provider is None:
        provider = (
            "activecampaign" if env.get("MARKETING_PROVIDER") == "activecampaign" else "klaviyo"
        )
    return provider


def rate_limits_on(env: Mapping[str, str]) -> bool:
    """Limits are on unless MARKETING_SANDBOX_RATE_LIMITS=off (for measuring ceilings)."""
    return env.get("MARKETING_SANDBOX_RATE_LIMITS", "on").strip().lower() != "off"


def start(provider: str, env: Mapping[str, str]) -> Sandbox | ActiveCampaignSandbox:
    host, port = parse_address(env.get("MARKETING_SANDBOX_ADDRESS", DEFAULT_ADDRESS))
    api_key = env.get("MARKETING_SANDBOX_API_KEY") or None
    if provider == "activecampaign":
        return start_activecampaign_sandbox(
            host,
            port,
            api_key=api_key,
            tracking_actid=env.get("MARKETING_SANDBOX_TRACKING_ACTID") or None,
            tracking_key=env.get("MARKETING_SANDBOX_TRACKING_KEY") or None,
            rate_limits=rate_limits_on(env),
            import_delay_s=float(
                env.get("MARKETING_SANDBOX_IMPORT_PROCESSING_S") or DEFAULT_IMPORT_DELAY_S
            ),
        )
    return start_sandbox(host, port, api_key=api_key)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    provider = chosen_provider(argv, os.environ)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    with start(provider, os.environ) as sandbox:
        log.info("%s sandbox listening on %s", provider, sandbox.base_url)
        stop.wait()


if __name__ == "__main__":
    main()
