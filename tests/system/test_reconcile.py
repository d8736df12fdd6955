"""ReconcileContact end to end: the service asks a dispatcher process over NATS, the
dispatcher reads the sandbox, drift planted there is reported, the repair the service
queues reaches the sandbox through the outbox, and a second reconcile finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from service.common.validation import email_key
from tests.builders import upsert
from tests.harness import ServiceHarness, assert_eventually, error_reason, unique_email
from tests.processes import DispatcherProcess, NatsServer

LIST = "NEWS01"


@pytest.fixture(scope="module")
def dispatcher(nats_server: NatsServer, sandbox: Sandbox) -> Iterator[DispatcherProcess]:
    """A replica that also reads newsletter membership (a list is configured)."""
    replica = DispatcherProcess(nats_server.url, sandbox.base_url, newsletter_list_id=LIST).start()
    yield replica
    replica.stop()


def outbox_statuses(system: ServiceHarness, email: str) -> set[str]:
    rows = system.sql(
        "SELECT status FROM marketing_outbox WHERE contact_key = :key", key=email_key(email)
    )
    return {str(status) for (status,) in rows}


def delivered(system: ServiceHarness, email: str) -> bool:
    statuses = outbox_statuses(system, email)
    assert "FAILED" not in statuses
    return statuses == {"COMPLETED"}


def reconcile(system: ServiceHarness, email: str) -> pb.ReconcileContactResponse:
    # The first call may come before the dispatcher has subscribed: it then answers UNAVAILABLE.
    def attempt() -> pb.ReconcileContactResponse | None:
        try:
            return system.stub.ReconcileContact(pb.ReconcileContactRequest(email=email))
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None

    return assert_eventually(attempt)


def differences(response: pb.ReconcileContactResponse) -> dict[str, tuple[Any, Any]]:
    return {
        d.field: (MessageToDict(d.ours), MessageToDict(d.provider)) for d in response.differences
    }


def plant(provider: Sandbox, email: str, **drift: Any) -> dict[str, Any]:
    answer = httpx.post(f"{provider.base_url}/_sandbox/profiles", json={"email": email, **drift})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def provider_view(provider: Sandbox, email: str) -> dict[str, Any]:
    (profile,) = httpx.get(f"{provider.base_url}/_sandbox/profiles", params={"email": email}).json()
    return profile


def test_drift_is_reported_repaired_and_then_gone(system: ServiceHarness, klaviyo: Sandbox) -> None:
    email = unique_email("reconcile")
    stub = system.stub
    name = stub.UpsertContact(
        upsert(email, first_name="Ada", custom_properties={"vip": True})
    ).contact.name
    stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="footer_form"))
    assert_eventually(lambda: delivered(system, email))

    in_sync = reconcile(system, email)
    assert (in_sync.name, list(in_sync.differences), in_sync.repair_queued) == (name, [], False)
    assert in_sync.provider_id

    # Someone edits the person at the provider: a name, a property, unsubscribed, off the list.
    held = plant(klaviyo, email, first_name="Augusta", consent={"email": "UNSUBSCRIBED"}, lists=[])
    plant(klaviyo, email, properties={**held["attributes"]["properties"], "vip": False})

    drift = reconcile(system, email)
    assert differences(drift) == {
        "first_name": ("Ada", "Augusta"),
        "custom_properties.vip": (True, False),
        "email_opt_in": (True, False),
        "newsletter_member": (True, False),
    }
    assert drift.repair_queued and drift.provider_id == in_sync.provider_id
    # The unsubscribe only the provider holds is not re-granted: the profile alone is repaired.
    assert {d.field: d.repair_queued for d in drift.differences} == {
        "first_name": True,
        "custom_properties.vip": True,
        "email_opt_in": False,
        "newsletter_member": False,
    }
    assert all(d.note for d in drift.differences if not d.repair_queued)

    assert_eventually(lambda: delivered(system, email))
    repaired = provider_view(klaviyo, email)
    assert repaired["subscriptions"]["email"]["marketing"]["consent"] == "UNSUBSCRIBED"
    assert LIST not in repaired["lists"]
    again = reconcile(system, email)
    assert differences(again).keys() == {"email_opt_in", "newsletter_member"}
    assert not again.repair_queued


def test_a_person_the_provider_never_received_is_created(
    system: ServiceHarness, klaviyo: Sandbox
) -> None:
    # The provider refuses the profile for good: the delivery is given up on (dead-lettered).
    httpx.post(
        f"{klaviyo.base_url}/_sandbox/faults",
        json={"path": "/api/profile-import", "status": 400, "times": 1},
    )
    email = unique_email("reconcile")
    system.stub.UpsertContact(upsert(email, first_name="Grace", custom_properties={"n": 1}))
    assert_eventually(lambda: outbox_statuses(system, email) == {"FAILED"})

    lost = reconcile(system, email)
    assert lost.provider_id == ""
    assert {"first_name", "custom_properties.n"} <= differences(lost).keys()
    assert lost.repair_queued
    assert_eventually(lambda: outbox_statuses(system, email) == {"FAILED", "COMPLETED"})
    again = reconcile(system, email)
    assert again.provider_id and list(again.differences) == []


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (503, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE"),
        (403, grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_REFUSED"),
    ],
)
def test_provider_errors_have_clear_statuses(
    system: ServiceHarness, klaviyo: Sandbox, status: int, code: grpc.StatusCode, reason: str
) -> None:
    email = unique_email("reconcile")
    system.stub.UpsertContact(upsert(email, first_name="Ada"))
    reconcile(system, email)  # a dispatcher is answering
    httpx.post(
        f"{klaviyo.base_url}/_sandbox/faults", json={"path": "/api/profiles", "status": status}
    )
    with pytest.raises(grpc.RpcError) as raised:
        system.stub.ReconcileContact(pb.ReconcileContactRequest(email=email))
    assert raised.value.code() == code
    assert f"HTTP {status}" in (raised.value.details() or "")
    assert error_reason(raised.value) == reason
