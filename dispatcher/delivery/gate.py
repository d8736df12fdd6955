"""Every provider call passes the gate: it is timed, it reserves its call in the
shared provider budget (`dispatcher.budget`: every replica together stays within
each rate bucket's windows), and after a 429 no call to the same endpoint is
made before the provider's Retry-After has passed, by any replica (a refusal
the provider client marks `rate_limited` counts as a 429; without a Retry-After
it waits for the next minute). Limits are
per endpoint (Klaviyo: each has its own windows), so a throttled events
endpoint does not hold up unsubscribes or erasures. An operation name
(`create_events`, `subscribe`, ...) stands for one provider endpoint.

The gate also keeps a pause of its own after any Retry-After: it needs no round
trip to honour, and holds while NATS (and so the shared budget) is away.

A provider whose calls may make several HTTP requests (`Limits.paces_requests`:
every ActiveCampaign operation; Klaviyo's import_status, read_person and list calls) is given
`pace` as its `RequestPacer`: then for those operations each request, not each
call, is reserved, in the buckets that request draws from, right before it
goes, and the call's `guard` runs before each request; a 429 pauses the buckets
of the request it answered.

A stamped request holds one of the provider client's HTTP connections
(`providers.http_pool`) from before its stamp is checked until its answer: no
more go at once than the pool has connections, so none waits in the pool after
its stamp (the budget's proof needs it to leave within half the margin). The
place is taken after the reservation, not before, so that calls waiting for
room in a spent window hold no connection that compliance calls could use; a
reservation that aged while its call waited for a connection is given back. The
request then goes on the reservation's stamp (`providers.base.RequestStamp`), which
its client looks at twice more: once it has built the request's body
(`providers.base.still_fresh`; a Klaviyo import job of 10,000 profiles takes 20 to
50 ms to build, more on a busy machine), and where the request leaves, as its first
bytes are about to be written (`providers.http_pool`). A stamp that aged by the
first look is renewed: the reservation is given back with its connection, and both
are taken again. One that aged by the second is exchanged there for a stamp of now
if the budget has room at once (the request keeps its connection); else the request
is called off and renewed so, outside httpx (see there)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from marketing_runtime.clock import Sleep

from dispatcher import metrics
from dispatcher.budget import Reservation, SharedBudget
from dispatcher.providers import http_pool
from dispatcher.providers.base import (
    Leaving,
    RateBucket,
    RequestStamp,
    WindowReport,
    current_stamp,
    stamped,
    window_reports,
)
from dispatcher.providers.errors import RATE_LIMITED, ProviderError, RetryableProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)
# The longest pause one Retry-After can ask for. Klaviyo's windows are a
# second and a minute; a larger value (garbled, or an HTTP date far ahead)
# would otherwise stop an endpoint, say unsubscribes, for as long as it says.
MAX_RETRY_AFTER_S = 300.0
# Within one gated call (its task): the caller's guard, whether the call is bulk work,
# and the buckets of the last request the provider paced, which a 429 stands for.
_GUARD: contextvars.ContextVar[Callable[[], None]] = contextvars.ContextVar("guard")
_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk", default=False)
_REQUEST_BUCKETS: contextvars.ContextVar[tuple[RateBucket, ...]] = contextvars.ContextVar(
    "request_buckets", default=()
)
Reserve = Callable[[SharedBudget], Awaitable[Reservation]]


@dataclass
class Reserved:
    """A request's reservation, the budget it is of, and whether it holds one of the
    pool's connections; taken again (`_renew`) when it aged before the request went."""

    budget: SharedBudget
    reservation: Reservation
    holds_connection: bool = True
    leaving: Leaving | None = None  # how far its request got (None: no request yet)
    # `_renew` let it go (given back, or left counting if its request may have gone)
    # and is taking a new one: never given back again, however that ends.
    renewing: bool = False

    @property
    def went(self) -> bool:
        """Its request has begun to leave: it is never given back."""
        return self.leaving is Leaving.GONE

    @property
    def unsent(self) -> bool:
        """Its request is known not to have sent a byte, or none was made."""
        return self.leaving is None or self.leaving is Leaving.NOT_SENT


