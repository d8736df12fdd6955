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

from marketing_runtime import gc_tuning
from marketing_runtime.settings import DEFAULT_GC_GEN0_THRESHOLD

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from dispatcher.sandbox.klaviyo.runner import Sandbox, start_sandbox
from dispatcher.sandbox.settings import SandboxSettings

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
    return SandboxSettings.model_validate(
        {"rate_limits": env.get("MARKETING_SANDBOX_RATE_LIMITS", "on")}
    ).rate_limits


def start(provider: str, settings: SandboxSettings) -> Sandbox | ActiveCampaignSandbox:
    host, port = parse_address(settings.address)
    if provider == "activecampaign":
        return start_activecampaign_sandbox(
            host,
            port,
            api_key=settings.api_key or None,
            tracking_actid=settings.tracking_actid or None,
            tracking_key=settings.tracking_key or None,
            rate_limits=settings.rate_limits,
            import_delay_s=settings.import_processing_s,
        )
    return start_sandbox(
        host,
        port,
        api_key=settings.api_key or None,
        rate_limits=settings.rate_limits,
        import_processing_s=settings.import_processing_s,
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    provider = chosen_provider(argv, os.environ)
    settings = SandboxSettings()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    with start(provider, settings) as sandbox:
        limits = "on" if settings.rate_limits else "OFF (measuring ceilings only)"
        log.info("%s sandbox listening on %s, rate limits %s", provider, sandbox.base_url, limits)
        # A full sync leaves a million profiles in the account: with CPython's
        # default thresholds the collector walked them again and again (a
        # sync's subscription jobs cost twice the CPU), and each full pass
        # still walked them all (37 CPU-s for a sync instead of 47).
        gc_tuning.tune_after_startup(DEFAULT_GC_GEN0_THRESHOLD, full_passes=False)
        stop.wait()


if __name__ == "__main__":
    main()
