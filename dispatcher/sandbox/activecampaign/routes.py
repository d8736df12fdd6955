"""Every /api/3 route the sandbox serves."""

from __future__ import annotations

from dispatcher.sandbox.activecampaign import (
    campaigns,
    catalog,
    contacts,
    ecommerce,
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
    *webhooks.ROUTES,
)
