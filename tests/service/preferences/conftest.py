"""The preference pages served for real: the service's Starlette app on the
runtime's embedded uvicorn, in the harness's event loop, over its database."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from marketing_runtime.clock import utc_now
from marketing_runtime.http_server import EmbeddedHttpServer

from service.preferences.links import PreferenceLinks
from service.preferences.page import PageSettings, create_app
from tests.harness import ServiceHarness

WORDING_VERSION = "sms-terms-test-7"
WORDING = "Texts about offers. Reply STOP to opt out."
MAX_AGE_S = 3600


@dataclass
class Pages:
    base_url: str
    links: PreferenceLinks
    now: list[float]  # the links' clock: move it to expire them

    def url(self, contact_name: str) -> str:
        return self.links.url_for(uuid.UUID(contact_name.removeprefix("contacts/")))


@pytest.fixture(scope="module")
def pages(harness: ServiceHarness) -> Iterator[Pages]:
    server = EmbeddedHttpServer.listen("127.0.0.1:0", "preference pages")
    base_url = f"http://127.0.0.1:{server.port}"
    now = [time.time()]
    links = PreferenceLinks(secrets.token_urlsafe(32), base_url, MAX_AGE_S, clock=lambda: now[0])
    app = create_app(harness.db, links, PageSettings(WORDING_VERSION, WORDING), clock=utc_now)

    async def start() -> None:
        server.start(app)

    harness.run(start())
    yield Pages(base_url, links, now)
    harness.run(server.stop())
