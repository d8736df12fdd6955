"""The service's error hierarchy, shared by the domain and storage layers.

    MarketingError
    ├── InvalidArgumentError   bad input; carries one FieldViolation per bad field
    ├── NotFoundError          a named resource does not exist
    ├── AlreadyExistsError     a unique value is taken by another resource
    ├── FailedPreconditionError  the stored state does not allow the change
    ├── AbortedError           lost a race with a concurrent call; retryable
    ├── UnavailableError       a dependency (PostgreSQL) cannot be reached; retryable
    ├── UnauthenticatedError   the call carries no known caller's credentials
    └── PermissionDeniedError  the caller may not call this method

The gRPC layer (`service.api.errors`) translates each into a google.rpc.Status.
Nothing here knows about gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class MarketingError(Exception):
    """Base class of every error the service reports to a caller."""

    retryable = False
    # For a retryable error: how long the caller should wait, when known.
    retry_after_s: float | None = None


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: `field` is its path in the request, e.g. `events[3].email`."""

    field: str
    reason: str
    description: str


class InvalidArgumentError(MarketingError):
    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgumentError needs at least one violation")
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))


class NotFoundError(MarketingError):
    def __init__(self, *, resource_type: str, resource_name: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(f"{resource_type} {resource_name!r} not found")


class AlreadyExistsError(MarketingError):
    def __init__(self, *, field: str, description: str) -> None:
        self.field = field
        super().__init__(description)


class FailedPreconditionError(MarketingError):
    """`reason` is UPPER_SNAKE (ErrorInfo); `subject` names what the state is about."""

    def __init__(self, *, reason: str, subject: str, description: str) -> None:
        self.reason = reason
        self.subject = subject
        super().__init__(description)


class AbortedError(MarketingError):
    """A concurrent call changed what this one read; the whole call may be retried."""

    retryable = True

    def __init__(self, *, reason: str, description: str) -> None:
        self.reason = reason
        super().__init__(description)


class UnavailableError(MarketingError):
    retryable = True

    def __init__(self, *, dependency: str, detail: str, retry_after_s: float | None = None) -> None:
        self.dependency = dependency
        self.retry_after_s = retry_after_s  # as the dependency said, when it did
        super().__init__(f"{dependency} unavailable: {detail}")


class UnauthenticatedError(MarketingError):
    def __init__(self, reason: str, description: str) -> None:
        self.reason = reason  # e.g. MISSING_CREDENTIALS, UNKNOWN_TOKEN
        super().__init__(description)


class PermissionDeniedError(MarketingError):
    def __init__(self, reason: str, description: str) -> None:
        self.reason = reason  # e.g. METHOD_NOT_ALLOWED
        super().__init__(description)


class Violations:
    """Collects field violations so a request reports every bad field at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, reason: str, description: str) -> None:
        self._items.append(FieldViolation(field, reason, description))

    def extend(self, other: Violations) -> None:
        self._items.extend(other._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __repr__(self) -> str:
        return f"Violations({self._items!r})"

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgumentError(self._items)
