"""`marketing-service sync-contacts` against a real service (PostgreSQL,
nats-server, its bus workers), the test answering for the dispatcher: the
progress it shows and its summary, following a running sync, and Ctrl-C
leaving the sync running."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from marketing.v1 import service_pb2 as pb
from marketing_client import FailedPreconditionError, MarketingClient
from marketing_runtime import topology
from rich.console import Console

from service.api.sync_command import SyncFollower
from tests.builders import upsert
from tests.harness import ServiceHarness, assert_eventually, own_database, unique_email
from tests.processes import NatsServer
from tests.service.contact_sync.sync_bus import SyncBus, imported, sync_bus

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service(database_url: str, nats: NatsServer) -> Iterator[tuple[ServiceHarness, str]]:
    with own_database(database_url, "synccli") as url, ServiceHarness.start(url, nats.url) as s:
        for _ in range(30):
            s.stub.UpsertContact(upsert(unique_email(), first_name="Ada"))
        yield s, url


async def _answer_one_chunk(bus: SyncBus, refuse: int) -> None:
    """Take the sync's one chunk and report it, `refuse` people refused."""
    (chunk,) = await bus.take_chunks(1)
    failures = [(c.profile.email, "Invalid email") for c in chunk.contacts[:refuse]]
    assert bus.bus.js is not None
    result = imported(chunk, failures=failures)
    await bus.bus.js.publish(topology.SYNC_RESULTS_SUBJECT, result.SerializeToString())


async def _follow(harness: ServiceHarness, console: Console) -> str:
    async with MarketingClient(harness.address, token=harness.token) as client:
        sync = await SyncFollower(client, console, poll_s=0.05).run()
    return str(sync.name)


def test_it_starts_a_sync_and_shows_its_progress_to_the_end(
    service: tuple[ServiceHarness, str], nats: NatsServer
) -> None:
    harness, url = service
    out = io.StringIO()

    async def scenario() -> str:
        async with sync_bus(url, nats.url) as bus:
            name, _ = await asyncio.gather(
                _follow(harness, Console(file=out, width=150)), _answer_one_chunk(bus, refuse=2)
            )
            return name

    name = asyncio.run(scenario())
    shown = out.getvalue()
    assert f"Started {name} of 30 contacts" in shown
    assert "28/30" in shown or "30/30" in shown  # done = imported + failed
    assert "errors: 2" in shown
    assert f"{name} SUCCEEDED: 28 imported, 2 failed of 30" in shown


def test_it_follows_the_sync_that_is_running(
    service: tuple[ServiceHarness, str], nats: NatsServer
) -> None:
    harness, url = service
    running = harness.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    out = io.StringIO()

    async def scenario() -> str:
        async with sync_bus(url, nats.url) as bus:
            name, _ = await asyncio.gather(
                _follow(harness, Console(file=out, width=150)), _answer_one_chunk(bus, refuse=0)
            )
            return name

    assert asyncio.run(scenario()) == running.name
    assert f"A sync is running already: following {running.name}" in out.getvalue()


def test_ctrl_c_leaves_the_sync_running_and_says_how_to_cancel(
    service: tuple[ServiceHarness, str],
) -> None:
    harness, _ = service
    env = {
        **os.environ,
        "MARKETING_API_ADDRESS": harness.address,
        "MARKETING_API_TOKEN": harness.token,
        "MARKETING_API_POLL_S": "0.1",
    }
    command = subprocess.Popen(
        [sys.executable, "-m", "service.main", "sync-contacts"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        name = assert_eventually(
            lambda: harness.scalar(
                "SELECT id::text FROM marketing_contact_sync WHERE state = 'RUNNING'"
            )
        )
        command.send_signal(signal.SIGINT)
        shown, _ = command.communicate(timeout=30)
    finally:
        command.kill()
    assert command.returncode == 130, shown
    said = " ".join(shown.split())  # as wrapped to the terminal's width
    assert f"contactSyncs/{name} keeps running" in said
    assert f'CancelContactSync {{"name": "contactSyncs/{name}"}}' in said
    assert harness.scalar("SELECT state::text FROM marketing_contact_sync") == "RUNNING"


def test_the_python_client_cancels_a_sync_and_lists_its_errors(
    service: tuple[ServiceHarness, str],
) -> None:
    harness, _ = service

    async def scenario() -> None:
        async with MarketingClient(harness.address, token=harness.token) as client:
            request_id = "3f2c5a0e-8f0b-4d8e-9a53-1f1c7c2b9e11"
            sync = await client.start_contact_sync(request_id=request_id)
            again = await client.start_contact_sync(request_id=request_id)
            assert again.name == sync.name
            with pytest.raises(FailedPreconditionError) as running:
                await client.start_contact_sync()
            assert running.value.reason == "CONTACT_SYNC_RUNNING"
            cancelled = await client.cancel_contact_sync(sync.name)
            assert cancelled.HasField("cancel_time")
            errors = await client.list_contact_sync_errors(sync.name, page_size=10)
            assert list(errors.errors) == [] and errors.next_page_token == ""
            listed = await client.list_contact_syncs(page_size=1)
            assert [s.name for s in listed.contact_syncs] == [sync.name]
            assert (await client.get_contact_sync(sync.name)).cancel_time == cancelled.cancel_time

    asyncio.run(scenario())
