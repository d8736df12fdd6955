"""Reading the newest value of many KV keys in one request: a JetStream direct
get with `multi_last` (nats-server 2.11+, the bucket's stream with
allow_direct). A full sync asks for the fences of thousands of people a
batch; one get per person would take a round trip each (measured: 10,000 in
5-8 s on a loaded test machine, against 0.7 s in requests of a thousand)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from nats.aio.client import Client

# Subjects one request names: the server answers up to 1024 at once.
SUBJECTS_PER_REQUEST = 1000
REPLY_TIMEOUT_S = 5.0
_END_OF_BATCH, _NO_RESULTS = "204", "404"


class DirectReadError(Exception):
    """The server did not answer a direct read (too old, or the stream does not
    allow direct gets): the caller reads key by key instead."""


async def newest_values(nc: Client, stream: str, subjects: Sequence[str]) -> dict[str, bytes]:
    """The newest value stored on each of `subjects` (at most
    SUBJECTS_PER_REQUEST) that has one; deleted and purged ones are left out."""
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    request = json.dumps({"multi_last": list(subjects), "batch": len(subjects)}).encode()
    values: dict[str, bytes] = {}
    try:
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
        while True:
            try:
                msg = await replies.next_msg(timeout=REPLY_TIMEOUT_S)
            except TimeoutError as exc:
                raise DirectReadError(f"no answer from {stream}'s direct get") from exc
            headers = msg.headers or {}
            status = headers.get("Status")
            if status in (_END_OF_BATCH, _NO_RESULTS):
                return values
            if status is not None:
                raise DirectReadError(f"{stream}: {status} {headers.get('Description', '')}")
            if headers.get("KV-Operation") in (None, "PUT") and "Nats-Subject" in headers:
                values[headers["Nats-Subject"]] = msg.data
    finally:
        await replies.unsubscribe()
