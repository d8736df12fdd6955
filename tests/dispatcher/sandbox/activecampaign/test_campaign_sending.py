"""The ActiveCampaign sandbox sends a scheduled campaign when it falls due by its clock: one
message for each contact on its lists, sent to those subscribed and not excluded, skipped with
the reason otherwise, rendered from the contact as held then, with the provider's
List-Unsubscribe headers; the campaign goes 1 -> 2 -> 5 with its counters. The record's views:
/_sandbox/campaign-messages, .../summary, .../emails."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from dispatcher.sandbox.activecampaign.campaign_sending import SENDING_S
from tests.dispatcher.sandbox.activecampaign.campaigning import (
    campaign_row,
    scheduled_date,
    send_campaign,
    subscribe,
)
from tests.dispatcher.sandbox.activecampaign.conftest import (
    IMPORT_DELAY_S,
    START,
    answer,
    create_field,
    create_list,
    sync_contact,
)

ADA, BO, CY, DEE = "ada@example.com", "bo@example.com", "cy@example.com", "dee@example.com"


def messages(raw: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = answer(raw.get("/_sandbox/campaign-messages", params=query), 200)[
        "messages"
    ]
    return found


def advance(raw: httpx.Client, seconds: float) -> None:
    answer(raw.post("/_sandbox/clock", json={"advance_s": seconds}), 200)


def audience(api: httpx.Client, raw: httpx.Client) -> str:
    """A list with Ada and Bo subscribed, Cy unsubscribed and Dee subscribed but on the
    account's exclusion list."""
    list_id = create_list(api)
    for email, status in ((ADA, 1), (BO, 1), (CY, 2), (DEE, 1)):
        subscribe(api, sync_contact(api, email, firstName=email[:2].title())["id"], list_id, status)
    assert raw.post("/_sandbox/exclusions", json={"emails": [DEE]}).status_code == 204
    return list_id


def test_a_campaign_goes_at_once_to_those_subscribed_and_skips_the_others(
    api: httpx.Client, raw: httpx.Client
) -> None:
    list_id = audience(api, raw)

    campaign_id = send_campaign(api, [list_id], subject="Hi %FIRSTNAME%", name="Spring")

    sent = messages(raw, campaign_id=campaign_id)
    assert [(m["email"], m["status"], m["reason"]) for m in sent] == [
        (ADA, "sent", None),
        (BO, "sent", None),
        (CY, "skipped", f"unsubscribed on list {list_id}"),
        (DEE, "skipped", "on the account's exclusion list"),
    ]
    ada = sent[0]
    assert (ada["campaign_id"], ada["campaign_name"], ada["channel"]) == (
        campaign_id,
        "Spring",
        "email",
    )
    assert (ada["to"], ada["subject"]) == (ADA, "Hi Ad")


def test_the_campaign_is_sending_then_completed_with_its_counters(
    api: httpx.Client, raw: httpx.Client
) -> None:
    campaign_id = send_campaign(api, [audience(api, raw)])

    sending = campaign_row(api, campaign_id)
    advance(raw, SENDING_S)
    completed = campaign_row(api, campaign_id)

    assert (sending["status"], sending["send_amt"], sending["total_amt"]) == ("2", "2", "2")
    assert sending["ldate"] is None
    assert completed["status"] == "5" and completed["ldate"] >= completed["sdate"]


def test_a_scheduled_campaign_waits_for_its_date_on_the_sandbox_clock(
    api: httpx.Client, raw: httpx.Client
) -> None:
    list_id = audience(api, raw)
    campaign_id = send_campaign(api, [list_id], scheduled=scheduled_date(3600))
    contact = sync_contact(api, "late@example.com")["id"]
    subscribe(api, contact, list_id)  # before the date: on the list when it goes

    advance(raw, 3000)
    before = (messages(raw), campaign_row(api, campaign_id)["status"])
    advance(raw, 600)

    assert before == ([], "1")
    row = campaign_row(api, campaign_id)
    assert (row["status"], row["sdate"]) == ("5", _iso(3600))
    assert row["ldate"] == _iso(3600 + SENDING_S), "completed by the clock, a second after"
    emails = raw.get("/_sandbox/campaign-messages/emails", params={"campaign_id": campaign_id})
    assert emails.headers["content-type"].startswith("text/plain")
    assert emails.text.splitlines() == [ADA, BO, "late@example.com"]


