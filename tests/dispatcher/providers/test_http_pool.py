"""The provider clients' request hook (`http_pool.note_leaving`) and `sent_in_time`, on a
real server: a request stamped by the gate notes its stamp's age when its first bytes
go, not when httpx runs its hooks; one whose stamp went stale by then goes on a stamp
taken there when the budget has room at once, else is called off before any byte goes
and sent again on a renewed stamp."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import httpx
import pytest

from dispatcher.providers import http_pool
from dispatcher.providers.base import Leaving, RequestStamp, current_stamp, stamped
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import API_KEY, ScriptedStamp, late_requests, stamp_ages_noted

OPERATION = "test-http-pool"
REVISION = "2026-07-15"  # the Klaviyo client's


def test_the_age_is_read_as_the_request_goes(sandbox: Sandbox) -> None:
    """A hook after ours ages the stamp by 40 ms: the age noted is that of then."""
    age = [0.0]

    async def later_hook(request: httpx.Request) -> None:
        age[0] = 0.04

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving, later_hook]}
        async with httpx.AsyncClient(base_url=sandbox.base_url, event_hooks=hooks) as client:
            with stamped(RequestStamp(OPERATION, lambda: age[0], _always, _never, _no_room, _left)):
                await client.get("/_sandbox/requests")

    before = stamp_ages_noted(OPERATION)
    asyncio.run(main())
    count, total = stamp_ages_noted(OPERATION)
    assert count - before[0] == 1
    assert abs(total - before[1] - 0.04) < 1e-9


def test_a_trace_the_caller_set_still_gets_every_event(sandbox: Sandbox) -> None:
    events: list[str] = []

    async def own_trace(event: str, info: dict[str, object]) -> None:
        events.append(event)

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving]}
        async with httpx.AsyncClient(base_url=sandbox.base_url, event_hooks=hooks) as client:
            with stamped(ScriptedStamp(OPERATION).stamp()):
                await client.get("/_sandbox/requests", extensions={"trace": own_trace})

    before = stamp_ages_noted(OPERATION)
    asyncio.run(main())
    assert "http11.send_request_headers.started" in events
    assert "http11.receive_response_headers.complete" in events
    assert stamp_ages_noted(OPERATION)[0] == before[0] + 1


LIMIT_S = 0.05  # the most a stamp may age before its request leaves, in these tests
HEADERS_GOING = "http11.send_request_headers.started"  # the request's first bytes go next
CONNECTED = "connection.connect_tcp.complete"  # its own connection opened


class _Aging:
    """A stamp whose age moves only when the test says: at each httpcore trace event
    named in `late_at` it ages by the seconds given, as a busy event loop or a slow
    connection's setup would age it; the first time only, or every time for the
    events named in `always`. Renewed, it is new again; so is it taken again where
    the request leaves when the budget has `room` then (its round trips aging it by
    `restamp_s`)."""

    def __init__(
        self,
        late_at: dict[str, float],
        always: tuple[str, ...] = (),
        *,
        room: bool = False,
        restamp_s: float = 0.0,
    ) -> None:
        self.age_s = 0.0
        self.renewals = self.restamps = 0
        self.leavings: list[Leaving] = []  # how far each request got, in turn
        self.late_at, self.always = dict(late_at), always
        self.room, self.restamp_s = room, restamp_s
        self.stamp = RequestStamp(
            OPERATION, self._age, self._fresh, self._renew, self._restamp, self.leavings.append
        )

    async def trace(self, event: str, info: dict[str, object]) -> None:
        if event in self.late_at and current_stamp() is self.stamp:
            by_s = self.late_at[event] if event in self.always else self.late_at.pop(event)
            self.age_s += by_s

    @property
    def went(self) -> int:
        """Requests that left on it."""
        return self.leavings.count(Leaving.GONE)

    def _age(self) -> float:
        return self.age_s

    def _fresh(self) -> bool:
        return self.age_s <= LIMIT_S

    async def _renew(self) -> None:
        self.renewals += 1
        self.age_s = 0.0

    async def _restamp(self) -> bool:
        if self.room:
            self.restamps += 1
            self.age_s = self.restamp_s
        return self.room


def _late(outcome: str) -> float:
    return late_requests(OPERATION, outcome)


def _lists_seen(sandbox: Sandbox) -> int:
    return len([r for r in sandbox.requests() if r["path"] == "/api/lists"])


def _stamped_get(sandbox: Sandbox, aging: _Aging, *, warm: bool) -> int:
    """GET /api/lists on `aging`'s stamp (after an unstamped one that opens the
    connection, if `warm`); the answer's status."""

    async def main() -> int:
        hooks = {"request": [http_pool.note_leaving]}
        async with _api_client(sandbox, hooks) as client:
            if warm:
                await client.get("/api/lists")
            with stamped(aging.stamp):
                response = await http_pool.sent_in_time(
                    lambda: client.get("/api/lists", extensions={"trace": aging.trace})
                )
        return response.status_code

    return asyncio.run(main())


