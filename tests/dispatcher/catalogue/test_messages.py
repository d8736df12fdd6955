"""A refresh as bus messages: one when it fits, else parts within the server's max_payload,
every campaign and flow in exactly one; and the providers' statuses in the seed's terms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marketing.bus.v1 import bus_pb2

from dispatcher.catalogue.messages import catalogue_messages, message_id
from dispatcher.providers.catalogue import (
    CatalogueCampaign,
    CatalogueDraft,
    CatalogueFlow,
    CatalogueStatus,
    Channel,
    Figures,
)
from dispatcher.providers.klaviyo.catalogue import campaign_status, flow_status

WHEN = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _draft(campaigns: int, flows: int) -> CatalogueDraft:
    draft = CatalogueDraft()
    figures = Figures("campaign-values-report", "last_365_days", {"recipients": 10.0})
    for n in range(campaigns):
        draft.campaigns[f"c{n}"] = CatalogueCampaign(
            f"c{n}", f"Campaign {n}", Channel.EMAIL, CatalogueStatus.SENT, "Sent", WHEN, figures
        )
    for n in range(flows):
        draft.flows[f"f{n}"] = CatalogueFlow(f"f{n}", f"Flow {n}", CatalogueStatus.SENDING, "live")
    return draft


def test_a_small_refresh_is_one_message() -> None:
    (message,) = catalogue_messages("klaviyo", WHEN, _draft(3, 2), 1024 * 1024)

    assert (message.part, message.parts, message.provider) == (0, 1, "klaviyo")
    assert [c.id for c in message.campaigns] == ["c0", "c1", "c2"]
    assert [f.id for f in message.flows] == ["f0", "f1"]
    assert message.campaigns[0].figures.statistics["recipients"] == 10.0
    assert message.campaigns[0].status == bus_pb2.CATALOGUE_STATUS_SENT
    assert message_id(message).startswith("catalogue.klaviyo.") and message_id(message).endswith(
        ".0"
    )


def test_a_large_refresh_is_split_within_the_max_payload() -> None:
    limit = 4096
    messages = catalogue_messages("klaviyo", WHEN, _draft(200, 50), limit)

    assert len(messages) > 1
    assert all(m.ByteSize() <= limit for m in messages)
    assert [(m.part, m.parts) for m in messages] == [
        (i, len(messages)) for i in range(len(messages))
    ]
    assert [c.id for m in messages for c in m.campaigns] == [f"c{n}" for n in range(200)]
    assert [f.id for m in messages for f in m.flows] == [f"f{n}" for n in range(50)]
    assert len({message_id(m) for m in messages}) == len(messages)


def test_an_empty_refresh_is_still_published() -> None:
    (message,) = catalogue_messages("activecampaign", WHEN, CatalogueDraft(), 1024)
    assert (len(message.campaigns), len(message.flows), message.parts) == (0, 0, 1)


@pytest.mark.parametrize(
    ("status", "archived", "expected"),
    [
        ("Draft", False, CatalogueStatus.DRAFT),
        ("Scheduled", False, CatalogueStatus.SCHEDULED),
        ("Preparing to send", False, CatalogueStatus.SENDING),
        ("Sent", False, CatalogueStatus.SENT),
        ("Variations Sent", False, CatalogueStatus.SENT),
        ("Cancelled: No Recipients", False, CatalogueStatus.ARCHIVED),
        ("Sent", True, CatalogueStatus.ARCHIVED),
        ("Unknown", False, CatalogueStatus.DRAFT),
    ],
)
def test_klaviyos_campaign_statuses(status: str, archived: bool, expected: CatalogueStatus) -> None:
    assert campaign_status(status, archived) is expected


def test_klaviyos_flow_statuses() -> None:
    assert [flow_status(s, False) for s in ("draft", "manual", "live")] == [
        CatalogueStatus.DRAFT,
        CatalogueStatus.PAUSED,
        CatalogueStatus.SENDING,
    ]
    assert flow_status("live", True) is CatalogueStatus.ARCHIVED
