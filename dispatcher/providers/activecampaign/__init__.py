"""ActiveCampaign (API v3, event tracking, e-commerce) behind the `Provider` interface."""

from dispatcher.providers.activecampaign.client import ActiveCampaignClient, TrackingAccount

__all__ = ["ActiveCampaignClient", "TrackingAccount"]
