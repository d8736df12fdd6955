"""`marketing-service sync-contacts`: start a full contact sync through the
gRPC API (or attach to the one running) and show its progress until it ends.

Ctrl-C stops following, never the sync: it keeps running in the service, and
the command says how to follow it again or cancel it. The address, token and
TLS CA come from the environment (MARKETING_API_ADDRESS, MARKETING_API_TOKEN,
MARKETING_API_CA), as for any other client of the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from marketing.v1 import contact_sync_pb2
from marketing_client import FailedPreconditionError, MarketingClient, Tls
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from service.settings import DEFAULT_GRPC_ADDRESS

ContactSync = contact_sync_pb2.ContactSync
RUNNING = ContactSync.State.STATE_RUNNING
SUCCEEDED = ContactSync.State.STATE_SUCCEEDED
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C
DEFAULT_POLL_S = 0.5


class SyncCommandSettings(BaseSettings):
    """Where the API is and how to call it (prefix MARKETING_API_)."""

    model_config = SettingsConfigDict(env_prefix="MARKETING_API_")

    address: str = Field(DEFAULT_GRPC_ADDRESS, description="host:port of the service's gRPC API")
    token: SecretStr | None = Field(None, description="bearer token of a caller that may sync")
    ca: Path | None = Field(None, description="PEM CA bundle: speak TLS, trusting it")
    poll_s: float = Field(DEFAULT_POLL_S, gt=0, description="seconds between progress reads")


class RateColumn(ProgressColumn):
    """Contacts a second, as rich estimates it from the recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("errors: {task.fields[errors]:,}"),
        console=console,
    )


class SyncFollower:
    """Starts or finds the sync, then reads it every `poll_s` until it ends.
    `name` is the sync followed, once known (for the Ctrl-C message)."""

    def __init__(
        self,
        client: MarketingClient,
        console: Console,
        *,
        poll_s: float = DEFAULT_POLL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._console = console
        self._poll_s = poll_s
        self._sleep = sleep
        self.name = ""

    async def run(self) -> ContactSync:
        sync = await self._start_or_attach()
        self.name = sync.name
        with _progress(self._console) as bar:
            task = bar.add_task("contacts", total=_total(sync), errors=0)
            while True:
                _show(bar, task, sync)
                if sync.state != RUNNING:
                    break
                await self._sleep(self._poll_s)
                sync = await self._client.get_contact_sync(sync.name)
        self._summary(sync)
        return sync

    async def _start_or_attach(self) -> ContactSync:
        try:
            sync = await self._client.start_contact_sync()
        except FailedPreconditionError as exc:
            if exc.reason != "CONTACT_SYNC_RUNNING":
                raise
            sync = await self._running()
            self._console.print(f"A sync is running already: following {sync.name}")
            return sync
        self._console.print(f"Started {sync.name} of {sync.total_contacts:,} contacts")
        return sync

    async def _running(self) -> ContactSync:
        """The running sync: the newest one (one runs at a time)."""
        page = await self._client.list_contact_syncs(page_size=1)
        return page.contact_syncs[0]

    def _summary(self, sync: ContactSync) -> None:
        state = ContactSync.State.Name(sync.state).removeprefix("STATE_")
        self._console.print(
            f"{sync.name} {state}: {sync.imported_contacts:,} imported, "
            f"{sync.failed_contacts:,} failed of {sync.total_contacts:,}"
        )
        if sync.error:
            self._console.print(f"error: {sync.error}")
        if sync.failed_contacts:
            self._console.print(f"the people refused: ListContactSyncErrors parent={sync.name}")

    def left_running(self) -> None:
        if not self.name:
            self._console.print("Interrupted before a sync was started or found.")
            return
        self._console.print(
            f"\nStopped following; {self.name} keeps running in the service.\n"
            "Follow it again: marketing-service sync-contacts\n"
            f'Cancel it: CancelContactSync {{"name": "{self.name}"}} (README, Full contact sync)'
        )


def _total(sync: ContactSync) -> int:
    """The contacts at the start, or more when contacts were added meanwhile."""
    return max(sync.total_contacts, sync.published_contacts, _done(sync))


def _done(sync: ContactSync) -> int:
    return int(sync.imported_contacts + sync.failed_contacts)


def _show(bar: Progress, task: TaskID, sync: ContactSync) -> None:
    bar.update(task, total=_total(sync), completed=_done(sync), errors=sync.failed_contacts)


def client_for(settings: SyncCommandSettings) -> MarketingClient:
    token = None if settings.token is None else settings.token.get_secret_value()
    tls = None if settings.ca is None else Tls.from_files(ca=settings.ca)
    return MarketingClient(settings.address, token=token, tls=tls)


async def _follow(follower_box: list[SyncFollower], settings: SyncCommandSettings) -> int:
    async with client_for(settings) as client:
        follower = SyncFollower(client, Console(), poll_s=settings.poll_s)
        follower_box.append(follower)
        sync = await follower.run()
    return 0 if sync.state == SUCCEEDED else 1


def main(settings: SyncCommandSettings) -> int:
    """The exit code: 0 when the sync SUCCEEDED, 1 when it ended otherwise,
    130 when Ctrl-C stopped the following (the sync runs on)."""
    box: list[SyncFollower] = []
    try:
        return asyncio.run(_follow(box, settings))
    except KeyboardInterrupt:
        if box:
            box[0].left_running()
        return EXIT_INTERRUPTED
