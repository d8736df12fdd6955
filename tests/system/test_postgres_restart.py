"""A PostgreSQL restart under consent traffic: callers get only OK or UNAVAILABLE
(with RetryInfo), and once they have retried, our state and the provider's
follow the last acknowledged operation of each person.

The database here is the test's own (it is stopped and started), and so are
NATS and the dispatcher, so no other test's service sees the restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from marketing.v1 import service_pb2 as pb

from service.storage import migrate
from tests.consent_model import ConsentState
from tests.harness import ServiceHarness, assert_eventually
from tests.processes import NatsServer, RestartablePostgres
from tests.system.consent_traffic import ConsentTraffic
from tests.system.provider_state import ProviderConsent, SystemProvider

# Acknowledged operations to wait for before the restart and after it, so the
# traffic demonstrably runs into the restart and through it.
BEFORE, AFTER = 40, 40
# Calls refused while the database is down, before it is started again.
REFUSED_WHILE_DOWN = 8


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    server = RestartablePostgres(tmp_path_factory.mktemp("pg-restart"))
    migrate.upgrade(server.url)
    yield server
    server.close()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def _restart_under(traffic: ConsentTraffic, postgres: RestartablePostgres) -> None:
    assert_eventually(lambda: traffic.acknowledged_count() >= BEFORE, timeout_s=60)
    postgres.stop()
    # While it is down every call is refused: wait for some, then start it.
    refused_before = traffic.seen("UNAVAILABLE")
    assert_eventually(
        lambda: traffic.seen("UNAVAILABLE") >= refused_before + REFUSED_WHILE_DOWN, timeout_s=60
    )
    postgres.start()
    resumed = traffic.acknowledged_count()
    assert_eventually(lambda: traffic.acknowledged_count() >= resumed + AFTER, timeout_s=120)
    traffic.stop()


def _ours(harness: ServiceHarness, email: str) -> ConsentState:
    contact = harness.stub.GetContact(pb.GetContactRequest(email=email)).contact
    return ConsentState.of_contact(contact)


def _assert_only_ok_or_unavailable(traffic: ConsentTraffic) -> None:
    assert traffic.wrong == [], traffic.wrong[:10]
    assert set(traffic.codes) <= {"OK", "UNAVAILABLE"}, traffic.codes
    assert traffic.codes["UNAVAILABLE"] >= REFUSED_WHILE_DOWN


def test_restart_answers_unavailable_and_loses_no_acknowledged_change(
    postgres: RestartablePostgres,
) -> None:
    with ServiceHarness.start(postgres.url) as service:
        traffic = ConsentTraffic(service, seed=1).start()
        try:
            _restart_under(traffic, postgres)
        finally:
            traffic.stop()
        _assert_only_ok_or_unavailable(traffic)
        assert {email: _ours(service, email) for email in traffic.expected} == traffic.expected


def test_restart_under_traffic_leaves_the_provider_at_the_last_acknowledged_state(
    postgres: RestartablePostgres, own_nats: NatsServer, provider: SystemProvider
) -> None:
    dispatcher = provider.dispatcher(own_nats.url).start()
    try:
        with ServiceHarness.start(postgres.url, own_nats.url) as service:
            traffic = ConsentTraffic(service, seed=2).start()
            try:
                _restart_under(traffic, postgres)
            finally:
                traffic.stop()
            _assert_only_ok_or_unavailable(traffic)
            ours = {email: _ours(service, email) for email in traffic.expected}
            assert ours == traffic.expected
            wanted = {email: provider.expected(state) for email, state in ours.items()}

            def disagreements() -> dict[str, tuple[ProviderConsent, ProviderConsent]]:
                found = {e: (w, provider.consent(e)) for e, w in wanted.items()}
                return {e: pair for e, pair in found.items() if pair[0] != pair[1]}

            try:
                assert_eventually(lambda: not disagreements(), timeout_s=60)
            except AssertionError:
                # email -> (what our state asks of the provider, what it has)
                raise AssertionError(f"provider disagrees: {disagreements()}") from None
    finally:
        dispatcher.stop()
