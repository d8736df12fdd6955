"""A full contact sync through the whole system: the service's driver
publishes the contacts, a dispatcher process imports them at the sandbox
(bulk import jobs) and sends their consent, the service records the results
and ends the sync."""

from __future__ import annotations

from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from tests.builders import upsert
from tests.consent_model import Subscribe, Unsubscribe, send
from tests.dispatcher.helpers import expected_consent, provider_consent
from tests.dispatcher.providers.klaviyo.test_imports import stored_profile
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import KLAVIYO_ONLY

State = contact_sync_pb2.ContactSync.State
# Klaviyo's import jobs (held by a fault); ActiveCampaign's: test_activecampaign_sync.py.
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


JOBS = "/api/profile-bulk-import-jobs"
IMPORT_HELD_MS = 8000  # long enough for the withdrawal to pass through the ordered path


def test_a_consent_withdrawal_made_while_the_sync_runs_is_not_undone_by_it(
    system: ServiceHarness, klaviyo: Sandbox
) -> None:
    """The person is subscribed when their chunk is read; they unsubscribe while
    the chunk's import job is held at the provider. The withdrawal reaches the
    provider through the ordered path; the sync, finishing after it, must not
    subscribe them again with its older state."""
    email = unique_email("withdraws")
    parent = system.stub.UpsertContact(upsert(email, first_name="Ada")).contact.name
    send(system.stub, Subscribe(), email, parent)
    assert_eventually(lambda: _consent_at(klaviyo, email) == SUBSCRIBED)
    klaviyo.add_fault(path=JOBS, latency_ms=IMPORT_HELD_MS, times=1)

    started = system.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    assert_eventually(lambda: _every_chunk_published(system, started.name))
    send(system.stub, Unsubscribe(), email, parent)
    assert_eventually(lambda: _consent_at(klaviyo, email) == WITHDRAWN)
    during = _get(system, started.name)
    assert during.state == State.STATE_RUNNING and during.imported_contacts == 0, (
        "the sync finished before the withdrawal: the race was not set up"
    )

    sync = assert_eventually(lambda: _ended(system, started.name), timeout_s=120)
    assert sync.state == State.STATE_SUCCEEDED, sync.error
    assert sync.imported_contacts == sync.published_contacts, "counted imported, as current"
    assert _consent_at(klaviyo, email) == WITHDRAWN, "the sync undid the withdrawal"


def test_the_sync_brings_consent_that_drifted_at_the_provider_back_to_ours(
    system: ServiceHarness, klaviyo: Sandbox
) -> None:
    """Someone changed the person's consent at the provider behind our back:
    the sync sends our whole consent state, and ours wins."""
    email = unique_email("drifted")
    parent = system.stub.UpsertContact(upsert(email, first_name="Ada")).contact.name
    send(system.stub, Subscribe(), email, parent)
    assert_eventually(lambda: _consent_at(klaviyo, email) == SUBSCRIBED)
    klaviyo.plant_profile(email=email, consent={"email": "UNSUBSCRIBED"})
    assert _consent_at(klaviyo, email) != SUBSCRIBED

    started = system.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    sync = assert_eventually(lambda: _ended(system, started.name), timeout_s=120)
    assert sync.state == State.STATE_SUCCEEDED, sync.error
    assert sync.failed_contacts == 0
    assert _consent_at(klaviyo, email) == SUBSCRIBED


SUBSCRIBED = expected_consent(email=True, sms=False, suppressed=False)
WITHDRAWN = expected_consent(email=False, sms=False, suppressed=True)


def _consent_at(provider: Sandbox, email: str) -> dict[str, bool]:
    return provider_consent(provider.profiles(email))


def _get(system: ServiceHarness, name: str) -> contact_sync_pb2.ContactSync:
    return system.stub.GetContactSync(pb.GetContactSyncRequest(name=name)).contact_sync


def _every_chunk_published(system: ServiceHarness, name: str) -> bool:
    sync = _get(system, name)
    return sync.published_contacts >= sync.total_contacts


def _ended(system: ServiceHarness, name: str) -> contact_sync_pb2.ContactSync | None:
    sync = _get(system, name)
    return None if sync.state == State.STATE_RUNNING else sync
