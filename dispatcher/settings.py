"""Typed settings of the dispatcher, from the environment (prefix `MARKETING_`)."""

from __future__ import annotations

from typing import Literal, Self

from marketing_runtime.settings import ProcessSettings
from pydantic import Field, SecretStr, model_validator

from dispatcher.budget.log import DEFAULT_PROVIDER_SKEW_S, MAX_PROVIDER_SKEW_S
from dispatcher.budget.shared import DEFAULT_MARGIN_S, DEFAULT_SKEW_S
from dispatcher.catalogue.refresher import DEFAULT_INTERVAL_S as DEFAULT_CATALOGUE_REFRESH_S
from dispatcher.providers.activecampaign.lists import DEFAULT_SENDER_REMINDER, DEFAULT_SENDER_URL

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
KLAVIYO_URL = "https://a.klaviyo.com"
TRACKCMP_URL = "https://trackcmp.net/event"
# What a client presents to a sandbox (which takes any key unless told one).
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_EVENT_ACCOUNT_ID = "sandbox-account"
SANDBOX_EVENT_KEY = "sandbox-event-key"
# The ack wait the bus topology gives every consumer when it creates it
# (marketing_runtime.topology.ACK_WAIT_S; a test keeps the two equal).
CONSUMER_ACK_WAIT_S = 30.0
# The webhook receiver: where it listens unless told, and how far a Klaviyo delivery's
# timestamp may lie from our clock (Klaviyo signs it; older or newer is a replay).
DEFAULT_WEBHOOK_ADDRESS = "127.0.0.1:8091"
DEFAULT_REPLAY_WINDOW_S = 300.0


