"""Typed settings of `python -m dispatcher.sandbox`, from the environment (prefix `MARKETING_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatcher.sandbox.klaviyo.imports import DEFAULT_PROCESSING_S

DEFAULT_ADDRESS = "127.0.0.1:8090"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MARKETING_SANDBOX_", extra="ignore", hide_input_in_errors=True
    )

    address: str = Field(DEFAULT_ADDRESS, description='"host:port" or "[v6 host]:port"')
    # Accept this key only; empty: any well-formed key.
    api_key: str = ""
    # Klaviyo's per-endpoint rate limits ("on"/"off", "true"/"false"). Off only to measure
    # ceilings: everything else runs with them on.
    rate_limits: bool = True
    import_processing_s: float = Field(DEFAULT_PROCESSING_S, ge=0, le=3600)
    # ActiveCampaign's event tracking account id and key (empty: any).
    tracking_actid: str = ""
    tracking_key: str = ""
