"""A webhook's form body, encoded a pair at a time (cached for a campaign's many events), is
byte for byte what urlencode makes: its SHA-256 is the event's external id."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.sandbox.activecampaign.webhook_events import form_body


@settings(max_examples=300, deadline=None)
@given(form=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=8))
def test_the_form_body_is_what_urlencode_makes(form: dict[str, str]) -> None:
    assert form_body(form) == urlencode(form).encode()
    assert form_body(form) == urlencode(form).encode(), "and again, from the cache"
