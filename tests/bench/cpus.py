"""CPU placement for a phase: the gRPC process on a core of its own.

The service's gRPC process is one Python interpreter: a single core is the most
it can use. On a machine shared with PostgreSQL, NATS, the bus workers and the
load generator, the scheduler hands it that core in slices between the others,
and every switch costs it its caches too. `dedicated_core` gives it the first
core and everything else the rest, as a deployment would (its own machine, or
an exclusive core under a static CPU manager). Linux only; elsewhere, or with a
single core, it changes nothing and says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

_PROC = Path("/proc")


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(_PROC / str(pid) / "task")]
    except OSError:
        return []  # gone


def pin(pids: Iterable[int], cpus: set[int]) -> None:
    """Every thread of every process in `pids` onto `cpus` (threads and
    children started later inherit it)."""
    for pid in pids:
        for tid in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


def _parents() -> dict[int, int]:
    parents = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def with_descendants(pids: Iterable[int]) -> list[int]:
    parents = _parents()
    found = list(pids)
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - set(found)
        found += frontier
    return found


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (e.g. a data directory)."""
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def dedicated_core(service: list[int], others: list[int]) -> Iterator[bool]:
    """Within: `service` on the first core, `others` (but `service`) on the
    rest. Yields whether it could; restores every process's CPUs after."""
    everything = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(everything) < 2:
        yield False
        return
    first = min(everything)
    others = [pid for pid in others if pid not in service]
    pin(service, {first})
    pin(others, everything - {first})
    try:
        yield True
    finally:
        pin([*service, *others], everything)


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """Each live process's user and system CPU so far, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def cpu_since(before: dict[int, float], pids: Iterable[int]) -> float:
    """The CPU `pids` used since `before` (cpu_by_pid then): a process started since
    counts from nothing; one gone since counts nothing (PostgreSQL's autovacuum
    workers come and go: counted as the difference of totals, one that ended made
    the figure negative)."""
    return sum(now - before.get(pid, 0.0) for pid, now in cpu_by_pid(pids).items())