class ProviderGate:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        connections: int = http_pool.CONNECTIONS,
    ) -> None:
        """`connections`: of the provider client's HTTP pool (stamped requests in flight
        at most)."""
        self._monotonic = monotonic
        self._connections = asyncio.BoundedSemaphore(connections)
        self._wall = wall
        self._sleep = sleep
        self._not_before: dict[str, float] = {}
        self._budget: SharedBudget | None = None

    def share(self, budget: SharedBudget) -> None:
        """Draw from `budget` from now on (made again on each NATS connection)."""
        self._budget = budget

    async def call(
        self,
        operation: str,
        size: int,
        call: Callable[[], Awaitable[T]],
        *,
        guard: Callable[[], None] = lambda: None,
        paced: bool = False,
        bulk: bool = False,
    ) -> T:
        """`guard` runs right before the request (after any wait) and may raise
        to call it off, e.g. when the caller has lost its lease meanwhile. A
        retryable error leaves the gate with its `retry_after` capped. `paced`:
        the call carries less than it could, so it also keeps the budget's
        steady pace (see `SharedBudget.acquire`). `bulk`: bulk work whatever
        the operation, e.g. a full sync's consent calls: it leaves the
        compliance share of the operation's buckets to live compliance work."""
        reserve = self._call_reservation(operation, paced, bulk)
        reserved = await self._wait_for_room(operation, (), reserve)
        await self._checked(guard, reserved)
        started = self._monotonic()
        metrics.BATCH_SIZE.labels(operation).observe(size)
        try:
            async with self._answered(reserved):
                with self._stamped(operation, reserved, (), reserve, guard):
                    result = await _guarded(call, guard, bulk)
        except RetryableProviderError as exc:
            throttled = is_throttled(exc)
            if exc.code == RATE_LIMITED and exc.retry_after is None:
                exc.retry_after = until_next_minute(self._wall())
            if exc.retry_after:
                exc.retry_after = _capped(operation, exc.retry_after)
                await self._pause(operation, exc.retry_after, shared=throttled, buckets=exc.buckets)
            metrics.RETRIES.labels(operation).inc()
            self._observe(operation, "retryable", started)
            raise
        except ProviderError:
            self._observe(operation, "permanent", started)
            raise
        self._observe(operation, "ok", started)
        return result

    @contextlib.asynccontextmanager
    async def pace(self, operation: str, buckets: Sequence[RateBucket]) -> AsyncIterator[None]:
        """The `RequestPacer` of a provider that paces its own requests: wait out any
        pause of the operation or of these buckets, reserve this one request in each
        of them, run the call's guard, then let the request go; its answer is noted."""
        # A request paced inside a call reserved as a whole would hide that call's
        # stamp: its request would be the call's, which the budget counted already.
        assert current_stamp() is None, f"{operation}: a paced request in a reserved call"
        drawn = tuple(buckets)
        _REQUEST_BUCKETS.set(drawn)

        def reserve(budget: SharedBudget) -> Awaitable[Reservation]:
            return budget.acquire_request(operation, drawn, bulk=_BULK.get(False))

        guard = _GUARD.get(lambda: None)
        reserved = await self._wait_for_room(operation, drawn, reserve)
        await self._checked(guard, reserved)
        async with self._answered(reserved):
            with self._stamped(operation, reserved, drawn, reserve, guard):
                yield

    def _call_reservation(self, operation: str, paced: bool, bulk: bool) -> Reserve | None:
        """How a call of `operation` is reserved as a whole: None when the budget does
        not (no budget, or the provider paces each request)."""
        budget = self._budget
        if budget is None or not budget.covers(operation):
            return None
        return lambda b: b.acquire(operation, paced=paced, bulk=bulk)

    async def _wait_for_room(
        self, operation: str, buckets: tuple[RateBucket, ...], reserve: Reserve | None
    ) -> Reserved | None:
        """Wait out any pause, then reserve in the shared budget (the reservation, and
        the budget it is of; None without one), holding a connection of the pool when
        reserved (`_answered` lets it go). Another call may be throttled while this one
        waits: wait again. A reservation that took too long to get (slow KV round
        trips, say), or aged while every connection was busy, is given back and taken
        again: the provider would see the request later than the budget counted it. One
        whose wait for a connection is cancelled is given back too."""
        while True:
            while (wait := self._pause_left(operation, buckets)) > 0:
                await self._sleep(wait)
            budget = self._budget
            if budget is None or reserve is None:
                return None
            reservation = await reserve(budget)
            try:
                await self._connections.acquire()
            except BaseException:  # cancelled while waiting for a connection
                await _unused_given_back(budget, reservation)
                raise
            if budget.fresh(reservation) and self._pause_left(operation, buckets) <= 0:
                return Reserved(budget, reservation)
            self._connections.release()
            metrics.BUDGET_STALE.labels(operation).inc()
            await _given_back(budget, reservation)

    def _stamped(
        self,
        operation: str,
        reserved: Reserved | None,
        buckets: tuple[RateBucket, ...],
        reserve: Reserve | None,
        guard: Callable[[], None],
    ) -> contextlib.AbstractContextManager[None]:
        """The request made inside goes on this reservation's stamp
        (`providers.base.RequestStamp`): its client renews a stamp that aged before the
        request could leave, and notes the stamp's age as it leaves
        (`http_pool.note_leaving`). A reservation of no bucket has no stamp."""
        if reserved is None or reserve is None or not reserved.reservation.stamps:
            return contextlib.nullcontext()

        async def renew() -> None:
            await self._renew(operation, reserved, buckets, reserve)
            guard()  # it may have waited: the caller may have lost its lease meanwhile

        def left(how: Leaving) -> None:
            if not reserved.went:  # once gone, gone
                reserved.leaving = how

        return stamped(
            RequestStamp(
                operation,
                age=lambda: reserved.budget.stamp_age(reserved.reservation),
                fresh=lambda: reserved.went or reserved.budget.fresh(reserved.reservation),
                renew=renew,
                restamp=lambda: self._restamped(operation, reserved, buckets),
                left=left,
            )
        )

    async def _restamped(
        self, operation: str, reserved: Reserved, buckets: tuple[RateBucket, ...]
    ) -> bool:
        """Where a request whose stamp aged is about to leave (`http_pool.note_leaving`):
        `SharedBudget.restamped`, unless a pause holds. Whether it may go now, on its
        open connection; else it is called off, and `_renew` gives back what is still
        held and reserves again, waiting."""
        assert reserved.unsent, "only a request that sent no byte is restamped"
        if self._pause_left(operation, buckets) > 0:
            return False
        reserved.reservation, whole = await reserved.budget.restamped(reserved.reservation)
        return whole

    async def _renew(
        self,
        operation: str,
        reserved: Reserved,
        buckets: tuple[RateBucket, ...],
        reserve: Reserve,
    ) -> None:
        """A reservation that aged before its request could go (while the provider built
        its body, or where the request left) is given back with its connection (it may
        wait for room, and then it must hold none), and both are taken again. Never one
        whose request went: a reserved call is one request, and its stamp then reads
        fresh to any later look."""
        assert not reserved.went, "a reservation whose request went is never given back"
        metrics.BUDGET_STALE.labels(operation).inc()
        self._let_go(reserved)
        reserved.renewing = True  # from here, however the wait below ends
        if reserved.unsent:  # else its request may have gone (traced by nothing): it counts
            await _given_back(reserved.budget, reserved.reservation)
        again = await self._wait_for_room(operation, buckets, reserve)
        assert again is not None  # a budget, once shared, is only ever replaced
        reserved.budget, reserved.reservation = again.budget, again.reservation
        reserved.holds_connection, reserved.renewing = True, False
        reserved.leaving = None  # the new one's request is yet to be made

    async def _pause(
        self,
        operation: str,
        retry_after: float,
        *,
        shared: bool,
        buckets: tuple[RateBucket, ...] = (),
    ) -> None:
        """`buckets`: those the refusal stands for, if the provider said; else those of the
        request it answered."""
        not_before = self._monotonic() + retry_after
        self._not_before[operation] = max(self._not_before.get(operation, 0.0), not_before)
        if shared and self._budget is not None:
            try:
                await self._budget.throttled(
                    operation, retry_after, buckets or _REQUEST_BUCKETS.get()
                )
            except Exception as exc:  # the local pause holds; the 429 is what the caller needs
                log.warning("%s: cannot share the pause (%r)", operation, exc)

    def pause_left(self, operation: str, *more: str) -> float:
        """Seconds until each of these operations takes calls again (0: now), by
        this replica's pauses and the shared ones it has seen. Consumers fetch
        nothing meanwhile: what they fetched would only wait here."""
        now, budget = self._monotonic(), self._budget
        operations = (operation, *more)
        local = (self._not_before.get(op, 0.0) - now for op in operations)
        shared = (budget.pause_left(op) for op in operations) if budget is not None else ()
        return max(0.0, *local, *shared)

    def _pause_left(self, operation: str, buckets: tuple[RateBucket, ...]) -> float:
        """As `pause_left`, with the shared pauses of these buckets when given."""
        if not buckets:
            return self.pause_left(operation)
        local = self._not_before.get(operation, 0.0) - self._monotonic()
        budget = self._budget
        shared = budget.pause_left(operation, buckets) if budget is not None else 0.0
        return max(0.0, local, shared)

    async def fill_wait(self, operation: str) -> float:
        """Seconds until a call of `operation` is available at the budget's steady
        pace (0: now): a batch not yet full may keep filling meanwhile."""
        budget = self._budget
        if budget is None or not budget.covers(operation):
            return self.pause_left(operation)
        return max(self.pause_left(operation), await budget.fill_wait(operation))

    async def room_wait(self, operation: str) -> float:
        """Seconds until a call of `operation` could go (0: now): its pauses, and the
        shared budget's room as it stands now. Reserves nothing. (A provider that
        paces its own requests is reserved request by request: its pauses only.)"""
        budget = self._budget
        if budget is None or not budget.covers(operation):
            return self.pause_left(operation)
        try:
            room = await budget.room_wait(operation)
        except Exception as exc:  # NATS away: the call itself meets the budget, or fails
            log.warning("%s: cannot read the shared budget (%r)", operation, exc)
            room = 0.0
        return max(self.pause_left(operation), room)

    async def _checked(self, guard: Callable[[], None], reserved: Reserved | None) -> None:
        """The caller's guard; when it calls the request off, the connection goes, and
        the reservation back to the budget."""
        try:
            guard()
        except BaseException:
            self._let_go(reserved)
            await _unsent_given_back(reserved)
            raise

    @contextlib.asynccontextmanager
    async def _answered(self, reserved: Reserved | None) -> AsyncIterator[None]:
        """Once the provider has answered the request (any HTTP status), it reached the
        provider by then: the budget counts it in its windows until then, not for the
        whole margin. A request with no answer (a timeout, a lost connection) may still
        be read by the provider later, and keeps counting for the margin, if it began
        to leave; one that failed or was cancelled before its first byte (no connection
        to be had, called off where it left, the call's own error) is given back. What
        the answer said of the provider's window (`report_window`) goes to the budget
        too. Either way its connection is free again."""
        unanswered = False
        try:
            with window_reports() as reports:
                try:
                    yield
                except ProviderError as exc:
                    unanswered = exc.status is None
                    if reserved is not None and not unanswered:
                        _note_answer(reserved, reports)
                    raise
                except BaseException:
                    unanswered = True
                    raise
                if reserved is not None:
                    _note_answer(reserved, reports)
        finally:
            self._let_go(reserved)
            if unanswered:
                await _unsent_given_back(reserved)

    def _let_go(self, reserved: Reserved | None) -> None:
        if reserved is not None and reserved.holds_connection:  # once, however it ends
            reserved.holds_connection = False
            self._connections.release()

    def _observe(self, operation: str, result: str, started: float) -> None:
        metrics.PROVIDER_CALLS.labels(operation, result).observe(self._monotonic() - started)