class DispatcherSettings(ProcessSettings):
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s)")
    # A provider given without its credentials is its sandbox at `sandbox_url` (its
    # stand-in, with sandbox credentials); `sandbox` is Klaviyo's, the name older setups use.
    provider: Literal["sandbox", "klaviyo", "activecampaign"] = "sandbox"
    sandbox_url: str = DEFAULT_SANDBOX_URL
    klaviyo_api_key: SecretStr = Field(SecretStr(""), validation_alias="KLAVIYO_API_KEY")
    klaviyo_base_url: str = KLAVIYO_URL
    # ActiveCampaign: the account's API URL (https://<account>.api-us1.com) and key, and
    # event tracking's own account id and event key (Settings > Tracking).
    activecampaign_url: str = Field("", validation_alias="ACTIVECAMPAIGN_URL")
    activecampaign_api_key: SecretStr = Field(
        SecretStr(""), validation_alias="ACTIVECAMPAIGN_API_KEY"
    )
    activecampaign_event_account_id: str = Field(
        "", validation_alias="ACTIVECAMPAIGN_EVENT_ACCOUNT_ID"
    )
    activecampaign_event_key: SecretStr = Field(
        SecretStr(""), validation_alias="ACTIVECAMPAIGN_EVENT_KEY"
    )
    activecampaign_tracking_url: str = TRACKCMP_URL
    # The list SMS consent is expressed on; empty: a custom field records it.
    activecampaign_sms_list_id: str = ""
    activecampaign_suppression_tag: str = Field("marketing-suppressed", min_length=1)
    # What ActiveCampaign shows on a list it creates for a segment (found or created by
    # name): the sender's website and why people are on it. Set both for a real account.
    activecampaign_list_sender_url: str = Field(DEFAULT_SENDER_URL, min_length=1)
    activecampaign_list_sender_reminder: str = Field(DEFAULT_SENDER_REMINDER, min_length=1)
    provider_timeout_s: float = Field(10.0, gt=0)
    # The list that newsletter subscribers join (Klaviyo list id, ActiveCampaign numeric
    # list id); empty: Klaviyo subscribes only, ActiveCampaign records consent in fields.
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
    # Flow enrolment changes fetched at once: with Klaviyo a batch's beginnings and ends
    # go in one bulk event job (up to 1,000 events), on a budget of 150 jobs a minute
    # shared with the events worker; with ActiveCampaign, a call each.
    enrolment_batch_size: int = Field(1000, ge=1, le=1000)
    # A full contact sync: chunks (of about 1,000 people) fetched at once, at
    # most; fewer when the provider's import job takes fewer (Klaviyo 10,000
    # people a job: 10 chunks; ActiveCampaign 250: 1). Each of the
    # `sync_concurrency` loops holds one such batch: memory stays flat.
    sync_chunks_per_batch: int = Field(10, ge=1, le=50)
    sync_concurrency: int = Field(4, ge=1, le=8)
    # The sync's second stage, a chunk's consent once imported: loops, each
    # with a batch of up to `sync_consent_chunks_per_batch` chunks (about 0.3 KB
    # a person in hand; the people waiting for consent calls wait in the
    # stream). Big batches make full calls, the scarce resource: each
    # operation's last call of a batch is part-full. Within
    # topology.SYNC_CONSENT_MAX_ACK_PENDING (200) for every replica together.
    sync_consent_chunks_per_batch: int = Field(20, ge=1, le=50)
    sync_consent_concurrency: int = Field(6, ge=1, le=16)
    # How long a sync batch waits to fill up to a whole job's worth of chunks:
    # the driver publishes them one at a time, and a job of one chunk would
    # spend a call of the import endpoint's (and its status endpoint's) 150 a
    # minute on a tenth of what it can carry.
    sync_fill_s: float = Field(2.0, ge=0, le=10.0)
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
    # locally, half on the way and in clock differences between replicas): a call
    # not yet answered counts in each window for its length plus this (dispatcher.budget).
    budget_margin_s: float = Field(DEFAULT_MARGIN_S, ge=0, le=10.0)
    # Once a call is answered it counts until then plus this: how far the replicas'
    # clocks may differ (dispatcher.budget). At most the margin.
    budget_skew_s: float = Field(DEFAULT_SKEW_S, ge=0, le=10.0)
    # How far the provider's clock may be from the replicas', where its windows are
    # counted by the clock (Klaviyo's seconds: dispatcher.budget). A call that may reach
    # the provider within this of a second's edge (from its stamp to its answer) counts in
    # both seconds, so a wider skew costs calls near each edge; a narrower one than the
    # truth costs a 429 now and then (each turns counting by the clock off for an hour).
    # 50 ms: Klaviyo's clock and ours, both kept by NTP. A sandbox on the replicas' own
    # host reads their clock: the local stack and the bench's rate-limited replicas set
    # 5 ms. At most 0.2 s (budget.log.MAX_PROVIDER_SKEW_S).
    budget_provider_skew_s: float = Field(DEFAULT_PROVIDER_SKEW_S, ge=0, le=MAX_PROVIDER_SKEW_S)
    # How often the provider's campaigns and flows are read for the service's cache, by the
    # replica holding the catalogue lease (dispatcher/catalogue). Klaviyo's reports allow 225
    # calls a day: below 384 s the daily limit, not this, sets how often figures come.
    catalogue_refresh_s: float = Field(DEFAULT_CATALOGUE_REFRESH_S, ge=1.0)
    # The webhook receiver (dispatcher/webhooks): where it listens ("" turns it off;
    # behind an HTTPS reverse proxy in production), the secrets that authenticate each
    # provider's deliveries (unset: that provider's are refused), and how far a Klaviyo
    # delivery's timestamp may lie from our clock, either way.
    webhook_address: str = DEFAULT_WEBHOOK_ADDRESS
    klaviyo_webhook_secret: SecretStr = Field(
        SecretStr(""), validation_alias="KLAVIYO_WEBHOOK_SECRET"
    )
    activecampaign_webhook_secret: SecretStr = Field(
        SecretStr(""), validation_alias="ACTIVECAMPAIGN_WEBHOOK_SECRET"
    )
    webhook_replay_window_s: float = Field(DEFAULT_REPLAY_WINDOW_S, gt=0, le=3600.0)

    @property
    def provider_name(self) -> Literal["klaviyo", "activecampaign"]:
        return "klaviyo" if self.provider == "sandbox" else self.provider

    @property
    def uses_sandbox(self) -> bool:
        """True when the provider is its sandbox at `sandbox_url` (no credentials given)."""
        if self.provider_name == "klaviyo":
            return not self.klaviyo_api_key.get_secret_value()
        return not self.activecampaign_url and not self.activecampaign_api_key.get_secret_value()

    def api_endpoint(self) -> tuple[str, str]:
        """The provider's API base URL and key: the configured ones, or its sandbox's (the
        provider account a budget is kept for is named after these)."""
        if self.uses_sandbox:
            return self.sandbox_url, SANDBOX_API_KEY
        if self.provider_name == "klaviyo":
            return self.klaviyo_base_url, self.klaviyo_api_key.get_secret_value()
        return self.activecampaign_url, self.activecampaign_api_key.get_secret_value()

    def event_tracking(self) -> tuple[str, str, str]:
        """ActiveCampaign event tracking's URL, account id and key (its sandbox's when the
        provider is the sandbox)."""
        if self.uses_sandbox:
            url = self.sandbox_url.rstrip("/") + "/event"
            return url, SANDBOX_EVENT_ACCOUNT_ID, SANDBOX_EVENT_KEY
        key = self.activecampaign_event_key.get_secret_value()
        return self.activecampaign_tracking_url, self.activecampaign_event_account_id, key

    @model_validator(mode="after")
    def _credentials_complete(self) -> Self:
        if self.provider_name == "activecampaign" and not self.uses_sandbox:
            missing = [
                name
                for name, value in (
                    ("ACTIVECAMPAIGN_URL", self.activecampaign_url),
                    ("ACTIVECAMPAIGN_API_KEY", self.activecampaign_api_key.get_secret_value()),
                    ("ACTIVECAMPAIGN_EVENT_ACCOUNT_ID", self.activecampaign_event_account_id),
                    ("ACTIVECAMPAIGN_EVENT_KEY", self.activecampaign_event_key.get_secret_value()),
                )
                if not value.strip()
            ]
            if missing:
                raise ValueError(
                    "MARKETING_PROVIDER=activecampaign needs "
                    + ", ".join(missing)
                    + " (or none of the ActiveCampaign settings, for its sandbox at"
                    " MARKETING_SANDBOX_URL)"
                )
        return self
