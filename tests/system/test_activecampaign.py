"""End to end with ActiveCampaign: RPC → PostgreSQL/JetStream → a dispatcher process with
MARKETING_PROVIDER=activecampaign (no credentials: its sandbox) → the ActiveCampaign sandbox,
at its real limit of 5 requests/s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.builders import placed_order, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer
from tests.system.leftovers import deliver_leftovers


@pytest.fixture(scope="module")
def activecampaign() -> Iterator[ActiveCampaignSandbox]:
    # Contact ids of their own: the system tests' other ActiveCampaign sandboxes count
    # from 1 against the same service, which would move ids between contacts (it keeps
    # each provider id on one contact, the latest the provider named).
    with start_activecampaign_sandbox(import_delay_s=0.0, first_contact_id=900_001) as running:
        yield running


@pytest.fixture(scope="module")
def ac_dispatcher(
    nats_server: NatsServer, bus_harness: ServiceHarness, activecampaign: ActiveCampaignSandbox
) -> Iterator[DispatcherProcess]:
    deliver_leftovers(bus_harness, nats_server.url)
    replica = DispatcherProcess(
        nats_server.url, activecampaign.base_url, provider="activecampaign"
    ).start()
    yield replica
    replica.stop()


@pytest.fixture
def ac_system(bus_harness: ServiceHarness, ac_dispatcher: DispatcherProcess) -> ServiceHarness:
    return bus_harness


def _event_status(system: ServiceHarness, event_id: str) -> str | None:
    return system.scalar("SELECT status FROM marketing_event_log WHERE id = :id", id=event_id)


def test_an_order_becomes_one_ecom_order(
    ac_system: ServiceHarness, activecampaign: ActiveCampaignSandbox
) -> None:
    email = unique_email()
    order = placed_order(email, order_id=f"o-{email}")

    event_id = ac_system.stub.TrackEvent(pb.TrackEventRequest(event=order)).event_id

    assert_eventually(lambda: _event_status(ac_system, event_id) == "COMPLETED")
    orders = [o for o in activecampaign.view("orders") if o["email"] == email]
    assert [(o["externalid"], o["totalPrice"]) for o in orders] == [(f"o-{email}", 1000)]


def test_a_contact_is_synced_and_an_unsubscribe_tags_it(
    ac_system: ServiceHarness, activecampaign: ActiveCampaignSandbox
) -> None:
    email = unique_email()
    name = ac_system.stub.UpsertContact(upsert(email, last_name="Lovelace")).contact.name
    synced = assert_eventually(
        lambda: (
            (c := ac_system.stub.GetContact(pb.GetContactRequest(name=name)).contact).HasField(
                "last_sync_time"
            )
            and c
        )
    )
    [contact] = activecampaign.contacts(email)
    assert synced.external_id == contact["id"]
    assert contact["lastName"] == "Lovelace"

    ac_system.stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="too_many_emails"))

    assert_eventually(lambda: activecampaign.contacts(email)[0]["tags"] == ["marketing-suppressed"])
