"""Packing a full sync's people into bulk import jobs: as few jobs as the
provider's limits allow (`Limits.import_profiles`: people and bytes per job),
people kept in order. The bytes are estimates from each person's profile
(`estimated_size`); the provider checks the real body and refuses one over its
limit, and the worker then splits that job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import orjson

from dispatcher.providers.base import OperationLimits, Profile

T = TypeVar("T")
# A profile's own wrapping in a job (its resource type, key names longer than
# ours, separators), beyond the JSON of its fields.
PROFILE_WRAPPING_BYTES = 96


def estimated_size(profile: Profile) -> int:
    """At most about the bytes `profile` adds to a job's body. (orjson writes
    the dataclass itself: `dataclasses.asdict` copies it deeply first, and cost
    some thirty times more.)"""
    fields = orjson.dumps(profile, default=str)
    return len(fields) + PROFILE_WRAPPING_BYTES


def pack(items: Sequence[T], sizes: Sequence[int], limits: OperationLimits) -> list[list[T]]:
    """`items` in order, in jobs of at most `limits.max_items` and (counting
    `limits.wrapping_bytes` once per job) `limits.max_bytes`. A job is closed
    only when the next item would not fit; an item too large for any job goes
    alone (the provider refuses it, and it fails alone)."""
    jobs: list[list[T]] = []
    job: list[T] = []
    used = limits.wrapping_bytes
    for item, size in zip(items, sizes, strict=True):
        full = len(job) >= limits.max_items or (
            limits.max_bytes is not None and used + size > limits.max_bytes
        )
        if job and full:
            jobs.append(job)
            job, used = [], limits.wrapping_bytes
        job.append(item)
        used += size
    if job:
        jobs.append(job)
    return jobs