def test_a_request_leaving_on_a_stale_stamp_is_called_off_and_sent_once_renewed(
    sandbox: Sandbox,
) -> None:
    """On a connection kept from an earlier request, the stamp ages as the request's
    headers are about to go, and the budget has no room at once: no byte of it reaches
    the server then; `sent_in_time` renews the stamp and the request goes once."""
    aging = _Aging({HEADERS_GOING: 0.08})
    ages_before, called_off = stamp_ages_noted(OPERATION)[0], _late("called_off")
    assert _stamped_get(sandbox, aging, warm=True) == 200
    assert (aging.renewals, aging.restamps, aging.went) == (1, 0, 1)
    assert _late("called_off") == called_off + 1
    assert stamp_ages_noted(OPERATION)[0] == ages_before + 1  # only the request that went
    assert _lists_seen(sandbox) == 2, "the stamped request reached it once"


def test_a_request_leaving_on_a_stale_stamp_goes_on_one_taken_there_when_there_is_room(
    sandbox: Sandbox,
) -> None:
    """The budget has room at once where the request leaves: its stamp is taken again
    there and the request goes on its connection, neither called off nor renewed."""
    aging = _Aging({HEADERS_GOING: 0.08}, room=True, restamp_s=0.002)
    restamped, called_off = _late("restamped"), _late("called_off")
    ages_before = stamp_ages_noted(OPERATION)
    assert _stamped_get(sandbox, aging, warm=True) == 200
    assert (aging.renewals, aging.restamps, aging.went) == (0, 1, 1)
    assert (_late("restamped"), _late("called_off")) == (restamped + 1, called_off)
    count, total = stamp_ages_noted(OPERATION)
    assert count == ages_before[0] + 1
    assert total == pytest.approx(ages_before[1] + 0.002)  # the age of the stamp it went on
    assert _lists_seen(sandbox) == 2


def test_a_request_late_on_its_own_account_is_called_off_on_a_new_connection_too(
    sandbox: Sandbox,
) -> None:
    """The request opened its connection quickly, then waited: called off as well."""
    aging = _Aging({HEADERS_GOING: 0.08})
    called_off = _late("called_off")
    assert _stamped_get(sandbox, aging, warm=False) == 200
    assert (aging.renewals, _late("called_off")) == (1, called_off + 1)
    assert _lists_seen(sandbox) == 1


def test_a_request_made_late_by_its_connections_setup_goes_on_a_stamp_taken_there(
    sandbox: Sandbox,
) -> None:
    """Every connection takes long to open (as TLS far away does): the request's stamp
    is taken again as its headers are about to go on the connection it opened, and it
    goes at once (called off, it would close that connection and open another, as
    slow)."""
    aging = _Aging({CONNECTED: 0.08}, always=(CONNECTED,), room=True)
    restamped, called_off = _late("restamped"), _late("called_off")
    assert _stamped_get(sandbox, aging, warm=False) == 200
    assert (aging.renewals, aging.restamps, aging.went) == (0, 1, 1)
    assert (_late("restamped"), _late("called_off")) == (restamped + 1, called_off)
    assert _lists_seen(sandbox) == 1


