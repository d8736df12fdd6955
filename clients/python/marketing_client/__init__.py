"""Async Python client of the marketing automation service (marketing.v1)."""

from marketing_client.client import DEFAULT_TIMEOUT_S, MarketingClient, RetryPolicy, Tls
from marketing_client.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    MarketingError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from marketing_client.plaintext import PlaintextTokenWarning

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "MarketingClient",
    "MarketingError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlaintextTokenWarning",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Tls",
    "UnauthenticatedError",
    "UnavailableError",
]
