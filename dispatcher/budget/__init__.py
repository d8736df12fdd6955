"""One provider budget per account, shared by every dispatcher replica (issue 13 §2).

The provider keeps its limits per account and per rate bucket (`Limits.rates`: an
endpoint for Klaviyo, the whole account and bulk import for ActiveCampaign), as
fixed windows (1 s, 1 min, a day) whose alignment we do not know, and counts
HTTP requests. Every request reserves one call in each bucket it draws from
before it goes, in NATS KV, so the replicas together stay within every window of
every bucket:
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

Rule. A call may be stamped `t` (never below the newest stamp: stamps only grow)
when, for each window of `calls` in `W` seconds, fewer than `calls` stamps lie in
(t - (W + m), t], m being the margin (`margin_s`).

Proof that the provider never sees more than `calls` in one of its windows.
1. Every stamp was admitted by the rule against all stamps before it, and stamps
   are written in order (compare-and-set on one entry serialises writers, and a
   new stamp is at least the newest). So any half-open interval of length W + m
   holds at most `calls` stamps: take its newest stamp t; all others in it lie in
   (t - (W + m), t] and were there when t was admitted.
2. Assume a request reaches the provider within m after its stamp: at most m/2
   locally (`SharedBudget.fresh`: the gate sends only on a reservation at most m/2
   old, else it gives it back and reserves again) and m/2 on the network and in
   clock differences between replicas. Calls the provider counts in one window
   [k W, (k + 1) W) then carry stamps in [k W - m, (k + 1) W), an interval of
   length W + m: at most `calls` of them, by 1. This holds whatever the window's
   alignment, and for every window of the bucket.
Stamps of reservations not used, and calls the provider refused, only make the
log count more than the provider does: safe. The price is m per window: a minute
of 150 calls runs at 150 per 60 + m seconds (99.8 % at m = 0.1 s).

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

from dispatcher.budget.shared import DEFAULT_MARGIN_S, Reservation, SharedBudget, account_id

__all__ = ["DEFAULT_MARGIN_S", "Reservation", "SharedBudget", "account_id"]
