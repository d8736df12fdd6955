"""A full contact sync and ReconcileContact end to end with ActiveCampaign, at its real
limits: the service, its own nats-server and database (a full sync sends every contact the
service holds, and ActiveCampaign takes each person's consent in three requests at 5 a
second: a few people, not the whole session's), a dispatcher process with
MARKETING_PROVIDER=activecampaign and the ActiveCampaign sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb

from dispatcher.providers.activecampaign.imports import SKIPPED
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from tests.builders import upsert
from tests.dispatcher.providers.under_test import new_list
from tests.harness import ServiceHarness, assert_eventually, own_database, unique_email
from tests.processes import NatsServer
from tests.system.provider_state import ActiveCampaignProvider
from tests.system.test_contact_sync import _ended
from tests.system.test_reconcile import delivered, differences, reconcile

State = contact_sync_pb2.ContactSync.State


@pytest.fixture(scope="module")
def ac_provider() -> Iterator[ActiveCampaignProvider]:
    # Contact ids of their own, apart from the other modules' sandboxes (see
    # test_activecampaign.py).
    with start_activecampaign_sandbox(import_delay_s=0.0, first_contact_id=700_001) as running:
        yield ActiveCampaignProvider(running, new_list(running, "Newsletter"))


@pytest.fixture(scope="module")
def ac_service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, ac_provider: ActiveCampaignProvider
) -> Iterator[ServiceHarness]:
    nats = NatsServer(Path(tmp_path_factory.mktemp("ac-sync-nats")))
    nats.start()
    replica = ac_provider.dispatcher(nats.url)
    try:
        with (
            own_database(database_url, "ac_sync") as url,
            ServiceHarness.start(url, nats.url) as service,
        ):
            replica.start()
            yield service
    finally:
        replica.stop()
        nats.stop()


def test_every_contact_reaches_activecampaign_and_one_it_skips_is_listed(
    ac_service: ServiceHarness, ac_provider: ActiveCampaignProvider
) -> None:
    emails = [unique_email("acsync") for _ in range(4)]
    for email in emails:
        ac_service.stub.UpsertContact(upsert(email, first_name="Ada", loyalty_tier="gold"))
    assert_eventually(lambda: all(delivered(ac_service, e) for e in emails), timeout_s=60)
    skipped, edited = emails[2], emails[0]
    ac_provider.sandbox.exclude(skipped)
    # Edited in ActiveCampaign itself: only the sync's import can set it back.
    _plant(
        ac_provider.sandbox,
        "POST",
        "/contact/sync",
        {"contact": {"email": edited, "firstName": "Augusta"}},
    )
    imports_before = len(ac_provider.requests("/api/3/import/bulk_import"))

    started = ac_service.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    sync = assert_eventually(lambda: _ended(ac_service, started.name), timeout_s=120)

    assert sync.state == State.STATE_SUCCEEDED, sync.error
    assert sync.published_contacts >= len(emails)  # and any other test's contacts
    assert (sync.imported_contacts, sync.failed_contacts) == (sync.published_contacts - 1, 1)
    errors = ac_service.stub.ListContactSyncErrors(
        pb.ListContactSyncErrorsRequest(parent=sync.name)
    ).errors
    assert [(e.email, e.reason) for e in errors] == [(skipped, SKIPPED)]
    assert len(ac_provider.requests("/api/3/import/bulk_import")) - imports_before == 1
    (contact,) = ac_provider.sandbox.contacts(edited)
    assert contact["firstName"] == "Ada", "set back by the import"
    assert ac_provider.synced_value(emails[1], "loyalty_tier", "gold")


def _plant(sandbox: ActiveCampaignSandbox, method: str, path: str, body: dict[str, object]) -> None:
    """Someone edits the person in ActiveCampaign itself."""
    answer = httpx.request(
        method,
        f"{sandbox.base_url}/api/3{path}",
        json=body,
        headers={"Api-Token": "someone-at-the-shop"},
        timeout=10,
    )
    assert answer.is_success, answer.text


def test_drift_at_activecampaign_is_reported_repaired_and_then_gone(
    ac_service: ServiceHarness, ac_provider: ActiveCampaignProvider
) -> None:
    email = unique_email("acreconcile")
    stub = ac_service.stub
    stub.UpsertContact(upsert(email, first_name="Ada"))
    stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="footer_form"))
    assert_eventually(lambda: delivered(ac_service, email), timeout_s=60)
    in_sync = reconcile(ac_service, email)
    assert (list(in_sync.differences), in_sync.repair_queued) == ([], False)

    _plant(
        ac_provider.sandbox,
        "POST",
        "/contact/sync",
        {"contact": {"email": email, "firstName": "Augusta"}},
    )
    drift = reconcile(ac_service, email)

    assert differences(drift) == {"first_name": ("Ada", "Augusta")}
    assert drift.repair_queued and drift.provider_id == in_sync.provider_id
    assert_eventually(lambda: delivered(ac_service, email), timeout_s=60)
    (contact,) = ac_provider.sandbox.contacts(email)
    assert contact["firstName"] == "Ada"
    again = reconcile(ac_service, email)
    assert (list(again.differences), again.repair_queued) == ([], False)
