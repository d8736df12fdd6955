"""What the catalogue RPCs read back: a cached campaign or flow as a caller sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.storage.models import CampaignStatus, CampaignType


@dataclass(frozen=True)
class FiguresView:
    source: str
    timeframe: str
    statistics: dict[str, float]
    fetched_at: datetime | None


@dataclass(frozen=True)
class CatalogueEntryView:
    """One campaign (type EMAIL, SMS or PUSH) or flow (FLOW). `flows`: our flows linked to
    a provider flow (their ids)."""

    external_id: str
    name: str
    type: CampaignType
    status: CampaignStatus
    provider: str
    provider_status: str
    send_time: datetime | None
    trigger_type: str
    figures: FiguresView | None
    fetched_at: datetime
    flows: tuple[str, ...] = ()


def figures_view(metrics: dict[str, Any]) -> FiguresView | None:
    """The `metrics` column as figures; None when the provider reported none."""
    if not metrics or not isinstance(metrics.get("statistics"), dict):
        return None
    fetched = metrics.get("fetch_time")
    return FiguresView(
        source=str(metrics.get("source") or ""),
        timeframe=str(metrics.get("timeframe") or ""),
        statistics={str(k): float(v) for k, v in metrics["statistics"].items()},
        fetched_at=datetime.fromisoformat(fetched) if isinstance(fetched, str) else None,
    )
