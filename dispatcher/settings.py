"""Typed settings of the dispatcher, from the environment (prefix `MARKETING_`)."""

from __future__ import annotations

from typing import Literal

from marketing_runtime.settings import ProcessSettings
from pydantic import Field, SecretStr

from dispatcher.budget.shared import DEFAULT_MARGIN_S

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
KLAVIYO_URL = "https://a.klaviyo.com"
# The ack wait the bus topology gives every consumer when it creates it
# (marketing_runtime.topology.ACK_WAIT_S; a test keeps the two equal).
CONSUMER_ACK_WAIT_S = 30.0


class DispatcherSettings(ProcessSettings):
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s)")
    provider: Literal["sandbox", "klaviyo"] = "sandbox"
    sandbox_url: str = DEFAULT_SANDBOX_URL
    klaviyo_api_key: SecretStr = Field(SecretStr(""), validation_alias="KLAVIYO_API_KEY")
    klaviyo_base_url: str = KLAVIYO_URL
    provider_timeout_s: float = Field(10.0, gt=0)
    # The Klaviyo list that newsletter subscribers join; empty: subscribe only.
    newsletter_list_id: str = ""
    event_batch_size: int = Field(1000, ge=1, le=1000)
    # Event batches handled at once: one is prepared while another waits for
    # the provider (events need no order).
    event_concurrency: int = Field(2, ge=1, le=16)
    # The events consumer's ack wait, set on the consumer by each replica when it
    # (re)connects: how soon JetStream hands an unacknowledged event to another
    # replica. Held events get +WPI every third of the consumer's actual ack
    # wait (another replica may have set a different one).
    event_ack_wait_s: float = Field(CONSUMER_ACK_WAIT_S, ge=1.0, le=CONSUMER_ACK_WAIT_S)
    # How long a partly filled batch waits for more events before it is sent.
    linger_s: float = Field(0.2, ge=0, le=1.0)
    contact_batch_size: int = Field(500, ge=1, le=1000)
    # Attempts per delivery: the first plus one per backoff step (1, 2, 4, 8, 16, 32 s).
    max_attempts: int = Field(7, ge=1, le=20)
    backoff_base_s: float = Field(1.0, gt=0)
    # Keep provider_timeout_s below a third of this: a call started under the
    # lease then ends before a standby could take over.
    lease_ttl_s: float = Field(30.0, gt=1)
    shutdown_grace_s: float = Field(30.0, gt=0)
    metrics_address: str = "127.0.0.1:9465"
    # The provider account whose budget the replicas share. Empty: named after the
    # provider, its URL and a digest of the key; set one name where several keys
    # of one account are used (the provider counts them together).
    provider_account: str = ""
    # How late a call may reach the provider after the budget counted it (half
    # locally, half on the way and in clock differences between replicas): each
    # window of the budget is kept over its length plus this (dispatcher.budget).
    budget_margin_s: float = Field(DEFAULT_MARGIN_S, ge=0, le=10.0)
