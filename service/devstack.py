"""`make up`: the whole system on one machine, for trying it out and for demos.

Starts, unless configured to use external ones: an embedded PostgreSQL
(pgserver) and nats-server with JetStream, both keeping their data in `.data/`;
the sandbox provider: Klaviyo's, or ActiveCampaign's with
MARKETING_PROVIDER=activecampaign (neither when the provider's credentials are
set: KLAVIYO_API_KEY, or ACTIVECAMPAIGN_URL / ACTIVECAMPAIGN_API_KEY). Then
migrates, runs the service and one dispatcher, and prints a first call to try.
Ctrl-C (or SIGTERM) stops everything, dependencies last.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from marketing_runtime.envelope import NATS_MAX_PAYLOAD

from service.access.callers import ALL_METHODS, caller_table
from service.settings import DEFAULT_GRPC_ADDRESS
from service.storage import migrate

DATA_DIR = Path(".data")
DATABASE_NAME = "marketing"
NATS_PORT = 4222
SANDBOX_ADDRESS = "127.0.0.1:8090"
# How far the dispatcher takes the provider's clock to be from its own where the provider
# counts its windows by the clock (MARKETING_BUDGET_PROVIDER_SKEW_S; 50 ms for Klaviyo
# itself): a sandbox on this machine reads the dispatcher's own clock, so a rounding's.
LOCAL_SANDBOX_SKEW_S = 0.005
DEV_AUTH_FILE = DATA_DIR / "auth.toml"
DEV_PREFERENCES_KEY = DATA_DIR / "preferences.key"
BIN = Path(sys.executable).parent


def embedded_database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return an asyncpg URL."""
    import pgserver  # a development dependency only

    server = pgserver.get_server(DATA_DIR / "postgres", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    uri: str = server.get_uri(DATABASE_NAME)
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


def nats_server_command(
    port: int, store: Path, *, max_payload: int = NATS_MAX_PAYLOAD
) -> list[str]:
    """nats-server with JetStream on 127.0.0.1:`port`, its data in `store`, and
    the max_payload the largest event needs (README, NATS): only a
    configuration file can set that."""
    store.mkdir(parents=True, exist_ok=True)
    config = store / "nats-server.conf"
    config.write_text(f"max_payload: {max_payload}\n")
    return [
        str(BIN / "nats-server"),
        *("-c", str(config), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)),
    ]


def development_auth(env: dict[str, str]) -> str | None:
    """Unless MARKETING_AUTH_FILE (or MARKETING_AUTH=disabled) is set, write an
    auth file with one caller, "dev", that may call everything, with a new
    random token each start (only its digest is kept); the token to print."""
    if env.get("MARKETING_AUTH_FILE") or env.get("MARKETING_AUTH") == "disabled":
        return None
    token = secrets.token_urlsafe(32)
    DEV_AUTH_FILE.write_text(caller_table("dev", token, [ALL_METHODS]), encoding="utf-8")
    DEV_AUTH_FILE.chmod(0o600)
    env["MARKETING_AUTH_FILE"] = str(DEV_AUTH_FILE.resolve())
    return token


def development_preferences_key(env: dict[str, str]) -> None:
    """Unless MARKETING_PREFERENCES_KEY is set, one kept in .data across starts, so the
    preference links in messages sent during development keep working."""
    if env.get("MARKETING_PREFERENCES_KEY"):
        return
    if not DEV_PREFERENCES_KEY.exists():
        DEV_PREFERENCES_KEY.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        DEV_PREFERENCES_KEY.chmod(0o600)
    env["MARKETING_PREFERENCES_KEY"] = DEV_PREFERENCES_KEY.read_text(encoding="utf-8").strip()


def sandbox_provider(env: dict[str, str]) -> str | None:
    """Which sandbox `make up` starts: "activecampaign", "klaviyo", or None when the chosen
    provider has credentials (the real provider is used)."""
    provider = env.get("MARKETING_PROVIDER", "sandbox")
    if provider == "activecampaign":
        real = env.get("ACTIVECAMPAIGN_URL") or env.get("ACTIVECAMPAIGN_API_KEY")
        return None if real else "activecampaign"
    return None if provider == "klaviyo" and env.get("KLAVIYO_API_KEY") else "klaviyo"


