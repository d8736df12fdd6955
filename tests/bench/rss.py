"""Peak resident memory of processes, sampled from /proc/<pid>/status."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

INTERVAL_S = 0.2


def status_kb(pid: int, field: str) -> int:
    """VmRSS, VmHWM, ... in kB (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Samples VmRSS of each named pid every 0.2 s; `peak_mb` is the largest seen."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak_kb = dict.fromkeys(pids, 0)
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(INTERVAL_S)

    def _sample(self) -> None:
        self.samples += 1
        for name, pid in self.pids.items():
            self.peak_kb[name] = max(self.peak_kb[name], status_kb(pid, "VmRSS"))

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
        return {name: kb / 1024 for name, kb in self.peak_kb.items()}

    def high_water_mb(self) -> dict[str, float]:
        """VmHWM: the peak over each process's whole life, not only this phase."""
        return {name: status_kb(pid, "VmHWM") / 1024 for name, pid in self.pids.items()}
