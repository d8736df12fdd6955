"""ActiveCampaign (API v3, event tracking, e-commerce) behind the `Provider` interface."""

from dispatcher.providers.activecampaign.client import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.activecampaign.lists import ListSender

__all__ = ["ActiveCampaignClient", "ListSender", "TrackingAccount"]
