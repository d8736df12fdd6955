"""The webhook receiver's HTTP server: the runtime's embedded uvicorn server
(marketing_runtime.http_server), shared with the service's preference pages."""

from __future__ import annotations

from typing import Self

from marketing_runtime.http_server import EmbeddedHttpServer, split_address

__all__ = ["WebhookServer", "split_address"]

WHAT = "webhook receiver"


class WebhookServer(EmbeddedHttpServer):
    @classmethod
    def listen(cls, address: str, what: str = WHAT) -> Self:
        return super().listen(address, what)
