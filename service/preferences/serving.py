"""The preference pages' server in the serving process, from the settings."""

from __future__ import annotations

from marketing_runtime.clock import utc_now
from marketing_runtime.http_server import EmbeddedHttpServer

from service.preferences.links import PreferenceLinks
from service.preferences.page import PageSettings, create_app
from service.settings import ServiceSettings
from service.storage.database import Database

DAY_S = 86_400
# Requests in hand at once before uvicorn answers 503: a page's request is small and
# its database work waits for the pool, so a burst (a mailing's clicks) queues there.
MAX_CONCURRENT = 1000


def preference_links(settings: ServiceSettings) -> PreferenceLinks:
    return PreferenceLinks(
        settings.preferences_key.get_secret_value(),
        settings.preferences_base_url,
        settings.preferences_link_days * DAY_S,
    )


def start_preference_pages(settings: ServiceSettings, db: Database) -> EmbeddedHttpServer | None:
    """Listening and serving, or None when MARKETING_PREFERENCES_ADDRESS is empty."""
    if not settings.preferences_address:
        return None
    server = EmbeddedHttpServer.listen(settings.preferences_address, "preference pages")
    page = PageSettings(settings.sms_wording_version, settings.sms_wording)
    server.start(create_app(db, preference_links(settings), page, clock=utc_now), MAX_CONCURRENT)
    return server
