"""One provider budget per account, shared by every dispatcher replica (issue 13 §2).

The provider keeps its limits per account and per rate bucket (`Limits.rates`: an
endpoint for Klaviyo, the whole account and bulk import for ActiveCampaign), as
fixed windows (1 s, 1 min, a day) whose alignment we do not know until its
answers tell it (below; Klaviyo's seconds are taken to be the clock's, further
below), and counts HTTP requests. Every request reserves one
call in each bucket it draws from before it goes, in NATS KV, so the replicas
together stay within every window of every bucket:
- an operation whose every call is one request has each call reserved by the
  gate in the buckets `Limits.rates` names for it (`acquire`): Klaviyo's
  upsert_profile, create_events, the four consent calls, request_erasure and
  start_import;
- an operation whose calls may make several requests is named in
  `Limits.paces_requests`, and the provider, given the gate's `RequestPacer`,
  awaits it before each of that operation's requests with the buckets of that
  request (`acquire_request`): every ActiveCampaign operation (an order is a look
  and a write, a first use of a field adds a look-up and a create), and Klaviyo's
  import_status (the job, then each page of its import errors, in the
  import-errors endpoint's own bucket) and read_person (the profile, then each
  page of its lists). So every request is counted however many a call turns out
  to make, in the bucket it really draws from (a tracked event spends event
  tracking's budget, an order the account's), and each is stamped right before
  it leaves.
Why per request rather than a declared worst case per call reserved up front:
the worst case is not bounded (a first use of several fields, a page of
look-ups), reserving it would keep most of a 5/s budget idle, and stamps taken
before a call's later requests would grow stale (the proof below needs each
request to leave within m/2 of its stamp). The price: one KV round trip per
request instead of per call (see "KV round trips").

Choice: a sliding log per bucket, one KV entry holding the stamps (epoch seconds)
of the calls reserved within the longest window, written by compare-and-set on the
entry's revision (`shared.py`; the rules are pure, in `log.py`). Slices of the
budget leased to replicas would save round trips but strand calls in idle
replicas, and a sliced 10/s window cannot be shared by four replicas without
waste; the log spends the whole budget wherever the work is.

Rule. A call counts in a window of W seconds from its stamp s until s + r, r being
how late it can have reached the provider: the margin m while it is in flight, and
once its answer came back (any HTTP status) the time to the answer plus a skew
allowance (`DEFAULT_SKEW_S`, for replicas' clocks), at most m (`SharedBudget.answered`).
A call may be stamped `t` (stamps only grow, each above the last) when, for each
window of `calls` in `W` seconds, fewer than `calls` calls still count after t - W.

Proof that the provider never sees more than `calls` in one of its windows.
1. A request leaves after its stamp, or at most 10 µs before it (calls of one instant
   get stamps a hair apart, `log._TIE_S`, which the rule adds to every window) and
   within m/2 of it (`SharedBudget.fresh`: the gate lets a request go only on a
   reservation at most m/2 old, else it gives it back and reserves again; its client
   looks again once the body is built, and where the request leaves, as its first
   bytes are about to be written, `providers.http_pool`, which there exchanges a
   stale stamp for one of now, admitted by this same rule, or calls the request
   off); it reaches the provider within m/2 more (the network, and clock differences
   between replicas), or, when answered, before its answer: so by s + r, whichever r
   the log held for it.
2. Suppose a window [a, a + W) of the provider held calls + 1 arrivals, and take the
   one of them stamped last, t. Every other was stamped before it, so was in the
   log when t was admitted (compare-and-set on one entry serialises writers), with
   s + r at least its arrival, which is at least a > (arrival of t) - W >= t - W: all
   `calls` of them counted after t - W, and t was not admissible. This holds
   whatever the window's alignment, and for every window of the bucket.
Stamps of reservations not used, and calls the provider refused, only make the
log count more than the provider does: safe. A stamp taken out of the log (a
reservation given back, `release`, or exchanged, `restamped`) must be of a request
the provider never saw: the
gate gives one back only when no request was made on it, or httpcore's trace of the
request reported its steps but not its headers going (`providers.base.Leaving`, noted
by the clients' hook `providers.http_pool.note_leaving`). A request over a transport
that traces nothing is never known unsent, and keeps counting. The price is r per window: a second
of 5 calls runs at 5 per 1 + r seconds, r about the skew (10 ms) and the answer's
time once answered; a minute of 150 at 150 per 60 + r.

The provider's own windows, once its answers say where they begin. A window of
unknown alignment must be counted as a sliding one, and that costs most where
calls are scarcest: a sync that spends a minute's 750 unsubscribe calls early can
make the 751st only 60 s after the first, the 752nd 60 s after the second, and so
on, though the provider's next minute may have begun long before. Klaviyo says on
every answer but a 429 when the endpoint's steady window ends (`RateLimit-Reset`,
whole seconds; the provider client reports it, `providers.base.report_window`).
From an answer to a request stamped s and answered at a, with reset n: the
provider's minute ends at some instant in [s + n - 1, a + n + 1] (rounded either
way, "approximate"), widened by the tie and the skew: the bucket's `Edge`, kept
in its entry for every replica, narrowed by each later answer. With an edge the
window of its length is counted as the provider counts it (`log._fits_fixed`): a
call may be stamped t when, in each window it may fall in (arriving in
[t - tie, t + m], the edge anywhere in its range), fewer than `calls` calls may fall.
Proof: a window of the provider's holds only calls that may fall in it by the
edge (it contains the true edge), and the last of them stamped was admitted only
with fewer than `calls` others counted there (they were in the log: stamps of one
window are less than W + m apart, within the horizon). This holds as long as the
edge does. Under the assumption below every answer's range holds the true edge,
so answers never disagree; as a safeguard for when it fails, a 429 drops the edge
(the windows are then counted sliding until a later answer tells it again), and so
does an answer that disagrees with it. The drops are best effort: a replica keeps
one pending until the entry holds it, but another replica's answer may bring an
edge back (an edge learnt before the 429 is not). No answer tells the burst
second's edge (Klaviyo's `RateLimit-*` are its steady window's): see the next
paragraph. What this assumes of the provider: its windows of
one length begin at a fixed phase (one every W seconds, as Klaviyo's "fixed-window"
limits and the sandbox's epoch-aligned ones do). Were they to begin at the first
request after one ends instead, the edge would drift and narrowing could settle on
a range without it: the provider's 429s would then show it (and drop the edge), no
silent overrun of what we were told.
An answer costs no round trip: it is written with the replica's next write of the
bucket, and meanwhile only its own view has it, so replicas see each other's
answers a call late (counting longer than needed: safe).

Klaviyo's 1-second windows, counted on the clock (`RateWindow.clock_aligned`).
Counted sliding, a second costs each of its calls r: a call goes 1 + r after the
call ten before it, r its answer's time (30 to 110 ms against the sandbox for a
job of 1,000 events, a round trip and more against Klaviyo), so a backlog's 100
calls need t10 + 9 (1 + r) seconds where Klaviyo's windows take them in 9 from
the first (README, figure 10: the ratio stayed near 0.76 whatever the decisions'
speed). Klaviyo
calls its windows fixed ones, and a fixed window is counted by the clock: its
seconds begin at whole seconds of epoch time on its servers' clock, as the
sandbox's do, and both its clock and ours are kept by NTP. So a window so marked
is counted as the provider's fixed windows (`_fits_fixed`, the proof above) with
the edge at our whole seconds, give or take the provider's skew
(`MARKETING_BUDGET_PROVIDER_SKEW_S`: `log.DEFAULT_PROVIDER_SKEW_S`, 50 ms,
unless stated; `log.clock_edge`). A call that may reach the provider within it of
an edge counts in both seconds, so the skew costs calls near each edge: a
sandbox on the replicas' host reads their own clock, and the local stack and the
bench's rate-limited replicas state 5 ms. What this assumes, and cannot check:
the provider's seconds begin within the skew of every replica's whole seconds
(each call's stamp is on its own replica's clock). Should they not, a call may be
refused: the 429 pauses the bucket as any does, and the entry then counts that
window sliding, for every replica, until `log.REALIGN_AFTER_S` (an hour) after
the pause (`BucketLog.aligned_from`). A wrong assumption thus costs the calls already on
their way when the first 429 came back (within one second), once an hour, each
retried as any refused call is: nothing is lost or sent twice. It gives up the
guarantee for any alignment so that a backlog can reach the provider's bound
(issue 15 asks 0.9 of it). The ActiveCampaign account's second, which no
document calls fixed, stays sliding.

Work that is not compliance work stops short of the compliance share of each
window of a bucket it shares with compliance work (`log.COMPLIANCE_SHARE`), so
consent, suppression and erasure calls always find room there. So does a call
of a compliance operation made as bulk work (`acquire(..., bulk=True)`, a full
sync's consent calls): a million of them must not take the share live
unsubscribes need. No call waits in a queue behind another: each computes its
own wait from the log. A 429 pauses
the bucket it stands for (`throttled`), for every replica: the pause is in the
entry, and a reservation waits it out.

KV round trips per reservation (a call, or a request of a provider that paces
its requests; one per bucket): one `update` when this replica wrote the bucket last
(its copy of the entry is current), three (`update` refused, `get`, `update`)
when another replica did. Within a replica one task at a time decides on a
bucket, on the entry as the previous one left it, so tasks woken for the same
freed call do not all try to take it (two replicas draining a backlog measured
2.6 operations a call). A batch of events that is not full first asks
`fill_wait` (one `get` per bucket) and keeps filling while no call is available
at the bucket's steady pace; then it reserves `paced`, so replicas at low load
spread their calls over the window instead of spending it on small batches at
its start.
"""

from dispatcher.budget.shared import (
    DEFAULT_MARGIN_S,
    Reservation,
    SharedBudget,
    account_id,
    give_backs_settled,
)

__all__ = ["DEFAULT_MARGIN_S", "Reservation", "SharedBudget", "account_id", "give_backs_settled"]
