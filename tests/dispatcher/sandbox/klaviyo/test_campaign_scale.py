"""A campaign to a big list: the send is quick and its record compact (the figures for
500,000 recipients were measured by hand; this keeps 20,000 in the suite)."""

from __future__ import annotations

import time
import tracemalloc

from dispatcher.sandbox.klaviyo.campaigns import NewCampaign
from dispatcher.sandbox.klaviyo.consent import Planted
from dispatcher.sandbox.klaviyo.state import SandboxState

RECIPIENTS = 20_000
HTML = (
    '<p>Hello {{ first_name|default:"friend" }},</p>'
    + "<p>Our spring sale starts today.</p>" * 40
    + '<a href="{{ person|lookup:"marketing_preferences_url" }}">Unsubscribe</a>'
)


def _account(recipients: int) -> tuple[SandboxState, str]:
    """An account whose list holds `recipients` profiles, one in ten unsubscribed."""
    state = SandboxState(clock=lambda: 1_800_000_000.0)
    at = state.now_iso()
    list_id = state.lists.create("Spring sale: part A", None, at).id
    for index in range(recipients):
        email = f"person{index}@example.com"
        preferences = f"https://prefs.example/p/{index:08d}?sig=0123456789abcdef0123456789abcdef"
        attributes = {
            "email": email,
            "first_name": f"Name{index % 500}",
            "properties": {"marketing_preferences_url": preferences},
        }
        state.profiles.plant(attributes, at)
        consent = {"email": "UNSUBSCRIBED" if index % 10 == 0 else "SUBSCRIBED"}
        state.consent.plant({"email": email}, Planted(consent, None, [list_id]))
    return state, list_id


def test_twenty_thousand_recipients_are_sent_in_well_under_a_second_each_message_compact() -> None:
    state, list_id = _account(RECIPIENTS)
    message = {
        "channel": "email",
        "label": "Spring",
        "content": {"subject": "Hi {{ first_name }}", "from_email": "a@b.c", "from_label": "S"},
    }
    now = state.clock()
    created = state.campaigns.create(
        NewCampaign("Spring", [list_id], [], {"method": "immediate"}, message), now
    )
    state.campaigns.assign(created.message_id, "tpl", HTML, None, now)
    state.campaigns.start_send(created.id, now)

    tracemalloc.start()
    started = time.perf_counter()
    state.campaigns.send_due()
    elapsed = time.perf_counter() - started  # with tracemalloc on: several times slower
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    state.webhooks.close()

    summary = state.campaigns.book.summary()["campaigns"][created.id]
    assert (summary["sent"], summary["skipped"]) == (RECIPIENTS * 9 // 10, RECIPIENTS // 10)
    assert elapsed < 5.0
    # A rendered body alone is about 1.5 KB; the record keeps the values it is made of.
    assert kept / RECIPIENTS < 300, f"{kept / RECIPIENTS:.0f} bytes a message"
