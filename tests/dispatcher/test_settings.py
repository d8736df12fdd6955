"""The dispatcher keeps copies of a few bus constants (it imports nothing new
from the service); they must stay equal to the service's."""

from __future__ import annotations

from marketing_runtime import topology

from dispatcher.settings import CONSUMER_ACK_WAIT_S, DispatcherSettings


def test_the_consumer_ack_wait_is_the_one_the_topology_declares() -> None:
    assert CONSUMER_ACK_WAIT_S == topology.ACK_WAIT_S
    assert DispatcherSettings.model_fields["event_ack_wait_s"].default == topology.ACK_WAIT_S
