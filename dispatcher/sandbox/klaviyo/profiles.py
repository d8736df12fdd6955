"""The fake account's profiles: identity, the usual fields, location and custom properties.

Written by profile-import and profile-bulk-import jobs (Klaviyo merges: a field or property a
call leaves out keeps its value), made known by consent jobs (which create the profiles they
name), and planted directly by the control endpoint for reconcile tests. A profile is keyed on
its first identifier (email, else phone number, else external id; email without case), as its id
is, and found by any identifier it has been given."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.sandbox.common.campaign_sends import as_text

# In the order a profile's id is derived from (the first one it has).
IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "id")
PERSON_PREFIX = "person."  # a value name read as `person|lookup` reads it (values_many)
FIELDS = (*IDENTIFIERS[:-1], "first_name", "last_name", "organization", "locale", "title", "image")
_FIELD_NAMES = frozenset(FIELDS)


def fake_profile_id(key: str) -> str:
    """A stable 26-character id shaped like Klaviyo's (upper-case letters and digits),
    derived from the profile's identity. (Hex, not base32: `base64.b32encode` is written in
    Python, and a full sync creates a million profiles.)"""
    return "01" + hashlib.sha256(key.encode()).hexdigest()[:24].upper()


def identity_keys(attributes: dict[str, Any]) -> list[str]:
    """ "email:a@b.c", "phone_number:+1...", ...: every identifier the attributes carry."""
    keys = []
    for name in IDENTIFIERS:
        value = attributes.get(name)
        if value:
            text = str(value)
            keys.append(f"{name}:{text.lower() if name == 'email' else text}")
    return keys


@dataclass(slots=True)  # no __dict__ per profile: an account may hold a million
class StoredProfile:
    id: str
    created: str
    updated: str
    fields: dict[str, Any] = field(default_factory=dict)
    location: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            **{name: self.fields.get(name) for name in FIELDS},
            "location": dict(self.location),
            "properties": dict(self.properties),
        }


class ProfileStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._primary: dict[str, StoredProfile] = {}  # first identifier -> profile
        self._by_key: dict[str, StoredProfile] = {}  # any identifier -> profile
        self._by_id: dict[str, StoredProfile] = {}

    def upsert(self, attributes: dict[str, Any], at: str) -> tuple[str, bool]:
        """Merge validated profile attributes in; (profile id, created)."""
        keys = identity_keys(attributes)
        with self._lock:
            return self._merge(attributes, keys, at)

    def upsert_many(self, profiles: list[dict[str, Any]], at: str) -> None:
        """`upsert` each (a job's profiles: the lock is taken once, not per profile)."""
        keyed = [(attributes, identity_keys(attributes)) for attributes in profiles]
        with self._lock:
            for attributes, keys in keyed:
                self._merge(attributes, keys, at)

    def _merge(self, attributes: dict[str, Any], keys: list[str], at: str) -> tuple[str, bool]:
        profile, created = self._find_or_create(keys, at)
        fields = profile.fields
        # The attributes' own names, not every field's: a consent job's
        # profile is an email alone, and a sync sends a million of them.
        for name, value in attributes.items():
            if value is not None and name in _FIELD_NAMES:
                fields[name] = value
        if location := attributes.get("location"):
            profile.location.update(location)
        if properties := attributes.get("properties"):
            profile.properties.update(properties)
        profile.updated = at
        self._index(profile, keys)
        return profile.id, created

    def plant(self, attributes: dict[str, Any], at: str) -> dict[str, Any]:
        """Set fields, location and properties as given (replacing, not merging): drift a
        reconcile must find. Creates the profile when unknown."""
        keys = identity_keys(attributes)
        with self._lock:
            profile, _ = self._find_or_create(keys, at)
            profile.fields.update({n: attributes[n] for n in FIELDS if n in attributes})
            for name in ("location", "properties"):
                if name in attributes:
                    setattr(profile, name, dict(attributes[name] or {}))
            profile.updated = at
            self._index(profile, keys)
            return profile.to_json()

    def find(self, identifier: str, value: str) -> dict[str, Any] | None:
        """The profile with this identifier ("id", "email", "phone_number", "external_id")."""
        with self._lock:
            if identifier == "id":
                profile = self._by_id.get(value)
            else:
                profile = self._by_key.get(identity_keys({identifier: value})[0])
            return None if profile is None else profile.to_json()

    def identity(self, identifier: str, value: str) -> dict[str, Any] | None:
        """The id, email and phone number of the profile with this identifier (`find`
        without copying the rest: an engagement needs no more, and a campaign's seeded
        engagements are half a million)."""
        with self._lock:
            if identifier == "id":
                profile = self._by_id.get(value)
            else:
                profile = self._by_key.get(identity_keys({identifier: value})[0])
            if profile is None:
                return None
            fields = profile.fields
            return {
                "id": profile.id,
                "email": fields.get("email"),
                "phone_number": fields.get("phone_number"),
            }

    def values_many(
        self, people: Iterable[tuple[str | None, str | None]], names: Sequence[str]
    ) -> list[tuple[str | None, ...]]:
        """For each (email, phone number), the named values of its profile as text (None
        when unset): an attribute ("first_name"), or what `person|lookup:"<key>"` finds
        ("person.<key>": the attribute of that name when set, else the custom property).
        A person without a profile has their email and phone number only. The lock is taken
        once, and nothing is copied but the tuples (a campaign's 500,000 recipients)."""
        readers = [_reader(name) for name in names]
        found: list[tuple[str | None, ...]] = []
        with self._lock:
            for email, phone in people:
                key = f"email:{email.lower()}" if email else f"phone_number:{phone}"
                profile = self._by_key.get(key)
                if profile is None:
                    profile = StoredProfile("", "", "", {"email": email, "phone_number": phone})
                found.append(tuple(as_text(read(profile)) for read in readers))
        return found

    def delete(self, identifier: str, value: str) -> str | None:
        """Forget the profile with this identifier (a data privacy deletion); its email,
        or None when there was none."""
        with self._lock:
            if identifier == "id":
                profile = self._by_id.get(value)
            else:
                profile = self._by_key.get(identity_keys({identifier: value})[0])
            if profile is None:
                return None
            for index in (self._primary, self._by_key):
                for key in [k for k, p in index.items() if p is profile]:
                    del index[key]
            del self._by_id[profile.id]
            email = profile.fields.get("email")
            return str(email) if email else None

    def _find_or_create(self, keys: list[str], at: str) -> tuple[StoredProfile, bool]:
        """The profile of these identity keys (`identity_keys` of the attributes)."""
        if not keys:
            raise ValueError("a profile needs an email, phone_number or external_id")
        # Keyed on the first identifier only (email before phone): two people sharing a phone
        # number stay two profiles, as they were before the sandbox kept more than ids.
        found = self._primary.get(keys[0])
        if found is not None:
            return found, False
        profile = StoredProfile(fake_profile_id(keys[0]), at, at)
        self._primary[keys[0]] = profile
        self._by_id[profile.id] = profile
        return profile, True

    def _index(self, profile: StoredProfile, keys: list[str]) -> None:
        """Any identifier finds the profile; one shared by several finds the first. (The
        profile's earlier identifiers were indexed when they were given: every field comes
        from attributes indexed here.)"""
        for key in keys:
            self._by_key.setdefault(key, profile)


def _reader(name: str) -> Callable[[StoredProfile], Any]:
    """How `values_many` reads the value `name` of a stored profile."""
    if not name.startswith(PERSON_PREFIX):
        return lambda profile: profile.fields.get(name)
    key = name.removeprefix(PERSON_PREFIX)
    if key not in _FIELD_NAMES:
        return lambda profile: profile.properties.get(key)

    def attribute_else_property(profile: StoredProfile) -> Any:
        value = profile.fields.get(key)
        return profile.properties.get(key) if value is None else value

    return attribute_else_property
