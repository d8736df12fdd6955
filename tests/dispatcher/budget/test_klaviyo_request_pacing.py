"""Klaviyo's calls that make several requests (import_status with its import-error pages,
read_person with its lists) through the gate, on the shared budget (real nats-server) and
the sandbox with Klaviyo's limits over HTTP, all on one virtual clock: every request is
stamped in its own endpoint's bucket right before it leaves, and none beyond its windows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget
from dispatcher.budget.log import BucketLog, horizon_s
from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.base import (
    IMPORT_STATUS,
    READ_PERSON,
    ImportContact,
    ImportStatus,
    Profile,
    ProviderPerson,
)
from dispatcher.providers.klaviyo import imports
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import IMPORT_ERRORS, LIMITS
from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.budget.helpers import (
    EPOCH0,
    budget_kv,
    most_in_fixed_windows,
    run_on_clock,
)
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.virtual_clock import VirtualClock
from tests.processes import NatsServer

MARGIN_S = 0.1
LIST = "NEWS01"
# KV keys of the buckets (`<account>.<bucket name, key-safe>`).
IMPORT_ERRORS_KEY = "profile-bulk-import-jobs__id__import-errors"
IMPORT_JOB_KEY = "profile-bulk-import-jobs__id_"


class Noted(httpx.AsyncHTTPTransport):
    """Notes each request's path, answer and virtual time (which stands still during I/O)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.sent: list[tuple[str, int, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        when = self.clock.now
        response = await super().handle_async_request(request)
        self.sent.append((request.url.path, response.status_code, when))
        return response

    def times(self, path_end: str) -> list[float]:
        """Epoch times of the requests to a path ending so (a next page's has a "/" more)."""
        return sorted(EPOCH0 + t for path, _, t in self.sent if path.rstrip("/").endswith(path_end))


class Replica:
    """A Klaviyo client paced by its gate, on the shared budget of `account`."""

    def __init__(self, kv: KeyValue, account: str, sandbox: Sandbox, clock: VirtualClock) -> None:
        self.noted = Noted(clock)
        self.client = KlaviyoClient(
            API_KEY, base_url=sandbox.base_url, transport=self.noted, sleep=clock.sleep
        )
        self.gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        self.gate.share(
            SharedBudget(
                kv,
                account,
                LIMITS,
                margin_s=MARGIN_S,
                epoch=lambda: EPOCH0 + clock.now,
                sleep=clock.sleep,
            )
        )
        self.client.pace_requests(self.gate.pace)  # as the Dispatcher does

    async def import_status(self, job_id: str) -> ImportStatus:
        return await self.gate.call(IMPORT_STATUS, 1, lambda: self.client.import_status(job_id))

    async def read_person(self, email: str) -> ProviderPerson | None:
        return await self.gate.call(READ_PERSON, 1, lambda: self.client.read_person(email, LIST))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sandbox(clock: VirtualClock) -> Iterator[Sandbox]:
    with start_sandbox(
        api_key=API_KEY, clock=lambda: EPOCH0 + clock.now, import_processing_s=0
    ) as started:
        yield started


async def _log(kv: KeyValue, account: str, key: str) -> BucketLog:
    entry = await kv.get(f"{account}.{key}")
    return BucketLog.decode(entry.value)


async def _failed_job(sandbox: Sandbox, count: int) -> str:
    """A finished job whose `count` profiles were all refused (started unpaced)."""
    contacts = [ImportContact(Profile(email=f"not-an-email-{i}")) for i in range(count)]
    async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as client:
        return await client.start_import(contacts)


