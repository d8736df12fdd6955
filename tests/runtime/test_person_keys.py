"""The person key is one function for the service's `contact_key` and the
dispatcher's fences: a person's changes and a full sync meet under it."""

from __future__ import annotations

from marketing_runtime.person_keys import person_key

from dispatcher.ordering import fences
from service.common.validation import email_key, normalized_email_key

# SHA-256 of "ada@example.com" (as `printf %s ada@example.com | sha256sum` says).
ADA = "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"


def test_the_key_is_the_sha256_of_the_normalised_email() -> None:
    assert person_key("ada@example.com") == ADA


def test_the_service_and_the_dispatcher_key_a_person_alike() -> None:
    assert email_key("  Ada@Example.COM ") == ADA
    assert normalized_email_key is person_key
    assert fences.person_key is person_key