def test_a_request_made_late_by_its_connections_setup_each_time_with_no_room_fails(
    sandbox: Sandbox,
) -> None:
    """Every connection takes 80 ms to open and the budget never has room at once where
    the request leaves: every try is called off, and the request fails as retryable
    with nothing of it sent. None goes later than its stamp allows."""
    aging = _Aging({CONNECTED: 0.08}, always=(CONNECTED,))
    restamped, called_off = _late("restamped"), _late("called_off")
    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        _stamped_get(sandbox, aging, warm=False)
    assert (aging.renewals, aging.went) == (http_pool.LATE_SENDS - 1, 0)  # before each resend
    assert _late("called_off") == called_off + http_pool.LATE_SENDS
    assert _late("restamped") == restamped
    assert _lists_seen(sandbox) == 0


def test_a_stamp_taken_where_the_request_leaves_is_looked_at_once_more(
    sandbox: Sandbox,
) -> None:
    """The round trips that took the stamp again were slow (a busy KV): the new stamp
    is stale in its turn, and the request is called off, then renewed and sent."""
    aging = _Aging({HEADERS_GOING: 0.08}, room=True, restamp_s=0.06)
    restamped, called_off = _late("restamped"), _late("called_off")
    assert _stamped_get(sandbox, aging, warm=True) == 200
    assert (aging.restamps, aging.renewals, aging.went) == (1, 1, 1)
    assert (_late("restamped"), _late("called_off")) == (restamped, called_off + 1)
    assert _lists_seen(sandbox) == 2


def test_a_request_late_on_every_try_fails_as_retryable() -> None:
    """Each try is renewed first; after `LATE_SENDS` tries called off, the request
    fails as retryable (none of its bytes went)."""
    tries: list[int] = []
    renewals: list[int] = []

    async def renew() -> None:
        renewals.append(1)

    async def send() -> None:
        tries.append(1)
        raise http_pool.LeftLate(OPERATION)

    async def main() -> None:
        with stamped(RequestStamp(OPERATION, lambda: 1.0, lambda: False, renew, _no_room, _left)):
            await http_pool.sent_in_time(send)

    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        asyncio.run(main())
    assert len(tries) == len(renewals) == http_pool.LATE_SENDS


def _api_client(sandbox: Sandbox, hooks: dict[str, list[Any]]) -> httpx.AsyncClient:
    """A client of the sandbox's API, whose requests it records."""
    headers = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": REVISION}
    return httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, event_hooks=hooks)


def _always() -> bool:
    return True


async def _never() -> None:
    raise AssertionError("a fresh stamp is not renewed")


async def _no_room() -> bool:
    return False


def _left(how: Leaving) -> None:
    pass


def test_a_proxy_tunnels_connect_is_passed_over_and_the_request_looked_at() -> None:
    """Through an HTTP proxy httpcore sends CONNECT first, on the request's own trace:
    the stamp is not looked at then (the provider sees nothing of it), nor marked as
    gone; it is as the request's own headers go, stale by then here: called off."""
    stamp = ScriptedStamp(OPERATION, aged_s=1.0, stale_where_leaving=True)
    request = httpx.Request("GET", "https://provider.example/api/events")
    tunnel = httpcore.Request(b"CONNECT", "http://proxy.example:3128")
    own = httpcore.Request(b"GET", "https://provider.example/api/events")
    headers_going = "http11.send_request_headers.started"

    async def main() -> None:
        with stamped(stamp.stamp()):
            await http_pool.note_leaving(request)
        trace = request.extensions["trace"]
        await trace("connection.connect_tcp.started", {})
        await trace("connection.connect_tcp.complete", {})
        await trace(headers_going, {"request": tunnel})
        await trace("proxy.start_tls.complete", {})
        assert (stamp.looks, stamp.went) == (0, 0)
        stamp.looks = 1  # its body was built: the next look is where it leaves
        with pytest.raises(http_pool.LeftLate):
            await trace(headers_going, {"request": own})

    asyncio.run(main())
    assert (stamp.looks, stamp.went) == (2, 0)