def test_every_page_of_import_errors_is_stamped_in_its_own_bucket_within_its_windows(
    own_nats: NatsServer, sandbox: Sandbox, clock: VirtualClock
) -> None:
    """Two replicas read a job of 8,000 import errors each at once: 160 pages, more than
    the import-errors endpoint's 150 a minute. Each page has its stamp, the job's GET
    one in the job's bucket, and the sandbox refuses none."""
    account = f"test-{uuid.uuid4().hex[:8]}"
    errors_per_job = 8_000

    async def main() -> tuple[list[Replica], list[ImportStatus], BucketLog, BucketLog]:
        jobs = [await _failed_job(sandbox, errors_per_job) for _ in range(2)]
        async with budget_kv(own_nats.url) as kv:
            replicas = [Replica(kv, account, sandbox, clock) for _ in jobs]
            tasks = [
                asyncio.create_task(replica.import_status(job))
                for replica, job in zip(replicas, jobs, strict=True)
            ]
            await run_on_clock(clock, tasks)
            for replica in replicas:
                await replica.client.aclose()
            return (
                replicas,
                [task.result() for task in tasks],
                await _log(kv, account, IMPORT_ERRORS_KEY),
                await _log(kv, account, IMPORT_JOB_KEY),
            )

    replicas, statuses, errors_log, job_log = asyncio.run(main())
    assert [len(status.failures) for status in statuses] == [errors_per_job] * 2
    assert {status for replica in replicas for _, status, _ in replica.noted.sent} == {200}
    pages = sorted(t for replica in replicas for t in replica.noted.times("/import-errors"))
    assert len(pages) == 2 * errors_per_job // imports.ERRORS_PAGE_SIZE
    # As the sandbox counts them (epoch-aligned): Klaviyo's seconds are counted on the
    # clock, and its answers tell the budget where its minutes begin.
    assert most_in_fixed_windows(pages, 1.0) <= 10
    assert most_in_fixed_windows(pages, 60.0) <= 150
    assert pages[-1] - pages[0] > 60, "the minute's window held the last pages back"
    # One stamp per page, at the time it left (the log keeps what its windows can see).
    seen = [t for t in pages if t > pages[-1] - horizon_s(IMPORT_ERRORS[0], MARGIN_S)]
    assert list(errors_log.stamps) == pytest.approx(seen)
    assert len(job_log.stamps) == 2


def test_read_person_stamps_its_profiles_and_lists_requests_each_in_its_own_bucket(
    own_nats: NatsServer, sandbox: Sandbox, clock: VirtualClock
) -> None:
    """Nine reads at once, five of people Klaviyo does not hold: nine profile requests,
    four lists requests (3 a second), each stamped when it left; a read that finds no
    one takes nothing of the lists endpoint's budget."""
    members = [f"member-{i}@example.com" for i in range(4)]
    strangers = [f"stranger-{i}@example.com" for i in range(5)]
    with httpx.Client(base_url=sandbox.base_url) as http:
        for email in members:
            http.post("/_sandbox/profiles", json={"email": email, "lists": [LIST]})
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Replica, list[ProviderPerson | None], BucketLog, BucketLog]:
        async with budget_kv(own_nats.url) as kv:
            replica = Replica(kv, account, sandbox, clock)
            tasks = [
                asyncio.create_task(replica.read_person(email)) for email in members + strangers
            ]
            await run_on_clock(clock, tasks)
            await replica.client.aclose()
            return (
                replica,
                [task.result() for task in tasks],
                await _log(kv, account, "profiles"),
                await _log(kv, account, "profiles__id__lists"),
            )

    replica, people, profiles_log, lists_log = asyncio.run(main())
    found = people[: len(members)]
    assert all(person is not None and person.newsletter_member for person in found)
    assert people[len(members) :] == [None] * len(strangers)
    assert {status for _, status, _ in replica.noted.sent} == {200}
    lists = replica.noted.times("/lists")
    assert len(lists) == len(members) and most_in_fixed_windows(lists, 1.0) <= 3
    assert list(lists_log.stamps) == pytest.approx(lists)
    profiles = replica.noted.times("/api/profiles")
    assert len(profiles) == len(members) + len(strangers)
    assert list(profiles_log.stamps) == pytest.approx(profiles)
