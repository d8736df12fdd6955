"""The provider clients' request hook (`http_pool.note_leaving`) and `sent_in_time`, on a
real server: a request stamped by the gate notes its stamp's age when its first bytes
go, not when httpx runs its hooks; one whose stamp went stale by then is called off
before any byte goes and sent again on a renewed stamp."""

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
            with stamped(RequestStamp(OPERATION, lambda: age[0], _always, _never, _left)):
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
    events named in `always`. Renewed, it is new again."""

    def __init__(self, late_at: dict[str, float], always: tuple[str, ...] = ()) -> None:
        self.age_s = 0.0
        self.renewals = 0
        self.leavings: list[Leaving] = []  # how far each request got, in turn
        self.late_at, self.always = dict(late_at), always
        self.stamp = RequestStamp(
            OPERATION, self._age, self._fresh, self._renew, self.leavings.append
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

    def _fresh(self, allowance_s: float) -> bool:
        return self.age_s - allowance_s <= LIMIT_S

    async def _renew(self) -> None:
        self.renewals += 1
        self.age_s = 0.0


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
    headers are about to go: no byte of it reaches the server then; `sent_in_time`
    renews the stamp and the request goes once."""
    aging = _Aging({HEADERS_GOING: 0.08})
    ages_before, called_off = stamp_ages_noted(OPERATION)[0], _late("called_off")
    assert _stamped_get(sandbox, aging, warm=True) == 200
    assert (aging.renewals, aging.went) == (1, 1)
    assert _late("called_off") == called_off + 1
    assert stamp_ages_noted(OPERATION)[0] == ages_before + 1  # only the request that went
    assert _lists_seen(sandbox) == 2, "the stamped request reached it once"


def test_a_request_late_on_its_own_account_is_called_off_on_a_new_connection_too(
    sandbox: Sandbox,
) -> None:
    """The request opened its connection quickly, then waited: called off as well."""
    aging = _Aging({HEADERS_GOING: 0.08})
    called_off = _late("called_off")
    assert _stamped_get(sandbox, aging, warm=False) == 200
    assert (aging.renewals, _late("called_off")) == (1, called_off + 1)
    assert _lists_seen(sandbox) == 1


def test_a_request_made_late_again_by_its_connections_setup_goes(sandbox: Sandbox) -> None:
    """Every connection takes long to open (as TLS far away does): the request is called
    off once; sent again, it opens another and is late again, by the setup alone, and
    goes, counted as let go (called off again, it would never get through)."""
    aging = _Aging({CONNECTED: 0.08}, always=(CONNECTED,))
    let_go, called_off = _late("let_go"), _late("called_off")
    assert _stamped_get(sandbox, aging, warm=False) == 200
    assert (aging.renewals, aging.went) == (1, 1)
    assert (_late("let_go"), _late("called_off")) == (let_go + 1, called_off + 1)
    assert _lists_seen(sandbox) == 1


def test_a_request_late_beyond_its_connections_setup_is_called_off_each_time(
    sandbox: Sandbox,
) -> None:
    """Each connection takes 30 ms to open, then each try waits 80 ms more: the setup
    explains 30 of the 110 ms, so every try is called off, and the request fails as
    retryable with nothing of it sent."""
    aging = _Aging({CONNECTED: 0.03, HEADERS_GOING: 0.08}, always=(CONNECTED, HEADERS_GOING))
    let_go, called_off = _late("let_go"), _late("called_off")
    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        _stamped_get(sandbox, aging, warm=False)
    assert (aging.renewals, aging.went) == (http_pool.LATE_SENDS - 1, 0)  # before each resend
    assert (_late("let_go"), _late("called_off")) == (let_go, called_off + http_pool.LATE_SENDS)
    assert _lists_seen(sandbox) == 0


def test_a_request_late_by_its_setup_and_a_little_more_goes_when_sent_again(
    sandbox: Sandbox,
) -> None:
    """60 ms to open each connection and 30 ms more: sent again, 30 ms are on its own
    account, within the 50 ms a fresh stamp may age. It goes, counted as let go."""
    aging = _Aging({CONNECTED: 0.06, HEADERS_GOING: 0.03}, always=(CONNECTED, HEADERS_GOING))
    let_go, called_off = _late("let_go"), _late("called_off")
    assert _stamped_get(sandbox, aging, warm=False) == 200
    assert (aging.renewals, aging.went) == (1, 1)
    assert (_late("let_go"), _late("called_off")) == (let_go + 1, called_off + 1)
    assert _lists_seen(sandbox) == 1


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
        with stamped(RequestStamp(OPERATION, lambda: 1.0, lambda _: False, renew, _left)):
            await http_pool.sent_in_time(send)

    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        asyncio.run(main())
    assert len(tries) == len(renewals) == http_pool.LATE_SENDS


def _api_client(sandbox: Sandbox, hooks: dict[str, list[Any]]) -> httpx.AsyncClient:
    """A client of the sandbox's API, whose requests it records."""
    headers = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": REVISION}
    return httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, event_hooks=hooks)


def _always(allowance_s: float) -> bool:
    return True


async def _never() -> None:
    raise AssertionError("a fresh stamp is not renewed")


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


def test_a_proxy_tunnel_is_part_of_the_connections_setup() -> None:
    """A request sent again after it was called off opens its connection through an
    HTTP proxy: TCP to the proxy, CONNECT, then TLS through the tunnel took 0.2 s. That
    setup is what made it late, so it goes (as over a direct connection)."""
    age = [0.0]
    leavings: list[Leaving] = []
    request = httpx.Request("GET", "https://provider.example/api/events")

    async def at(event: str, age_s: float, sent: httpcore.Request | None = None) -> None:
        age[0] = age_s
        await request.extensions["trace"](event, {} if sent is None else {"request": sent})

    async def main() -> None:
        stamp = RequestStamp(
            OPERATION,
            lambda: age[0],
            lambda allowance: age[0] - allowance <= LIMIT_S,
            _never,
            leavings.append,
        )
        token = http_pool._SENT_AGAIN.set(True)
        try:
            with stamped(stamp):
                await http_pool.note_leaving(request)
        finally:
            http_pool._SENT_AGAIN.reset(token)
        await at("connection.connect_tcp.started", 0.0)
        await at("connection.connect_tcp.complete", 0.01)
        tunnel = httpcore.Request(b"CONNECT", "http://proxy.example:3128")
        await at("http11.send_request_headers.started", 0.02, tunnel)
        await at("proxy.start_tls.complete", 0.2)
        own = httpcore.Request(b"GET", "https://provider.example/api/events")
        await at("http11.send_request_headers.started", 0.21, own)

    late_before = late_requests(OPERATION, "let_go")
    asyncio.run(main())
    assert leavings[-1] is Leaving.GONE
    assert late_requests(OPERATION, "let_go") == late_before + 1


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
