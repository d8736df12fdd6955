"""The provider-neutral campaign send pieces (common/campaign_sends.py): the compact message
record with its views' queries, the schedule, and the seeded engagement's configuration and
deterministic draws."""

from __future__ import annotations

import random

import pytest

from dispatcher.sandbox.common.campaign_sends import (
    CLICKED,
    DEFAULT_CLICK_URL,
    DELIVERED,
    OPENED,
    CampaignContent,
    CampaignMessageBook,
    CampaignSchedule,
    EngagementSeed,
    MessageFilter,
    Rates,
    SendBuilder,
    drawn_engagements,
    first_link,
)

CONTENT = CampaignContent(
    subject_template="Hi {name}",
    subject=lambda values: f"Hi {values[0]}",
    body=lambda values: f"<p>{values[0]}</p>",
    headers=lambda message_id, email: {"X-Message": f"{message_id}:{email}"},
)


def builder(campaign_id: str, people: list[tuple[str, str | None]]) -> SendBuilder:
    """A send of one message a person: (email, reason skipped or None)."""
    send = SendBuilder(campaign_id, f"Campaign {campaign_id}", "email", CONTENT, 1_800_000_000.0)
    for email, reason in people:
        if reason is None:
            send.sent(email, email, (email.split("@")[0],))
        else:
            send.skipped(email, email, (email.split("@")[0],), reason)
    return send


def test_messages_get_consecutive_ids_across_sends_and_render_when_viewed() -> None:
    book = CampaignMessageBook()
    first = book.record(builder("c1", [("a@x.io", None), ("b@x.io", "never subscribed")]))
    second = book.record(builder("c2", [("a@x.io", None)]))

    assert (list(first.ids()), list(second.ids())) == ([1, 2], [3])
    page, total = book.messages(MessageFilter())
    assert total == 3
    assert page[0] == {
        "id": 1,
        "campaign_id": "c1",
        "campaign_name": "Campaign c1",
        "channel": "email",
        "email": "a@x.io",
        "to": "a@x.io",
        "status": "sent",
        "reason": None,
        "subject": "Hi a",
        "body": "<p>a</p>",
        "headers": {"X-Message": "1:a@x.io"},
        "sent_at": "2027-01-15T08:00:00.000000+00:00",
    }
    assert (page[1]["status"], page[1]["reason"], page[1]["headers"]) == (
        "skipped",
        "never subscribed",
        {},
    )
    assert book.find(3) == page[2] and book.find(4) is None


def test_the_views_filter_page_and_sum_up() -> None:
    book = CampaignMessageBook()
    people = [(f"p{i}@x.io", None if i % 2 else "unsubscribed") for i in range(6)]
    book.record(builder("c1", people))
    book.record(builder("c1", [("late@x.io", None)]))  # one campaign in two sends
    book.record(builder("c2", people[:2]))

    page, total = book.messages(MessageFilter("c1", status="sent"), limit=2, offset=1)
    assert total == 4 and [m["email"] for m in page] == ["p3@x.io", "p5@x.io"]
    assert book.messages(MessageFilter(email="P1@X.IO"))[1] == 2
    assert book.summary() == {
        "campaigns": {
            "c1": {"name": "Campaign c1", "sent": 4, "skipped": 3},
            "c2": {"name": "Campaign c2", "sent": 1, "skipped": 1},
        }
    }
    assert list(book.sent_emails("c1")) == ["p1@x.io", "p3@x.io", "p5@x.io", "late@x.io"]
    book.clear()
    assert book.messages(MessageFilter()) == ([], 0)


def test_the_schedule_gives_what_fell_due_once_in_due_order() -> None:
    schedule = CampaignSchedule()
    schedule.add("later", 20.0)
    schedule.add("sooner", 10.0)

    assert not schedule.due(9.0) and schedule.take_due(9.0) == []
    assert schedule.due(25.0)
    assert schedule.take_due(25.0) == [("sooner", 10.0), ("later", 20.0)]
    assert schedule.take_due(25.0) == []


def test_the_configuration_sets_each_subjects_rates_over_the_default() -> None:
    seed = EngagementSeed.from_json(
        {"seed": 5, "default": {"opened": 0.2}, "by_subject": {"Hi": {"clicked": 0.5}}}
    )

    assert seed.rates("Hi") == Rates(delivered=1.0, opened=0.2, clicked=0.5)
    assert seed.rates("Other") == Rates(delivered=1.0, opened=0.2, clicked=0.0)
    assert EngagementSeed.from_json({"seed": 5}).default == Rates(1.0, 0.0, 0.0)


@pytest.mark.parametrize("message_id", range(1, 30))
def test_a_draw_is_three_numbers_of_random_random_seeded_with_seed_and_message_id(
    message_id: int,
) -> None:
    rates = Rates(delivered=0.8, opened=0.5, clicked=0.5)
    draw = random.Random(f"9:{message_id}").random
    delivered, opened, clicked = draw() < 0.8, draw() < 0.5, draw() < 0.5
    expected = [DELIVERED] * delivered
    expected += [OPENED] * (delivered and opened)
    expected += [CLICKED] * (delivered and opened and clicked)

    drawn = drawn_engagements(9, message_id, rates, lambda: 'x <a href="https://a.io/p?q=1">')

    assert [d.kind for d in drawn] == expected
    assert all(d.url == ("https://a.io/p?q=1" if d.kind == CLICKED else None) for d in drawn)


def test_a_click_goes_to_the_first_link_else_example_com() -> None:
    assert first_link("see http://one.io/a then https://two.io") == "http://one.io/a"
    assert first_link('<a href="https://two.io/x">') == "https://two.io/x"
    assert first_link("no link here") == DEFAULT_CLICK_URL