async def _unsent_given_back(reserved: Reserved | None) -> None:
    """The reservation back to the budget if its request is known never to have
    begun to leave (`Reserved.unsent`): its places go to other requests now, not when
    its windows end. Only a stamped one (its client notes how far its request got),
    and never one `_renew` let go."""
    if reserved is None or not reserved.unsent or reserved.renewing:
        return
    await _unused_given_back(reserved.budget, reserved.reservation)


async def _unused_given_back(budget: SharedBudget, reservation: Reservation) -> None:
    """A reservation whose request never left, given back and counted (one of no
    bucket has nothing to give back)."""
    if reservation.stamps:
        metrics.BUDGET_GIVEN_BACK.labels(reservation.operation).inc()
        await _given_back(budget, reservation)


async def _given_back(budget: SharedBudget, reservation: Reservation) -> None:
    """A reservation not used, given back (`SharedBudget.give_back`: even as its task
    is cancelled, logged should it fail). Waited for, not awaited: however it ends,
    the caller's own error stands, and a cancel of the caller leaves it running."""
    await asyncio.wait({budget.give_back(reservation)})


def _note_answer(reserved: Reserved, reports: Sequence[WindowReport]) -> None:
    reserved.budget.answered(reserved.reservation)
    if reports:
        reserved.budget.told(reserved.reservation, reports[-1])


