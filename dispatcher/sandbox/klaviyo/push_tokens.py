"""The Klaviyo sandbox's push tokens (served by push_routes.py): one profile each."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

PUSH_TOKENS = "/api/push-tokens"
# A token whose app the person has not allowed to notify them (or has stopped allowing)
# gets no push; ASSUMED for campaigns: Klaviyo sends to authorized and provisional devices.
SENDABLE = frozenset({"AUTHORIZED", "PROVISIONAL"})


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

    def devices(self) -> dict[str, str]:
        """A token the account may push to, by its profile's lower-cased email and by
        "phone:<number>" (the first one found for each): who a push campaign reaches."""
        found: dict[str, str] = {}
        with self._lock:
            for record in self._tokens.values():
                if record.enablement_status not in SENDABLE:
                    continue
                if record.email:
                    found.setdefault(record.email.lower(), record.token)
                if record.phone_number:
                    found.setdefault(f"phone:{record.phone_number}", record.token)
        return found