def use_local_sandbox(env: dict[str, str], sandbox: str) -> str:
    """`env` set for the processes to use `sandbox` on this machine (unless told
    otherwise); where it listens."""
    if sandbox == "klaviyo":
        env["MARKETING_PROVIDER"] = "sandbox"
    address = env.setdefault("MARKETING_SANDBOX_ADDRESS", SANDBOX_ADDRESS)
    env.setdefault("MARKETING_SANDBOX_URL", f"http://{address}")
    env.setdefault("MARKETING_BUDGET_PROVIDER_SKEW_S", str(LOCAL_SANDBOX_SKEW_S))
    return address


def first_call(env: dict[str, str], token: str | None) -> str:
    address = env["MARKETING_GRPC_ADDRESS"]
    names = {"klaviyo": "Klaviyo", "activecampaign": "ActiveCampaign"}
    sandbox = sandbox_provider(env)
    provider = (
        names.get(env.get("MARKETING_PROVIDER", ""), "the provider")
        if sandbox is None
        else f"the {names[sandbox]} sandbox at {env['MARKETING_SANDBOX_URL']} "
        f"(see what it received: curl {env['MARKETING_SANDBOX_URL']}/_sandbox/requests)"
    )
    if token is not None:
        auth = f"""The development caller "dev" (in {DEV_AUTH_FILE}) has this token:

    export TOKEN={token}
"""
    else:
        auth = f"Callers come from {env.get('MARKETING_AUTH_FILE') or 'nowhere (auth disabled)'}."
    return f"""
  The marketing service is up on {address} (gRPC, with reflection),
  NATS on {env["MARKETING_NATS_URL"]}, delivering to {provider}.
  {auth}
  Try a first call (buf curl is in .venv/bin):

    .venv/bin/buf curl --protocol grpc --http2-prior-knowledge \\
      -H "Authorization: Bearer $TOKEN" \\
      -d '{{"contact": {{"email": "ada@example.com", "first_name": "Ada"}}}}' \\
      http://{address}/marketing.v1.MarketingService/UpsertContact

  Press Ctrl-C to stop.
"""


def _wait_for_port(host: str, port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {host}:{port} after {timeout_s} s")


def main() -> None:
    DATA_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("MARKETING_GRPC_ADDRESS", DEFAULT_GRPC_ADDRESS)
    token = development_auth(env)
    development_preferences_key(env)
    if "MARKETING_DATABASE_URL" not in env:
        env["MARKETING_DATABASE_URL"] = embedded_database_url()
    migrate.upgrade(env["MARKETING_DATABASE_URL"])
    dependencies: list[subprocess.Popen[bytes]] = []
    if "MARKETING_NATS_URL" not in env:
        dependencies.append(subprocess.Popen(nats_server_command(NATS_PORT, DATA_DIR / "nats")))
        _wait_for_port("127.0.0.1", NATS_PORT)
        env["MARKETING_NATS_URL"] = f"nats://127.0.0.1:{NATS_PORT}"
    sandbox = sandbox_provider(env)
    if sandbox is not None:
        address = use_local_sandbox(env, sandbox)
        command = [sys.executable, "-m", "dispatcher.sandbox", "--provider", sandbox]
        dependencies.append(subprocess.Popen(command, env=env))
        host, _, port = address.rpartition(":")
        _wait_for_port(host, int(port))
    apps = [
        subprocess.Popen([sys.executable, "-m", "service.main", "serve"], env=env),
        subprocess.Popen([sys.executable, "-m", "dispatcher.main"], env=env),
    ]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in apps:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    # Ctrl-C reaches the whole process group; SIGTERM only us: pass it on.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(first_call(env, token), flush=True)
    while all(child.poll() is None for child in apps):
        time.sleep(0.5)
    forward(signal.SIGTERM, None)  # one stopped (or was stopped): stop the other too
    codes = [child.wait() for child in apps]
    for dependency in reversed(dependencies):  # the apps are gone: now their dependencies
        if dependency.poll() is None:
            dependency.send_signal(signal.SIGTERM)
        dependency.wait()
    sys.exit(max(codes, default=0))


if __name__ == "__main__":
    main()
