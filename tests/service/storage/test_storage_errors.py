"""Storage failures reach callers with their meaning (service.storage.errors and
service.api.status_table): races on unique values, rules the database
enforces, and every SQLSTATE the table knows, raised by a real PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.api.status_table import STATUS_TABLE, status_of
from service.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    MarketingError,
    NotFoundError,
    UnavailableError,
)
from service.storage.errors import MEANINGS, storage_error
from tests.builders import upsert
from tests.harness import ServiceHarness, error_reason, field_violations, unique_email

RACERS = 8
ROUNDS = 15


def _race(harness: ServiceHarness, requests: list[Any]) -> list[grpc.StatusCode]:
    """Send the requests at the same moment from as many threads."""
    start = threading.Barrier(len(requests))

    def call(request: Any) -> grpc.StatusCode:
        start.wait()
        try:
            harness.stub.UpsertContact(request)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.ALREADY_EXISTS:
                assert field_violations(err) == {"contact.user_id": "ALREADY_EXISTS"}
                assert error_reason(err) == "ALREADY_EXISTS"
            code: grpc.StatusCode = err.code()
            return code
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(call, requests))


def test_concurrent_new_contacts_with_one_user_id(harness: ServiceHarness) -> None:
    """Different new emails, the same new user_id: one wins, every other
    call is ALREADY_EXISTS naming contact.user_id, as when they come in turn."""
    seen: Counter[grpc.StatusCode] = Counter()
    for _ in range(ROUNDS):
        user_id = f"user-{unique_email()}"
        requests = [upsert(unique_email("race"), user_id=user_id) for _ in range(RACERS)]
        codes = _race(harness, requests)
        seen.update(codes)
        assert codes.count(grpc.StatusCode.OK) == 1, codes
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS}, codes
        holders = harness.scalar(
            "SELECT count(*) FROM marketing_contact WHERE user_id = :u", u=user_id
        )
        assert holders == 1
    assert seen[grpc.StatusCode.ALREADY_EXISTS] == ROUNDS * (RACERS - 1)


def test_concurrent_upserts_of_one_new_contact_all_succeed(harness: ServiceHarness) -> None:
    """The same new email and user_id from many callers: one creates, the rest update."""
    for _ in range(ROUNDS // 3):
        email = unique_email("same")
        codes = _race(harness, [upsert(email, user_id=f"u-{email}") for _ in range(RACERS)])
        assert set(codes) == {grpc.StatusCode.OK}, codes


# --------------------------------------------------------------------------- every SQLSTATE

EXPECTED = {
    "08000": UnavailableError,  # connection_exception
    "08006": UnavailableError,  # connection_failure
    "53300": UnavailableError,  # too_many_connections
    "53100": UnavailableError,  # disk_full
    "57P01": UnavailableError,  # admin_shutdown
    "57P02": UnavailableError,  # crash_shutdown
    "57P03": UnavailableError,  # cannot_connect_now
    "57P04": UnavailableError,  # database_dropped
    "23505": AbortedError,  # unique_violation of a constraint with no field
    "23503": FailedPreconditionError,  # foreign_key_violation
    "23514": FailedPreconditionError,  # check_violation
    "23502": FailedPreconditionError,  # not_null_violation
    "23001": FailedPreconditionError,  # restrict_violation
    "23P01": FailedPreconditionError,  # exclusion_violation
    "40001": AbortedError,  # serialization_failure
    "40P01": AbortedError,  # deadlock_detected
    "55P03": AbortedError,  # lock_not_available
}


def test_every_table_entry_is_tested() -> None:
    assert {code[:2] for code in EXPECTED} >= {key[:2] for key in MEANINGS}
    assert {code for code in EXPECTED} >= {key for key in MEANINGS if len(key) == 5}


def _raise_in_postgres(harness: ServiceHarness, sqlstate: str) -> MarketingError:
    """PostgreSQL itself answers with `sqlstate`; what leaves the transaction?"""

    async def go() -> None:
        async with harness.db.transaction() as session:
            await session.execute(
                text(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$")
            )

    with pytest.raises(MarketingError) as caught:
        harness.run(go())
    return caught.value


@pytest.mark.parametrize(("sqlstate", "meaning"), sorted(EXPECTED.items()))
def test_sqlstate_has_its_meaning(
    harness: ServiceHarness, sqlstate: str, meaning: type[MarketingError]
) -> None:
    assert type(_raise_in_postgres(harness, sqlstate)) is meaning


@pytest.mark.parametrize("sqlstate", ["42601", "22003", "XX000", "P0001"])
def test_a_bug_stays_a_bug(harness: ServiceHarness, sqlstate: str) -> None:
    """Syntax errors, data exceptions past validation, internal errors: no
    meaning to the caller (INTERNAL, logged), not dressed up as one."""

    async def go() -> None:
        async with harness.db.transaction() as session:
            await session.execute(
                text(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$")
            )

    with pytest.raises(Exception) as caught:
        harness.run(go())
    assert not isinstance(caught.value, MarketingError)


def test_a_known_unique_constraint_names_its_field(harness: ServiceHarness) -> None:
    email = unique_email()
    harness.stub.UpsertContact(upsert(email, user_id=f"u-{email}"))
    with pytest.raises(AlreadyExistsError) as caught:
        harness.sql(
            "INSERT INTO marketing_contact (id, email, user_id, created_at, updated_at, "
            "custom_properties, email_opt_in, sms_opt_in, push_opt_in) VALUES "
            "(gen_random_uuid(), :e, :u, now(), now(), '{}', false, false, false)",
            e=unique_email(),
            u=f"u-{email}",
        )
    assert caught.value.field == "contact.user_id"


def test_a_missing_reference_is_a_failed_precondition(harness: ServiceHarness) -> None:
    with pytest.raises(FailedPreconditionError) as caught:
        harness.sql(
            "INSERT INTO marketing_segment_membership (contact_id, segment, added_at) "
            "VALUES (gen_random_uuid(), 'newsletter', now())"
        )
    assert caught.value.reason == "REFERENCED_RESOURCE_GONE"


@pytest.mark.parametrize(
    "exc",
    [ConnectionRefusedError(111, "refused"), TimeoutError(), PoolTimeoutError("pool")],
    ids=["refused", "connect-timeout", "pool-timeout"],
)
def test_unreachable_without_a_sqlstate_is_unavailable(exc: Exception) -> None:
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = exc
    for failure in (exc, wrapped):
        assert isinstance(storage_error(failure), UnavailableError)


def test_other_failures_have_no_meaning() -> None:
    assert storage_error(ValueError("bug")) is None
    assert storage_error(KeyError("bug")) is None


# --------------------------------------------------------------------------- gRPC statuses


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (
            NotFoundError(resource_type="contact", resource_name="x"),
            "NOT_FOUND",
            "CONTACT_NOT_FOUND",
        ),
        (
            AlreadyExistsError(field="contact.user_id", description="d"),
            "ALREADY_EXISTS",
            "ALREADY_EXISTS",
        ),
        (
            FailedPreconditionError(reason="STORED_STATE_CONFLICT", subject="c", description="d"),
            "FAILED_PRECONDITION",
            "STORED_STATE_CONFLICT",
        ),
        (AbortedError(reason="CONCURRENT_UPDATE", description="d"), "ABORTED", "CONCURRENT_UPDATE"),
        (
            UnavailableError(dependency="postgresql", detail="d"),
            "UNAVAILABLE",
            "POSTGRESQL_UNAVAILABLE",
        ),
        (MarketingError("bug"), "INTERNAL", "INTERNAL"),
    ],
)
def test_status_of_each_error(error: MarketingError, code: str, reason: str) -> None:
    grpc_code, status = status_of(error)
    assert grpc_code.name == code and status.code == grpc_code.value[0]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert (info.reason, info.domain) == (reason, "marketing.v1")
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retry) == (1 if error.retryable else 0), "RetryInfo exactly when retryable"


def test_every_error_class_has_a_row() -> None:
    def subclasses(cls: type[MarketingError]) -> set[type[MarketingError]]:
        direct = set(cls.__subclasses__())
        return direct.union(*(subclasses(c) for c in direct))

    from service.errors import InvalidArgumentError  # built in service.api.errors

    assert subclasses(MarketingError) - {InvalidArgumentError} <= set(STATUS_TABLE)
