"""A person's key on the bus, shared by the service and the dispatcher: the
service puts it in `Delivery.contact_key` (bus.proto), the dispatcher fences
the person under it. Written once so the two cannot drift."""

from __future__ import annotations

import hashlib


def person_key(normalized_email: str) -> str:
    """The key of a person from their normalised email (trimmed, lowercased):
    its SHA-256, in hex (no email in a KV key or a log)."""
    return hashlib.sha256(normalized_email.encode()).hexdigest()
