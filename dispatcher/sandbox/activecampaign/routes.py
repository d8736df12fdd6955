"""Every /api/3 route the sandbox serves."""

from __future__ import annotations

from dispatcher.sandbox.activecampaign import (
    campaign_drafts,
    campaigns,
    catalog,
    contacts,
    ecommerce,
    email_messages,
    imports,
    memberships,
    tracking,
    webhooks,
)
from dispatcher.sandbox.activecampaign.routing import Route

ROUTES: tuple[Route, ...] = (
    *contacts.ROUTES,
    *memberships.ROUTES,
    *catalog.ROUTES,
    *imports.ROUTES,
    *ecommerce.ROUTES,
    *tracking.ROUTES,
    *campaigns.ROUTES,
    *campaign_drafts.ROUTES,
    *email_messages.ROUTES,
    *webhooks.ROUTES,
)
