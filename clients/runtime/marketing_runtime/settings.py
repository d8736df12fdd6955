"""Settings both processes read, from the environment (prefix `MARKETING_`).

`service.settings.ServiceSettings` and `dispatcher.settings.DispatcherSettings`
extend `ProcessSettings` with their own fields; the NATS URL, the metrics
address and the shutdown grace are declared by each, as their defaults differ.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketing_runtime.event_loop import EventLoop

DEFAULT_GC_GEN0_THRESHOLD = 20_000  # see marketing_runtime/gc_tuning.py
MAX_GC_GEN0_THRESHOLD = 10_000_000  # gc.set_threshold takes a C int; far past any use


class ProcessSettings(BaseSettings):
    # An error never repeats the value it refused: it may be a secret (an API
    # key, a database URL with its password) and errors reach the log.
    model_config = SettingsConfigDict(
        env_prefix="MARKETING_", extra="ignore", hide_input_in_errors=True
    )

    stream_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas (3 in a cluster)")
    event_loop: EventLoop = Field("uvloop", description='"uvloop" or the standard "asyncio"')
    gc_gen0_threshold: int = Field(
        DEFAULT_GC_GEN0_THRESHOLD,
        ge=0,
        le=MAX_GC_GEN0_THRESHOLD,
        description="young-generation threshold of the garbage collector, set after start-up "
        "(with gc.freeze()); 0 leaves CPython's defaults",
    )
    log_level: str = "INFO"
