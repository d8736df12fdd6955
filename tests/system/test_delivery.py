"""End to end: RPC → PostgreSQL/JetStream → dispatcher → the provider's sandbox → results."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import SystemProvider, order_event


def _event_status(system: ServiceHarness, event_id: str) -> str | None:
    return system.scalar("SELECT status FROM marketing_event_log WHERE id = :id", id=event_id)


def test_event_reaches_provider_once_and_completes(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    email = unique_email()
    event_id = system.stub.TrackEvent(pb.TrackEventRequest(event=order_event(email))).event_id
    assert_eventually(lambda: _event_status(system, event_id) == "COMPLETED")
    assert provider.event_counts().get(event_id) == 1


def test_contact_is_synced_with_provider_id(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    email = unique_email()
    name = system.stub.UpsertContact(upsert(email, last_name="Lovelace")).contact.name
    contact = assert_eventually(
        lambda: (
            (c := system.stub.GetContact(pb.GetContactRequest(name=name)).contact).HasField(
                "last_sync_time"
            )
            and c
        )
    )
    assert contact.external_id
    assert len(provider.profile_writes(email)) == 1
    assert provider.synced_value(email, "last_name", "Lovelace")
    # The contact's own row (its welcome enrolment has one of its own).
    outbox = system.sql(
        "SELECT status FROM marketing_outbox WHERE contact_key = :k AND kind = 'contact.upserted'",
        k=email_key(email),
    )
    assert [row.status for row in outbox] == ["COMPLETED"]
