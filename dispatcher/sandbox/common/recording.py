"""One recorded request, encoded for GET /_sandbox/requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    seq: int
    method: str
    path: str
    received_at: str
    headers: dict[str, str]
    body: bytes  # JSON text, spliced into answers without re-encoding (b"" for none)
    extra: tuple[tuple[str, Any], ...] = ()  # more fields a sandbox records (query, ...)

    def to_json(self) -> bytes:
        head = json.dumps(
            {
                "seq": self.seq,
                "method": self.method,
                "path": self.path,
                "received_at": self.received_at,
                "headers": self.headers,
                **dict(self.extra),
            }
        ).encode()
        return b"".join((head[:-1], b',"body":', self.body or b"null", b"}"))
