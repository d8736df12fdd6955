"""Garbage-collector settings for the long-running processes.

CPython's cyclic collector runs a young-generation pass every 700 net container
allocations, and from time to time a full pass over every object the process
holds. An ingest batch allocates thousands of short-lived dicts and lists (the
payloads), so at the default the service spent about a fifth of its CPU in the
collector during batch ingest (py-spy, README "Performance"). Almost none of
that work finds garbage: payloads are freed by reference counting the moment a
batch is answered.

Two changes, made once start-up is over:
- `gc.freeze()` moves everything alive then (modules, descriptors, compiled
  payload converters, SQLAlchemy and gRPC state) to the permanent generation,
  which full passes no longer walk;
- the young generation's threshold rises (default 20,000), so passes are
  rarer; real cycles are still collected, a little later.

A process whose long-lived objects are a store that only grows (the provider
sandboxes: a full sync leaves millions of profiles) may also turn full passes
off (`full_passes=False`): each walked the whole store again, finding nothing,
and cost the sandbox a fifth of its CPU during a full sync. Young passes still
collect cycles among new objects; a cycle that outlives two young passes is
then kept until the process ends.

The price: a frozen object that later becomes part of a garbage cycle is never
collected. Start-up objects (modules, classes, pools, caches) live as long as
the process, so that is a bounded amount, if any.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


# The oldest generation's threshold counts middle-generation passes: this many never come.
_NEVER = 2**31 - 1


def tune_after_startup(gen0_threshold: int, *, full_passes: bool = True) -> None:
    """Freeze the start-up heap and set the young generation's threshold (and,
    without `full_passes`, turn full passes off). `gen0_threshold` 0 leaves
    CPython's collector exactly as it was."""
    if gen0_threshold == 0:
        return
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2 if full_passes else _NEVER)
    log.info(
        "gc: %d start-up objects frozen, young generation threshold %d%s",
        gc.get_freeze_count(),
        gen0_threshold,
        "" if full_passes else ", no full passes",
    )
