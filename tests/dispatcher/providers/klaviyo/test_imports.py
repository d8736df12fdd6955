"""Klaviyo's bulk profile import (full contact sync) against the real sandbox over
HTTP: the job body, its status, and its import errors read back page by page."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.providers.base import ImportContact, ImportStatus, Profile
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo import imports
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import with_client
from tests.harness import eventually

JOBS = "/api/profile-bulk-import-jobs"


def stored_profile(sandbox: Sandbox, email: str) -> dict[str, Any] | None:
    """The profile the account holds for `email`, once the jobs due have applied."""
    sandbox.state.settle()
    return sandbox.state.profiles.find("email", email)


def _contacts(*emails: str) -> list[ImportContact]:
    return [ImportContact(Profile(email=email, first_name="Ada")) for email in emails]


async def _finished(client: KlaviyoClient, job_id: str) -> ImportStatus:
    async def done() -> ImportStatus | None:
        status = await client.import_status(job_id)
        return status if status.done else None

    # Within the endpoint's 10 calls a second (the sandbox enforces it).
    return await eventually(done, interval_s=0.2)


def _import(sandbox: Sandbox, contacts: list[ImportContact]) -> tuple[str, ImportStatus]:
    async def run(client: KlaviyoClient) -> tuple[str, ImportStatus]:
        job_id = await client.start_import(contacts)
        return job_id, await _finished(client, job_id)

    return with_client(sandbox, run)


def test_a_job_carries_the_profiles_as_profile_import_does_and_no_consent(
    sandbox: Sandbox,
) -> None:
    profile = Profile(
        email="ada@example.com",
        external_id="user-1",
        phone="+447700900123",
        first_name="Ada",
        location="London, UK",
        properties={"loyalty_tier": "gold"},
    )
    job_id, status = _import(sandbox, [ImportContact(profile), *_contacts("bob@example.com")])

    (request,) = sandbox.requests(JOBS)
    assert request["body"] == {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "ada@example.com",
                                "phone_number": "+447700900123",
                                "external_id": "user-1",
                                "first_name": "Ada",
                                "properties": {"loyalty_tier": "gold", "location": "London, UK"},
                            },
                        },
                        {
                            "type": "profile",
                            "attributes": {"email": "bob@example.com", "first_name": "Ada"},
                        },
                    ]
                }
            },
        }
    }
    assert status == ImportStatus(job_id, done=True, total=2, completed=2, failed=0)
    stored = stored_profile(sandbox, "ada@example.com")
    assert stored is not None and stored["first_name"] == "Ada"


def test_the_status_is_not_done_while_the_job_runs() -> None:
    async def run(client: KlaviyoClient) -> ImportStatus:
        return await client.import_status(await client.start_import(_contacts("ada@example.com")))

    # A job that takes an hour: a loaded machine cannot make it look finished.
    with start_sandbox(import_processing_s=3600) as slow:
        status = with_client(slow, run)
    assert not status.done and status.total == 1 and status.failures == ()


def test_every_refused_profile_is_read_back_by_email_across_pages(sandbox: Sandbox) -> None:
    bad = [f"not-an-email-{i}" for i in range(150)]  # two pages of import errors
    job_id, status = _import(sandbox, _contacts("ada@example.com", *bad))

    assert (status.total, status.completed, status.failed) == (151, 1, 150)
    assert sorted(f.email for f in status.failures) == sorted(bad)
    assert all(f.reason for f in status.failures)
    errors = [r for r in sandbox.requests() if r["path"].startswith(imports.errors_path(job_id))]
    assert len(errors) == 2, "a page of 100, then the rest"


def test_a_body_over_five_megabytes_is_refused_before_sending_naming_no_one(
    sandbox: Sandbox,
) -> None:
    big = {"notes": "x" * 1000}
    contacts = [
        ImportContact(Profile(email=f"p{i}@example.com", properties=big)) for i in range(6000)
    ]
    with pytest.raises(PermanentProviderError) as refused:
        with_client(sandbox, lambda c: c.start_import(contacts))
    assert refused.value.code == "too_large" and refused.value.item_indexes == ()
    assert sandbox.requests(JOBS) == []


def test_more_profiles_than_a_job_takes_is_a_caller_bug(sandbox: Sandbox) -> None:
    contacts = _contacts(*(f"p{i}@example.com" for i in range(10_001)))
    with pytest.raises(ValueError, match="at most 10000"):
        with_client(sandbox, lambda c: c.start_import(contacts))


def test_a_refusal_of_the_job_names_the_profile_it_points_at(sandbox: Sandbox) -> None:
    sandbox.add_fault(
        path=JOBS, status=400, pointer="/data/attributes/profiles/data/1/attributes/email"
    )
    with pytest.raises(PermanentProviderError) as refused:
        with_client(sandbox, lambda c: c.start_import(_contacts("a@example.com", "b@example.com")))
    assert refused.value.item_indexes == (1,)


def test_an_unknown_job_is_a_permanent_error_of_a_get(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentProviderError, match=r"GET .*/nope") as refused:
        with_client(sandbox, lambda c: c.import_status("nope"))
    assert refused.value.status == 404


def _job(status: str, **counts: int) -> dict[str, Any]:
    return {
        "data": {"type": imports.JOB_TYPE, "id": "j1", "attributes": {"status": status, **counts}}
    }


def test_a_cancelled_job_is_done_and_a_processing_one_is_not() -> None:
    assert imports.status(_job("cancelled", total_count=3, completed_count=1)).done
    assert not imports.status(_job("processing")).done


@pytest.mark.parametrize(
    "document", [{}, {"data": []}, {"data": {"id": "j1"}}, {"data": {"attributes": {}}}]
)
def test_a_document_that_is_no_job_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        imports.status(document)


def test_an_import_error_without_an_email_is_left_out() -> None:
    page = {
        "data": [
            {"attributes": {"code": "invalid", "detail": "bad", "original_payload": {}}},
            {"attributes": {"code": "invalid", "original_payload": {"email": "a@b.c"}}},
            {"attributes": {"original_payload": {"attributes": {"email": "d@e.f"}}}},
        ],
        "links": {"next": None},
    }
    found, following = imports.failures(page)
    assert [(f.email, f.reason) for f in found] == [("a@b.c", "invalid"), ("d@e.f", "refused")]
    assert following is None


def test_a_throttled_page_of_import_errors_is_waited_out_and_the_paging_goes_on(
    sandbox: Sandbox,
) -> None:
    bad = [f"not-an-email-{i}" for i in range(150)]
    waits: list[float] = []

    async def note(seconds: float) -> None:
        waits.append(seconds)

    async def run(client: KlaviyoClient) -> ImportStatus:
        job_id = await client.start_import(_contacts(*bad))
        status = await _finished(client, job_id)  # reads both pages once
        sandbox.add_fault(path=imports.errors_path(job_id), status=429, retry_after=2)
        again = await client.import_status(job_id)
        assert again == status
        return again

    status = with_client(sandbox, run, sleep=note)
    assert len(status.failures) == 150
    assert waits == [2.0], "the throttled page waited out once, by the injected sleep"
    pages = [r for r in sandbox.requests() if "/import-errors" in r["path"]]
    assert len(pages) == 4, "each of the two pages read twice; the throttled one not counted"


def test_an_empty_import_job_is_a_caller_bug(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="at least one"):
        with_client(sandbox, lambda c: c.start_import([]))