async def _guarded(call: Callable[[], Awaitable[T]], guard: Callable[[], None], bulk: bool) -> T:
    """`call()` with `guard` and `bulk` for the requests it paces; the buckets of its last
    request stay readable by the caller (a 429 stands for them) until its next call."""
    _REQUEST_BUCKETS.set(())
    token, bulk_token = _GUARD.set(guard), _BULK.set(bulk)
    try:
        return await call()
    finally:
        _GUARD.reset(token)
        _BULK.reset(bulk_token)


def is_throttled(exc: RetryableProviderError) -> bool:
    """A 429, or a refusal the provider client recognised as its rate limit in another
    shape (ActiveCampaign's bulk import answers 400 "Rate limit exceeded.")."""
    return exc.status == 429 or exc.code == RATE_LIMITED


def until_next_minute(epoch_s: float) -> float:
    """Seconds to the next epoch minute: how long a `rate_limited` refusal without a
    Retry-After is waited out (a 429 without one pauses nothing, as before). Per-minute
    windows (ActiveCampaign's bulk import) reset then."""
    return 60.0 - epoch_s % 60.0


def _capped(operation: str, retry_after: float) -> float:
    if retry_after <= MAX_RETRY_AFTER_S:
        return retry_after
    log.warning(
        "%s: the provider asked to wait %.0f s; waiting %.0f s (the cap)",
        operation,
        retry_after,
        MAX_RETRY_AFTER_S,
    )
    return MAX_RETRY_AFTER_S