def test_a_request_that_found_no_connection_is_known_not_sent() -> None:
    """Nobody listens where the request is sent: it fails before any byte goes, which
    its trace tells (the gate gives such a reservation back)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    stamp = ScriptedStamp(OPERATION)

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving]}
        async with httpx.AsyncClient(event_hooks=hooks) as client:
            with stamped(stamp.stamp()), pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/api/events")

    asyncio.run(main())
    assert stamp.leavings == [Leaving.HANDED_OVER, Leaving.NOT_SENT]


def test_a_request_over_a_transport_that_traces_nothing_stays_handed_over() -> None:
    """A transport other than httpcore's (one a test mounts, say) reports nothing of
    the request: whether a byte went is unknown, and the stamp stays handed over (the
    gate keeps such a reservation counted)."""
    stamp = ScriptedStamp(OPERATION)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving]}
        transport = httpx.MockTransport(unreachable)
        async with httpx.AsyncClient(transport=transport, event_hooks=hooks) as client:
            with stamped(stamp.stamp()), pytest.raises(httpx.ReadTimeout):
                await client.get("http://provider.example/api/events")

    asyncio.run(main())
    assert stamp.leavings == [Leaving.HANDED_OVER]


def test_a_request_made_late_by_a_proxy_tunnel_goes_on_a_stamp_taken_as_its_headers_go() -> None:
    """Through an HTTP proxy: TCP to the proxy, CONNECT, then TLS through the tunnel
    aged the stamp. It is taken again as the request's own headers go (not the
    tunnel's), and the request goes on it."""
    stamp = ScriptedStamp(OPERATION, aged_s=1.0, stale_where_leaving=True, room_where_leaving=True)
    request = httpx.Request("GET", "https://provider.example/api/events")
    tunnel = httpcore.Request(b"CONNECT", "http://proxy.example:3128")
    own = httpcore.Request(b"GET", "https://provider.example/api/events")
    headers_going = "http11.send_request_headers.started"

    async def main() -> None:
        with stamped(stamp.stamp()):
            await http_pool.note_leaving(request)
        trace = request.extensions["trace"]
        await trace("connection.connect_tcp.complete", {})
        await trace(headers_going, {"request": tunnel})
        await trace("proxy.start_tls.complete", {})
        stamp.looks = 1  # its body was built: the next look is where it leaves
        await trace(headers_going, {"request": own})

    restamped = late_requests(OPERATION, "restamped")
    asyncio.run(main())
    assert (stamp.restamps, stamp.renewals, stamp.leavings[-1]) == (1, 0, Leaving.GONE)
    assert late_requests(OPERATION, "restamped") == restamped + 1


def test_any_later_step_of_its_exchange_tells_that_the_request_went() -> None:
    """Were httpcore to name its headers' event otherwise, the request's body or its
    answer going would still tell that its headers went (once)."""
    stamp = ScriptedStamp(OPERATION)
    request = httpx.Request("POST", "https://provider.example/api/events")
    own = httpcore.Request(b"POST", "https://provider.example/api/events")

    async def main() -> None:
        with stamped(stamp.stamp()):
            await http_pool.note_leaving(request)
        trace = request.extensions["trace"]
        await trace("http11.send_request_body.started", {"request": own})
        await trace("http11.receive_response_headers.started", {"request": own})

    asyncio.run(main())
    assert stamp.leavings == [Leaving.HANDED_OVER, Leaving.NOT_SENT, Leaving.GONE]