def test_contacts_imported_before_the_date_are_sent_to(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    list_id = create_list(api)
    campaign_id = send_campaign(api, [list_id], scheduled=scheduled_date(600))
    contacts = [{"email": ADA, "first_name": "Ada", "subscribe": [{"listid": list_id}]}]
    answer(api.post("/import/bulk_import", json={"contacts": contacts}), 200)

    advance(raw, 3600)  # the import completed (4 s) long before the campaign fell due

    assert ac.campaign_summary() == {
        "campaigns": {campaign_id: {"name": "Spring sale", "sent": 1, "skipped": 0}}
    }


def test_a_contact_on_several_of_its_lists_gets_one_message(
    api: httpx.Client, raw: httpx.Client
) -> None:
    news, offers = create_list(api, "News"), create_list(api, "Offers")
    contact = sync_contact(api, ADA)["id"]
    subscribe(api, contact, news, status=2)
    subscribe(api, contact, offers)

    campaign_id = send_campaign(api, [news, offers])

    assert [(m["email"], m["status"]) for m in messages(raw, campaign_id=campaign_id)] == [
        (ADA, "sent")
    ]


def test_the_message_is_rendered_from_the_contact_as_held_when_it_went(
    api: httpx.Client, raw: httpx.Client
) -> None:
    list_id = create_list(api)
    url_field = create_field(api, "marketing_preferences_url")
    link = [{"field": url_field, "value": "https://shop.example/prefs?c=1&s=x"}]
    contact = sync_contact(api, ADA, firstName="<Ada & Co>", fieldValues=link)["id"]
    subscribe(api, contact, list_id)
    html = (
        "<p>Dear %FIRSTNAME% %IF $LASTNAME != ''%%LASTNAME%%ELSE%Tom & Jerry%/IF%,</p>"
        "<p>50%OFF% for 100% of you, %EMAIL%</p>"
        '<a href="%MARKETING_PREFERENCES_URL%">Preferences</a>'
    )

    campaign_id = send_campaign(api, [list_id], subject="%FIRSTNAME%: 50% off", html=html)
    sync_contact(api, ADA, firstName="Changed")  # after it went: the message keeps Ada

    (message,) = messages(raw, campaign_id=campaign_id)
    assert message["subject"] == "<Ada & Co>: 50% off"
    assert message["body"] == (
        "<p>Dear &lt;Ada &amp; Co&gt; Tom &amp; Jerry,</p>"
        "<p>50%OFF% for 100% of you, ada@example.com</p>"
        '<a href="https://shop.example/prefs?c=1&amp;s=x">Preferences</a>'
    )


def test_each_message_carries_the_providers_list_unsubscribe_headers(
    api: httpx.Client, raw: httpx.Client
) -> None:
    campaign_id = send_campaign(api, [audience(api, raw)])

    first, second = messages(raw, campaign_id=campaign_id, status="sent")

    assert first["headers"] == {
        "List-Unsubscribe": (
            f"<https://sandbox.activehosted.com/unsubscribe/{campaign_id}/{first['id']}>, "
            f"<mailto:unsubscribe-{campaign_id}-{first['id']}@sandbox.activehosted.com>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert first["headers"]["List-Unsubscribe"] != second["headers"]["List-Unsubscribe"]


def test_the_views_filter_page_and_sum_up(api: httpx.Client, raw: httpx.Client) -> None:
    list_id = audience(api, raw)
    spring = send_campaign(api, [list_id], name="Spring")
    summer = send_campaign(api, [list_id], name="Summer")

    summary = answer(raw.get("/_sandbox/campaign-messages/summary"), 200)
    skipped = answer(raw.get("/_sandbox/campaign-messages", params={"status": "skipped"}), 200)
    page = answer(raw.get("/_sandbox/campaign-messages", params={"limit": 2, "offset": 3}), 200)

    assert summary == {
        "campaigns": {
            spring: {"name": "Spring", "sent": 2, "skipped": 2},
            summer: {"name": "Summer", "sent": 2, "skipped": 2},
        }
    }
    assert skipped["total"] == 4 and {m["email"] for m in skipped["messages"]} == {CY, DEE}
    assert page["total"] == 8
    assert [(m["campaign_id"], m["email"]) for m in page["messages"]] == [
        (spring, DEE),
        (summer, ADA),
    ]
    assert [m["campaign_id"] for m in messages(raw, email=BO.upper())] == [spring, summer]


def test_forgetting_the_log_forgets_the_messages_not_the_campaign(
    api: httpx.Client, raw: httpx.Client
) -> None:
    campaign_id = send_campaign(api, [audience(api, raw)])
    assert len(messages(raw)) == 4

    assert raw.delete("/_sandbox/requests").status_code == 204

    assert messages(raw) == []
    assert campaign_row(api, campaign_id)["send_amt"] == "2"


def test_twenty_thousand_imported_recipients_are_sent_to_quickly(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    list_id = create_list(api)
    url_field = create_field(api, "marketing_preferences_url")
    emails = [f"person{n}@example.com" for n in range(20_000)]
    for start in range(0, len(emails), 250):  # 80 imports, under the 100 a minute
        chunk = [_imported(email, list_id, url_field) for email in emails[start : start + 250]]
        answer(api.post("/import/bulk_import", json={"contacts": chunk}), 200)
    advance(raw, IMPORT_DELAY_S)  # every chunk imported before the campaign is sent
    html = "<p>%IF $FIRSTNAME != ''%%FIRSTNAME%%ELSE%friend%/IF%</p>%MARKETING_PREFERENCES_URL%"
    campaign_id = send_campaign(api, [list_id], html=html)

    started = time.perf_counter()
    summary = ac.campaign_summary()
    took_s = time.perf_counter() - started

    assert summary["campaigns"][campaign_id]["sent"] == 20_000
    assert took_s < 5, f"the send took {took_s:.1f} s"
    listed = raw.get("/_sandbox/campaign-messages/emails", params={"campaign_id": campaign_id})
    assert listed.text.splitlines() == emails
    last = ac.campaign_messages(campaign_id, limit=1, offset=19_999)["messages"][0]
    assert last["body"] == "<p>Person19999</p>https://shop.example/prefs/19999"


def _iso(after_start_s: float) -> str:
    return datetime.fromtimestamp(START + after_start_s, UTC).isoformat(timespec="seconds")


def _imported(email: str, list_id: str, url_field: str) -> dict[str, Any]:
    number = email.removeprefix("person").split("@")[0]
    fields = [{"id": int(url_field), "value": f"https://shop.example/prefs/{number}"}]
    subscribed = [{"listid": list_id}]
    return {
        "email": email,
        "first_name": f"Person{number}",
        "fields": fields,
        "subscribe": subscribed,
    }
