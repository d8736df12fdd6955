"""Provider errors. Whether to retry is a property of the type, not a string match.

ProviderError
├── RetryableProviderError   network errors, timeouts, 429, 5xx: try again later
│                            (`retry_after` carries the provider's Retry-After, if any)
└── PermanentProviderError   other 4xx, validation: retrying cannot help
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatcher.providers.base import RateBucket

# The `code` of a refusal a provider client recognised as its rate limit whatever its status
# (ActiveCampaign's bulk import answers 400): the gate treats it as a 429.
RATE_LIMITED = "rate_limited"


class ProviderError(Exception):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableProviderError(ProviderError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
        buckets: Sequence[RateBucket] = (),
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after
        # The rate buckets a throttled answer stands for, when the provider knows them
        # better than "every bucket the request drew from".
        self.buckets = tuple(buckets)


class PermanentProviderError(ProviderError):
    """`item_indexes` names the items of a bulk call the provider blamed, when it said."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        item_indexes: tuple[int, ...] = (),
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.item_indexes = item_indexes
