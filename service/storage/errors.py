"""What a PostgreSQL failure means: the one table from SQLSTATE to the service's
errors (service.errors), applied where every transaction ends
(`Database.transaction`). The API layer then gives each its gRPC status.

Classified by SQLSTATE and exception type, never by message text. A failure
this table does not know (a syntax error, a data exception the validation
should have caught) stays what it is: a bug, reported as INTERNAL and logged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    MarketingError,
    UnavailableError,
)

DEPENDENCY = "postgresql"

# A unique constraint -> the request field whose value is taken, and what to
# tell the caller. A violation of one of these means another resource holds
# the value: the caller must choose another. Constraint names are PostgreSQL's
# defaults (<table>_<column>_key), see the migrations.
UNIQUE_FIELDS = {
    "marketing_contact_user_id_key": ("contact.user_id", "user_id belongs to another contact"),
    "marketing_consent_request_id_key": (
        "request_id",
        "request_id was already used for another contact",
    ),
    # Two CreateSegment calls at once with one id or display name: the loser's.
    "marketing_segment_pkey": ("segment_id", "the segment id is taken"),
    "marketing_segment_display_name_key": (
        "segment.display_name",
        "another segment has this display name",
    ),
}


class _Failure:
    """The parts of a driver error the table looks at."""

    def __init__(self, exc: BaseException, sqlstate: str, constraint: str) -> None:
        self.exc = exc
        self.sqlstate = sqlstate
        self.constraint = constraint


def _unavailable(f: _Failure) -> MarketingError:
    return UnavailableError(dependency=DEPENDENCY, detail=_detail(f.exc))


def _unique(f: _Failure) -> MarketingError:
    taken = UNIQUE_FIELDS.get(f.constraint)
    if taken is None:
        # A key written by two calls at once that the domain code meant to be
        # idempotent (e.g. a row keyed by email): retrying finds the winner's row.
        return _aborted(f)
    field, description = taken
    return AlreadyExistsError(field=field, description=description)


def _reference_gone(f: _Failure) -> MarketingError:
    return FailedPreconditionError(
        reason="REFERENCED_RESOURCE_GONE",
        subject=f.constraint,
        description="a resource this change refers to was removed meanwhile (e.g. erased)",
    )


def _rule_broken(f: _Failure) -> MarketingError:
    return FailedPreconditionError(
        reason="STORED_STATE_CONFLICT",
        subject=f.constraint,
        description=f"the change breaks a rule on the stored data ({_detail(f.exc)})",
    )


def _aborted(f: _Failure) -> MarketingError:
    return AbortedError(
        reason="CONCURRENT_UPDATE",
        description="a concurrent call changed the same data; retry the call",
    )


# SQLSTATE (five characters) or its class (two) -> meaning; the exact code wins.
MEANINGS: dict[str, Callable[[_Failure], MarketingError]] = {
    "08": _unavailable,  # connection exception: cannot connect, connection lost
    "53": _unavailable,  # insufficient resources: too many connections (53300), disk, memory
    "57P01": _unavailable,  # admin_shutdown: the server is stopping (fast shutdown)
    "57P02": _unavailable,  # crash_shutdown
    "57P03": _unavailable,  # cannot_connect_now: starting up or shutting down
    "57P04": _unavailable,  # database_dropped
    "23505": _unique,  # unique_violation
    "23503": _reference_gone,  # foreign_key_violation
    "23": _rule_broken,  # other integrity violations: check, not-null, exclusion, restrict
    "40": _aborted,  # transaction rollback: serialization failure, deadlock detected
    "55P03": _aborted,  # lock_not_available
}

# Failures that come without a SQLSTATE but mean the server is out of reach:
# refused or reset sockets and connect timeouts (OSError covers
# ConnectionError and TimeoutError), and no pooled connection free in time.
_UNREACHABLE_TYPES: tuple[type[BaseException], ...] = (OSError, PoolTimeoutError)


def storage_error(exc: BaseException) -> MarketingError | None:
    """The service error `exc` means, or None when it has no meaning to a caller."""
    sqlstate, constraint = _sqlstate(exc)
    meaning = MEANINGS.get(sqlstate) or MEANINGS.get(sqlstate[:2])
    if meaning is not None:
        return meaning(_Failure(exc, sqlstate, constraint))
    if _unreachable(exc):
        return _unavailable(_Failure(exc, sqlstate, constraint))
    return None


# SQLSTATE classes of a statement refused for the values it was given: 22 data
# exception (a NUL in a text, 22021; a string longer than its column, 22001; a
# number out of range), 23 integrity constraint violation. The same values fail
# the same way however often they are tried.
VALUE_CLASSES = frozenset({"22", "23"})


def refuses_values(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps: a service error keeps the driver's as its
    cause) is PostgreSQL refusing the values a statement was given."""
    sqlstate, _ = _sqlstate(exc)
    return sqlstate[:2] in VALUE_CLASSES


def sqlstate_of(exc: BaseException) -> str:
    """PostgreSQL's SQLSTATE for `exc` or what it wraps ("" for none): for logs."""
    return _sqlstate(exc)[0]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's `orig`, the dialect's `orig`, causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__]


def _sqlstate(exc: BaseException) -> tuple[str, str]:
    """The first SQLSTATE and constraint name found along the chain."""
    for cause in _causes(exc):
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            constraint = getattr(cause, "constraint_name", None)
            for inner in _causes(cause):
                constraint = constraint or getattr(inner, "constraint_name", None)
            return sqlstate, constraint if isinstance(constraint, str) else ""
    return "", ""


def _unreachable(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True  # the driver found the connection closed under it
        if isinstance(cause, _UNREACHABLE_TYPES):
            return True
    return False


def _detail(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's statement and parameters."""
    for cause in _causes(exc):
        if not isinstance(cause, DBAPIError):
            return f"{type(cause).__name__}: {cause}".splitlines()[0]
    return type(exc).__name__
