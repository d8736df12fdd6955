"""The Klaviyo sandbox's push tokens (served by push_routes.py): one profile each."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

PUSH_TOKENS = "/api/push-tokens"


@dataclass
class TokenRecord:
    token: str
    platform: str
    vendor: str
    enablement_status: str
    email: str | None
    phone_number: str | None
    updated: str


class PushTokenBook:
    """The account's push tokens by token: one profile each."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()

    def put(self, record: TokenRecord) -> None:
        with self._lock:
            self._tokens[record.token] = record

    def get(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token)

    def delete(self, token: str) -> bool:
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def forget(self, email: str | None, phone: str | None) -> None:
        """A deleted profile's tokens go with it."""
        with self._lock:
            for token, record in list(self._tokens.items()):
                if (email and record.email == email) or (phone and record.phone_number == phone):
                    del self._tokens[token]

    def view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(record) for record in self._tokens.values()]
