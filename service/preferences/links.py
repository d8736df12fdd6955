"""Signed, expiring, per-recipient links to a person's preference page.

A link is `{base_url}/preferences/{token}`; the token is the contact's id signed
with the service's key and stamped with its making time (itsdangerous'
URLSafeTimedSerializer: HMAC-SHA1 over the payload and the time, checked in
constant time). It is good for `max_age_s` after it was made: a forged, edited or
expired token names nobody, and the page then changes nothing."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

PATH = "/preferences/"
_SALT = "marketing.preferences.v1"  # bumped if the payload changes: old links then fail


class LinkProblem(enum.Enum):
    FORGED = "forged"  # not signed with our key, or edited
    EXPIRED = "expired"  # ours, but older than max_age_s


@dataclass(frozen=True)
class Resolved:
    contact_id: uuid.UUID | None
    problem: LinkProblem | None


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer on our clock (tests move it)."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class PreferenceLinks:
    def __init__(
        self, key: str, base_url: str, max_age_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._signer = URLSafeTimedSerializer(
            key, salt=_SALT, signer=_ClockedSigner, signer_kwargs={"clock": clock}
        )
        self._base = base_url.rstrip("/")
        self.max_age_s = max_age_s

    def url_for(self, contact_id: uuid.UUID) -> str:
        return f"{self._base}{PATH}{self.token_for(contact_id)}"

    def token_for(self, contact_id: uuid.UUID) -> str:
        token: str = self._signer.dumps(contact_id.hex)
        return token

    def resolve(self, token: str) -> Resolved:
        """Whose page a token opens, or why it opens none."""
        try:
            payload = self._signer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            return Resolved(None, LinkProblem.EXPIRED)
        except BadSignature:
            return Resolved(None, LinkProblem.FORGED)
        try:
            return Resolved(uuid.UUID(hex=str(payload)), None)
        except ValueError:  # signed by us but not a contact id: a token of another use
            return Resolved(None, LinkProblem.FORGED)
