"""`make up`: the whole system on one machine, for trying it out and for demos.

Starts an embedded PostgreSQL (pgserver) in `.data/` unless
MARKETING_DATABASE_URL points at one, migrates it, runs the service as a child
process and prints a first call to try. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from service.settings import DEFAULT_GRPC_ADDRESS
from service.storage import migrate

DATA_DIR = Path(".data")
DATABASE_NAME = "marketing"


def embedded_database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return an asyncpg URL."""
    import pgserver  # a development dependency only

    server = pgserver.get_server(DATA_DIR / "postgres", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    uri: str = server.get_uri(DATABASE_NAME)
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


def first_call(address: str) -> str:
    return f"""
  The marketing service is up on {address} (gRPC, with reflection).
  Try a first call (buf curl is in .venv/bin):

    .venv/bin/buf curl --protocol grpc --http2-prior-knowledge \\
      -d '{{"contact": {{"email": "ada@example.com", "first_name": "Ada"}}}}' \\
      http://{address}/marketing.v1.MarketingService/UpsertContact

  Press Ctrl-C to stop.
"""


def main() -> None:
    DATA_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    if "MARKETING_DATABASE_URL" not in env:
        env["MARKETING_DATABASE_URL"] = embedded_database_url()
    env.setdefault("MARKETING_GRPC_ADDRESS", DEFAULT_GRPC_ADDRESS)
    migrate.upgrade(env["MARKETING_DATABASE_URL"])
    service = subprocess.Popen([sys.executable, "-m", "service.main", "serve"], env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)

    # Ctrl-C reaches the whole process group; SIGTERM only us: pass it on.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(first_call(env["MARKETING_GRPC_ADDRESS"]), flush=True)
    sys.exit(service.wait())


if __name__ == "__main__":
    main()
