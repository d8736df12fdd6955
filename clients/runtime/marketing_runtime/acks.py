"""Acknowledging a whole batch of JetStream messages in one write.

`Msg.ack()` is a publish each: a few microseconds of nats-py per message and
a write per message. A consumer that settles a batch of a thousand at once
frames every "+ACK" itself and writes them together, as the batch publisher
does (through the same two nats-py calls, pinned by tests/runtime)."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg

_ACK = b"+ACK"


async def ack_all(messages: Sequence[Msg]) -> None:
    """Acknowledge `messages` on the connection they came in on, as
    `Msg.ack` would: in one write when that is one connection."""
    connections = {id(msg._client): msg._client for msg in messages}
    if len(connections) != 1:  # none, or a batch that spans a new connection
        for msg in messages:
            await msg.ack()
        return
    frames = b"".join(
        b"PUB %s %d\r\n%s\r\n" % (msg.reply.encode(), len(_ACK), _ACK)
        for msg in messages
        if msg.reply
    )
    (nc,) = connections.values()
    await nc._send_command(frames)
    await nc._flush_pending()
