"""A full sync's chunk at ActiveCampaign: a person its bulk import skips (an address on
the account's exclusion list) fails alone, reported by email, and the rest of the chunk
counts imported (before, the batch's shortfall lost every person of it)."""

from __future__ import annotations

import asyncio

from dispatcher.providers.activecampaign.imports import SKIPPED
from dispatcher.sandbox.activecampaign import start_activecampaign_sandbox
from tests.dispatcher.delivery.test_sync import _contact, _emails, _worker, delivering, scene
from tests.dispatcher.providers.activecampaign.conftest import ACTID, API_KEY, EVENT_KEY, client_on
from tests.processes import NatsServer


def test_a_person_the_import_skips_fails_alone(own_nats: NatsServer) -> None:
    with start_activecampaign_sandbox(
        api_key=API_KEY, tracking_actid=ACTID, tracking_key=EVENT_KEY, rate_limits=False
    ) as sandbox:

        async def run() -> None:
            async with scene(own_nats) as current, client_on(sandbox) as provider:
                emails = _emails(current.sync_id, 1, 3)
                sandbox.exclude(emails[1])
                await current.publish(1, [_contact(e, None) for e in emails])
                async with delivering(current.bus, _worker(current, provider)):
                    (result,) = await current.results_for(1)

                assert (result.imported, result.error) == (2, "")
                assert [(f.email, f.reason) for f in result.failures] == [(emails[1], SKIPPED)]
                assert {c["email"] for c in sandbox.contacts()} == {emails[0], emails[2]}

        asyncio.run(run())
