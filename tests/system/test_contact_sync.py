"""A full contact sync through the whole system: the service's driver
publishes the contacts, a dispatcher process imports them at the sandbox
(bulk import jobs), the service records the results and ends the sync."""

from __future__ import annotations

from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from tests.builders import upsert
from tests.dispatcher.providers.klaviyo.test_imports import stored_profile
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import KLAVIYO_ONLY

State = contact_sync_pb2.ContactSync.State
# Klaviyo's import jobs; ActiveCampaign's bulk import has system tests of its own to come.
pytestmark = KLAVIYO_ONLY


def test_every_contact_reaches_the_provider_and_the_sync_succeeds(
    system: ServiceHarness, klaviyo: Sandbox
) -> None:
    emails = [unique_email("fullsync") for _ in range(25)]
    for email in emails:
        system.stub.UpsertContact(upsert(email, first_name="Ada", loyalty_tier="gold"))
    started = system.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    assert started.total_contacts >= len(emails)

    def ended() -> contact_sync_pb2.ContactSync | None:
        got = system.stub.GetContactSync(pb.GetContactSyncRequest(name=started.name))
        return None if got.contact_sync.state == State.STATE_RUNNING else got.contact_sync

    sync = assert_eventually(ended, timeout_s=120)
    assert sync.state == State.STATE_SUCCEEDED, sync.error
    assert sync.imported_contacts == sync.published_contacts >= len(emails)
    assert sync.failed_contacts == 0 and sync.provider_jobs >= 1
    assert sync.reported_chunks == sync.published_chunks
    for email in emails:
        profile = stored_profile(klaviyo, email)
        assert profile is not None, email
        assert profile["properties"]["loyalty_tier"] == "gold", profile
    errors = system.stub.ListContactSyncErrors(pb.ListContactSyncErrorsRequest(parent=sync.name))
    assert list(errors.errors) == []
