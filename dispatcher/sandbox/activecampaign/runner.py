"""Running the ActiveCampaign sandbox in-process from a background thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dispatcher.sandbox.activecampaign import views
from dispatcher.sandbox.activecampaign.control import engage
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.server import ActiveCampaignServer
from dispatcher.sandbox.activecampaign.state import (
    DEFAULT_IMPORT_DELAY_S,
    ActiveCampaignState,
    Settings,
)
from dispatcher.sandbox.common.campaign_sends import DEFAULT_LIMIT, EngagementSeed, MessageFilter
from dispatcher.sandbox.common.flow_control import FlowsInProcess
from dispatcher.sandbox.common.running import RunningServer


class ActiveCampaignSandbox(FlowsInProcess, RunningServer):
    """A running ActiveCampaign sandbox. `base_url` is the account URL (calls go to
    `base_url + "/api/3/..."`) and the event tracking URL (`base_url + "/event"`)."""

    def __init__(self, server: ActiveCampaignServer) -> None:
        super().__init__(server, "activecampaign-sandbox", server.state)
        self.state: ActiveCampaignState = server.state

    @property
    def tracking_url(self) -> str:
        return f"{self.base_url}/event"

    def view(self, name: str, **query: str) -> Any:
        """A /_sandbox/<name> view: contacts, events, orders, automations, imports, lists,
        members (of `list=`), webhooks."""
        with self.state.account() as account:
            settle_due(account, self.state.clock())
            return views.VIEWS[name](account, query)

    def members(self, list_id: str) -> dict[str, str]:
        """Email -> status ("1" subscribed, "2" unsubscribed) of the list's contacts."""
        return {row["email"]: row["status"] for row in self.view("members", list=list_id)}

    def contacts(self, email: str | None = None) -> list[dict[str, Any]]:
        return list(self.view("contacts", **({"email": email} if email else {})))

    def add_automation(self, name: str) -> str:
        """A new automation; its id."""
        with self.state.account() as account:
            return str(account.add_automation(name, self.state.clock())["id"])

    def exclude(self, *emails: str) -> None:
        """Put addresses on the account's exclusion list (a bulk import skips them), as
        POST /_sandbox/exclusions does."""
        with self.state.account() as account:
            settle_due(account, self.state.clock())
            account.excluded.update(e.strip().lower() for e in emails)

    def engage(self, **fields: Any) -> dict[str, Any]:
        """What a person did with a message, as POST /_sandbox/engagement takes it (email,
        type, message_id, url, bounce_type, phone, campaign_id, reason): its effect, and
        {"external_ids", "webhooks"} it will be delivered to."""
        return engage(self.state, fields)

    def campaign_messages(
        self,
        campaign_id: str | None = None,
        email: str | None = None,
        status: str | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The campaigns' messages, as GET /_sandbox/campaign-messages returns them
        ({"messages", "total"}); the campaigns due sent first."""
        sends = self.state.campaign_sends
        sends.send_due()
        wanted = MessageFilter(campaign_id, email, status)
        page, total = sends.book.messages(wanted, limit=limit, offset=offset)
        return {"messages": page, "total": total}

    def campaign_summary(self) -> dict[str, Any]:
        """GET /_sandbox/campaign-messages/summary: {"campaigns": {id: {name, sent,
        skipped}}}."""
        self.state.campaign_sends.send_due()
        return self.state.campaign_sends.book.summary()

    def seed_campaign_engagement(self, **document: Any) -> None:
        """How recipients of campaigns sent from now on engage, as POST
        /_sandbox/campaign-engagement takes it: seed, default, by_subject."""
        seed = EngagementSeed.from_json(document)
        self.state.campaign_sends.engagement.configure(seed)

    def webhook_deliveries(self, webhook: str | None = None) -> list[dict[str, Any]]:
        """Every webhook delivery attempt, as GET /_sandbox/webhook-deliveries returns them."""
        return self.state.webhooks.log.entries(webhook)

    def webhooks_idle(self, timeout_s: float = 10.0) -> bool:
        """Decide the messages due, then wait until no webhook delivery is pending or in
        flight."""
        self.state.flows.send_due()
        return self.state.webhooks.wait_idle(timeout_s)

    def reset(self) -> None:
        """A new account (no flows, no messages, no webhooks), an empty log, no faults."""
        self.state.reset()

    def close(self) -> None:
        super().close()
        self.state.ticker.close()
        self.state.webhooks.close()


def start_activecampaign_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str | None = None,
    tracking_actid: str | None = None,
    tracking_key: str | None = None,
    rate_limits: bool = True,
    import_delay_s: float = DEFAULT_IMPORT_DELAY_S,
    clock: Callable[[], float] = time.time,
    first_contact_id: int = 1,
) -> ActiveCampaignSandbox:
    """Serve the ActiveCampaign subset on host:port (0 = a free port). With `api_key`, only
    that `Api-Token` is the account's (others get 403); likewise `tracking_actid` and
    `tracking_key` for POST /event. `rate_limits=False` lifts every limit (for measuring
    ceilings). `clock` gives epoch seconds (plus what POST /_sandbox/clock moved it on): rate
    windows, import progress, timestamps and the automations' messages.
    Contact ids count from `first_contact_id`."""
    settings = Settings(
        api_key, tracking_actid, tracking_key, rate_limits, import_delay_s, first_contact_id
    )
    return ActiveCampaignSandbox(
        ActiveCampaignServer(host, port, ActiveCampaignState(settings, clock))
    )
