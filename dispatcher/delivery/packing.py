"""Packing a full sync's people into bulk import jobs: as few jobs as the
provider's limits allow (`Limits.import_profiles`: people and bytes per job),
people kept in order. The bytes are estimates from each person's profile
(`estimated_size`); the provider checks the real body and refuses one over its
limit, and the worker then splits that job."""

from __future__ import annotations

import orjson

# `pack` (in the provider interface: a provider's enrolment plans use it too).
from dispatcher.providers.base import Profile, pack

__all__ = ["PROFILE_WRAPPING_BYTES", "estimated_size", "pack"]

# A profile's own wrapping in a job (its resource type, key names longer than
# ours, separators), beyond the JSON of its fields.
PROFILE_WRAPPING_BYTES = 96


def estimated_size(profile: Profile) -> int:
    """At most about the bytes `profile` adds to a job's body. (orjson writes
    the dataclass itself: `dataclasses.asdict` copies it deeply first, and cost
    some thirty times more.)"""
    fields = orjson.dumps(profile, default=str)
    return len(fields) + PROFILE_WRAPPING_BYTES
