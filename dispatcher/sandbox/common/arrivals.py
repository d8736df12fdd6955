"""When a request reached the sandbox, from the kernel rather than from the handler.

A provider counts a request against its rate windows when it comes in. The sandbox's
handler threads read their clock only once they run, and on a busy machine (one
process of Python beside the system under test, a thread per connection, a thread
applying an import job of 10,000 profiles) that was 0.1 to 0.2 s after the request
came in at the median and up to 0.95 s (README, figure 7): the sandbox then counted
calls in a later second than the one they came in, and refused calls the provider
would have taken. So a connection is read with `recvmsg` and Linux's `SO_TIMESTAMPNS`,
which gives the instant the kernel received the bytes of each read.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import sys

# <asm-generic/socket.h>: SO_TIMESTAMPNS_OLD, whose message is a timespec of the
# platform's longs (two 64-bit numbers on the 64-bit Linux this runs on; elsewhere a
# message of another size is not read, and the request counts when read).
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("qq")
# The option's number is Linux's: elsewhere connections are read as before, unstamped.
_CAN_STAMP = sys.platform.startswith("linux")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if _CAN_STAMP else 0


def stamp_arrivals(listening: socket.socket) -> None:
    """Have the kernel stamp what reaches the connections this socket accepts (they
    inherit the option). Set on each connection only once accepted, it would come too
    late for the first request, which a client sends right after connecting. Where the
    platform has no such option, requests go unstamped: they count when read."""
    if not _CAN_STAMP:
        return
    with contextlib.suppress(OSError):
        listening.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


class StampedReader(io.RawIOBase):
    """A connection's bytes, with the kernel's receive time (epoch seconds) of the
    first read since `mark()`: the arrival of the request read after the mark."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self.first_received: float | None = None
        self._marked = False
        # Not every platform or socket stamps: then reads work as before, unstamped.
        self._stamped = _CAN_STAMP
        if self._stamped:
            try:
                connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                self._stamped = False

    def readable(self) -> bool:
        return True

    def mark(self) -> None:
        """A new request begins: the next read's time is its arrival (None when that
        read carries none, or when the request was read before, with the last)."""
        self.first_received, self._marked = None, True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._stamped:
            return self._connection.recv_into(buffer)
        count, ancillary, _, _ = self._connection.recvmsg_into([buffer], _ANCILLARY_BYTES)
        if self._marked:
            self.first_received, self._marked = _received(ancillary), False
        return count


def _received(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds) + float(nanoseconds) / 1e9
    return None
