"""Klaviyo's campaigns in the sandbox: templates and campaigns made through the API with
Klaviyo's bodies, answers, errors and limits; a send job sends the campaign when due by the
sandbox's clock to its lists' members who may get it, each message recorded rendered from the
profile as it stands then (GET /_sandbox/campaign-messages and its summary and emails views)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.klaviyo.catalogue import metric_id
from dispatcher.sandbox.klaviyo.templates import MAX_TEMPLATES
from tests.dispatcher.helpers import EpochClock, headers
from tests.dispatcher.sandbox.klaviyo.campaign_helpers import (
    HTML,
    SUBSCRIBED,
    assign,
    assign_body,
    campaign,
    campaign_body,
    campaign_messages,
    create_campaign,
    create_template,
    definition,
    email_campaign,
    ok,
    refused,
    send_job,
    template_body,
)

START = 1_800_000_000.0
ADA = "ada@example.com"
PREFS = "https://prefs.example/p/ada?sig=1&k=2"


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox, clock: EpochClock) -> Iterator[httpx.Client]:
    """Klaviyo's headers; the clock moves 1 s before each call (campaigns allow 10/s)."""

    def tick(request: httpx.Request) -> None:
        clock.advance(1.0)

    with httpx.Client(
        base_url=sandbox.base_url, headers=headers(), event_hooks={"request": [tick]}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def spring(sandbox: Sandbox) -> str:
    """The list a campaign part's recipients were imported into."""
    return sandbox.create_list("Spring sale: part A")


def member(sandbox: Sandbox, list_id: str, email: str, **fields: Any) -> None:
    sandbox.plant_profile(email=email, lists=[list_id], **fields)


def test_an_email_campaign_goes_to_its_subscribed_members_rendered_when_its_job_runs(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    properties = {"marketing_preferences_url": PREFS}
    member(sandbox, spring, ADA, first_name="Ada", properties=properties, consent=SUBSCRIBED)

    template = ok(http.post("/api/templates", json=template_body(HTML, text="Hi")), 201)["data"]
    assert template["type"] == "template"
    assert template["attributes"].keys() >= {"name", "editor_type", "html", "text", "created"}
    created = ok(http.post("/api/campaigns", json=campaign_body([spring])), 201)["data"]
    attributes = created["attributes"]
    assert (attributes["status"], attributes["archived"]) == ("Draft", False)
    assert attributes["audiences"] == {"included": [spring], "excluded": []}
    assert attributes["send_strategy"] == {"method": "immediate"}
    assert (attributes["scheduled_at"], attributes["send_time"]) == (None, None)
    (message,) = created["relationships"]["campaign-messages"]["data"]
    assert message["type"] == "campaign-message"

    assigned = assign(http, message["id"], template["id"])["data"]
    assert (assigned["type"], assigned["id"]) == ("campaign-message", message["id"])
    assert assigned["relationships"]["template"]["data"]["id"] == template["id"]
    ok(http.delete(f"/api/templates/{template['id']}"), 204)  # the message keeps its copy
    job = ok(send_job(http, created["id"]), 202)
    assert job["data"] == {
        "type": "campaign-send-job",
        "id": created["id"],
        "attributes": {"status": "queued"},
        "links": {"self": f"{sandbox.base_url}/api/campaign-send-jobs/{created['id']}/"},
    }

    assert campaign(http, created["id"])["status"] == "Sent"
    job_now = ok(http.get(f"/api/campaign-send-jobs/{created['id']}"))["data"]
    assert job_now["attributes"]["status"] == "complete"
    (sent,) = campaign_messages(http)
    assert sent | {"id": 0, "headers": {}, "sent_at": ""} == {
        "id": 0,
        "campaign_id": created["id"],
        "campaign_name": "Spring",
        "channel": "email",
        "email": ADA,
        "to": ADA,
        "status": "sent",
        "reason": None,
        "subject": "Spring for Ada",
        "body": (
            '<p>Hi Ada,</p><p><a href="https://shop.example/sale">Sale</a></p>'
            '<a href="https://prefs.example/p/ada?sig=1&amp;k=2">Unsubscribe</a>'
        ),
        "headers": {},
        "sent_at": "",
    }
    assert sent["sent_at"] == campaign(http, created["id"])["send_time"]


def test_campaigns_are_found_by_channel_and_name_and_the_channel_filter_is_required(
    http: httpx.Client, spring: str
) -> None:
    campaign_id, _ = create_campaign(http, [spring], name='Spring "A"')
    create_campaign(http, [spring], name="Autumn", message=definition("sms", body="Hi"))

    error = refused(http.get("/api/campaigns"))
    assert error["source"] == {"parameter": "filter"}
    name_filter = "and(equals(messages.channel,'email'),contains(name,\"Spring\"))"
    found = ok(http.get("/api/campaigns", params={"filter": name_filter}))["data"]
    assert [(c["id"], c["attributes"]["name"]) for c in found] == [(campaign_id, 'Spring "A"')]
    sms = ok(http.get("/api/campaigns", params={"filter": "equals(messages.channel,'sms')"}))
    assert [c["attributes"]["name"] for c in sms["data"]] == ["Autumn"]
    assert ok(http.get(f"/api/campaigns/{campaign_id}"))["data"]["id"] == campaign_id
    refused(http.get("/api/campaigns/NOPE"), 404)


MESSAGES = "/data/attributes/campaign-messages"
DEFINITION = f"{MESSAGES}/data/0/attributes/definition"


def _messages(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = attributes["campaign-messages"]["data"]
    return found


def _definition(attributes: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = _messages(attributes)[0]["attributes"]["definition"]
    return found


BAD_CAMPAIGNS = {
    "no name": (lambda a: a.pop("name"), "/data/attributes/name"),
    "unknown list": (
        lambda a: a.update(audiences={"included": ["NoList"]}),
        "/data/attributes/audiences/included/0",
    ),
    "no list": (
        lambda a: a.update(audiences={"included": []}),
        "/data/attributes/audiences/included",
    ),
    "two messages": (lambda a: _messages(a).append(_messages(a)[0]), f"{MESSAGES}/data"),
    "unknown channel": (lambda a: _definition(a).update(channel="fax"), f"{DEFINITION}/channel"),
    "no subject": (
        lambda a: _definition(a)["content"].pop("subject"),
        f"{DEFINITION}/content/subject",
    ),
    "other strategy": (
        lambda a: a.update(send_strategy={"method": "smart_send_time"}),
        "/data/attributes/send_strategy/method",
    ),
    "bad datetime": (
        lambda a: a.update(send_strategy={"method": "static", "datetime": "soon"}),
        "/data/attributes/send_strategy/datetime",
    ),
}


@pytest.mark.parametrize(("change", "pointer"), BAD_CAMPAIGNS.values(), ids=BAD_CAMPAIGNS.keys())
def test_a_campaign_body_klaviyo_refuses_is_a_400_naming_the_pointer(
    http: httpx.Client, spring: str, change: Any, pointer: str
) -> None:
    body = campaign_body([spring])
    change(body["data"]["attributes"])

    error = refused(http.post("/api/campaigns", json=body))

    assert (error["code"], error["source"]) == ("invalid", {"pointer": pointer})


def test_a_second_send_job_and_an_email_without_its_template_are_refused(
    http: httpx.Client, spring: str
) -> None:
    campaign_id, message_id = create_campaign(http, [spring])
    no_template = refused(send_job(http, campaign_id))
    assert "no template" in no_template["detail"]
    assert campaign(http, campaign_id)["status"] == "Draft"
    refused(http.get(f"/api/campaign-send-jobs/{campaign_id}"), 404)  # none yet
    assign(http, message_id, create_template(http))
    ok(send_job(http, campaign_id), 202)

    again = refused(send_job(http, campaign_id))

    assert again["detail"].startswith("The campaign is Sent: it has a send job already")
    assert again["source"] == {"pointer": "/data/id"}
    refused(send_job(http, "01NOSUCHCAMPAIGN"), 404)
    late = refused(
        http.post(
            "/api/campaign-message-assign-template",
            json=assign_body(message_id, create_template(http)),
        )
    )
    assert "no longer a Draft" in late["detail"]


def test_only_an_email_message_takes_a_template_and_unknown_ids_are_404(
    http: httpx.Client, spring: str
) -> None:
    template_id = create_template(http)
    _, sms_message = create_campaign(http, [spring], message=definition("sms", body="Hi"))
    _, email_message = create_campaign(http, [spring])
    path = "/api/campaign-message-assign-template"

    not_email = refused(http.post(path, json=assign_body(sms_message, template_id)))
    assert not_email["detail"] == "Only email messages take a template."
    refused(http.post(path, json=assign_body("01NOSUCHMESSAGE", template_id)), 404)
    refused(http.post(path, json=assign_body(email_message, "NoTpl")), 404)


def test_the_account_holds_at_most_a_thousand_templates(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    for index in range(MAX_TEMPLATES - 1):
        sandbox.state.templates.create(
            f"t{index}", "CODE", "<p></p>", None, sandbox.state.now_iso()
        )
    last = create_template(http)

    full = refused(http.post("/api/templates", json=template_body()))

    assert "1000 templates" in full["detail"]
    ok(http.delete(f"/api/templates/{last}"), 204)
    create_template(http)
    refused(http.delete(f"/api/templates/{last}"), 404)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (template_body(editor_type="HTML"), "/data/attributes/editor_type"),
        (template_body(html=None), "/data/attributes/html"),
        (template_body(name=None), "/data/attributes/name"),
    ],
    ids=["editor type", "CODE without html", "no name"],
)
def test_a_template_body_klaviyo_refuses_is_a_400_naming_the_pointer(
    http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    assert refused(http.post("/api/templates", json=body))["source"] == {"pointer": pointer}


def test_campaign_and_template_calls_are_rate_limited_as_at_klaviyo(
    sandbox: Sandbox, spring: str
) -> None:
    with httpx.Client(base_url=sandbox.base_url, headers=headers(), timeout=10) as still:
        creates = [still.post("/api/campaigns", json=campaign_body([spring])) for _ in range(11)]
        templates = [still.post("/api/templates", json=template_body()) for _ in range(76)]

    assert [r.status_code for r in creates] == [201] * 10 + [429]
    assert creates[-1].headers["Retry-After"] == "1"
    assert [r.status_code for r in templates] == [201] * 75 + [429]
    buckets = sandbox.throttled()["buckets"]
    assert buckets["POST /api/campaigns"]["windows"]["1"] == {"limit": 10, "peak": 10}
    assert buckets["POST /api/templates"]["windows"]["60"]["limit"] == 750


def test_a_static_send_goes_out_when_the_sandbox_clock_reaches_it_with_the_profile_of_then(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    member(sandbox, spring, ADA, first_name="Ada", consent=SUBSCRIBED)
    at = "2027-01-15T09:00:00+00:00"  # START + 3600
    strategy = {"method": "static", "datetime": at, "options": {"is_local": False}}
    campaign_id = email_campaign(http, spring, send_strategy=strategy)

    scheduled = campaign(http, campaign_id)
    assert (scheduled["status"], scheduled["send_time"]) == (
        "Scheduled",
        "2027-01-15T09:00:00.000000+00:00",
    )
    assert scheduled["send_strategy"] == strategy
    assert (
        ok(http.get(f"/api/campaign-send-jobs/{campaign_id}"))["data"]["attributes"]["status"]
        == "queued"
    )
    sandbox.plant_profile(email=ADA, first_name="Adeline")  # changed before it goes
    ok(http.post("/_sandbox/clock", json={"advance_s": 1800}))
    assert campaign_messages(http) == []

    ok(http.post("/_sandbox/clock", json={"advance_s": 1800}))

    (sent,) = campaign_messages(http)
    assert (sent["subject"], sent["sent_at"]) == (
        "Spring for Adeline",
        "2027-01-15T09:00:00.000000+00:00",
    )
    assert campaign(http, campaign_id)["status"] == "Sent"


def test_members_who_may_not_get_marketing_email_are_recorded_skipped_with_why(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    excluded = sandbox.create_list("Bought already")
    member(sandbox, spring, "sub@example.com", consent=SUBSCRIBED)
    member(sandbox, spring, "unsub@example.com", consent={"email": "UNSUBSCRIBED"})
    member(sandbox, spring, "never@example.com")
    member(sandbox, spring, "bounced@example.com", consent=SUBSCRIBED, suppression=["HARD_BOUNCE"])
    sandbox.plant_profile(email="both@example.com", consent=SUBSCRIBED, lists=[spring, excluded])
    sandbox.plant_profile(email="other@example.com", consent=SUBSCRIBED, lists=[excluded])

    email_campaign(http, spring, audiences={"included": [spring], "excluded": [excluded]})

    assert [(m["email"], m["status"], m["reason"]) for m in campaign_messages(http)] == [
        ("sub@example.com", "sent", None),
        ("unsub@example.com", "skipped", "unsubscribed from email marketing"),
        ("never@example.com", "skipped", "never subscribed to email marketing"),
        ("bounced@example.com", "skipped", "suppressed (HARD_BOUNCE)"),
    ]


def test_an_sms_campaign_needs_a_phone_and_sms_consent_and_is_not_html_escaped(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    sms = {"email": "NEVER_SUBSCRIBED", "sms": "SUBSCRIBED"}
    member(sandbox, spring, ADA, phone_number="+15550100", first_name="A&B", consent=sms)
    member(sandbox, spring, "nophone@example.com", consent=sms)
    member(sandbox, spring, "noconsent@example.com", phone_number="+15550101")
    body = 'Hi {{ first_name|default:"you" }} <3, {{ person|lookup:"phone_number" }}'
    campaign_id, _ = create_campaign(http, [spring], message=definition("sms", body=body))
    ok(send_job(http, campaign_id), 202)

    found = campaign_messages(http)

    assert [(m["to"], m["status"], m["reason"]) for m in found] == [
        ("+15550100", "sent", None),
        (None, "skipped", "the profile has no phone number"),
        ("+15550101", "skipped", "not subscribed to SMS marketing"),
    ]
    assert (found[0]["subject"], found[0]["body"]) == ("", "Hi A&B <3, +15550100")
    assert found[0]["headers"] == {}


def test_a_push_campaign_goes_to_profiles_with_a_device_token(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    member(sandbox, spring, ADA, first_name="Ada")
    member(sandbox, spring, "bob@example.com")
    profile = {"data": {"type": "profile", "attributes": {"email": ADA}}}
    token = {"token": "device-1", "platform": "ios", "vendor": "apns", "profile": profile}
    ok(
        http.post("/api/push-tokens", json={"data": {"type": "push-token", "attributes": token}}),
        202,
    )
    message = definition("mobile_push", subject="For {{ first_name }}", body="Sale <now>")
    campaign_id, _ = create_campaign(http, [spring], message=message)
    ok(send_job(http, campaign_id), 202)

    found = campaign_messages(http)

    assert [(m["to"], m["status"], m["reason"]) for m in found] == [
        ("device-1", "sent", None),
        (None, "skipped", "the profile has no push token"),
    ]
    assert (found[0]["subject"], found[0]["body"]) == ("For Ada", "Sale <now>")


def test_values_are_html_escaped_in_the_body_only_and_fallbacks_stand_for_missing_ones(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    properties = {"loyalty_tier": "<gold>", "empty": ""}
    member(sandbox, spring, ADA, first_name='Ann & "Bo"', properties=properties, consent=SUBSCRIBED)
    member(sandbox, spring, "bare@example.com", consent=SUBSCRIBED)
    html = (
        '{{ first_name|default:"F" }}|{{ person|lookup:"loyalty_tier"|default:"none" }}|'
        '{{ person|lookup:"empty"|default:"was \\"empty\\" \\\\ <b>" }}|'
        '{{ person|lookup:"phone_number"|default:"no phone" }}|{{ last_name }}|{{ email }}'
    )
    subject = '{{ first_name|default:"you & me" }} <b>'

    email_campaign(http, spring, html=html, subject=subject)

    ada, bare = campaign_messages(http)
    assert ada["subject"] == 'Ann & "Bo" <b>'
    assert ada["body"] == (
        "Ann &amp; &quot;Bo&quot;|&lt;gold&gt;|was &quot;empty&quot; \\ &lt;b&gt;|no phone||"
        "ada@example.com"
    )
    assert bare["subject"] == "you & me <b>"
    assert bare["body"] == ("F|none|was &quot;empty&quot; \\ &lt;b&gt;|no phone||bare@example.com")


def test_an_email_sent_carries_klaviyos_list_unsubscribe_headers(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    member(sandbox, spring, ADA, consent=SUBSCRIBED)
    member(sandbox, spring, "never@example.com")
    campaign_id = email_campaign(http, spring)

    sent, skipped = campaign_messages(http)

    unsubscribe = sent["headers"]["List-Unsubscribe"]
    both = re.fullmatch(r"<(https://[^>]+)>, <(mailto:[^>]+)>", unsubscribe)
    assert both is not None, unsubscribe
    link, mailto = both.groups()
    assert link.startswith("https://manage.kmail-lists.com/subscriptions/unsubscribe?")
    assert f"c={campaign_id}" in link and f"m={sent['id']}" in link
    assert mailto.startswith("mailto:unsubscribe@klaviyomail.com?subject=unsubscribe-")
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert skipped["headers"] == {}  # never mailed


def test_the_views_filter_page_sum_up_and_list_the_emails_sent(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    for index in range(5):
        member(
            sandbox, spring, f"p{index}@example.com", consent=SUBSCRIBED if index % 2 == 0 else {}
        )
    first = email_campaign(http, spring)
    second = email_campaign(http, spring, name="Spring again")

    assert len(campaign_messages(http)) == 10
    page = ok(
        http.get(
            "/_sandbox/campaign-messages", params={"campaign_id": second, "limit": 2, "offset": 1}
        )
    )
    assert page["total"] == 5 and [m["email"] for m in page["messages"]] == [
        "p1@example.com",
        "p2@example.com",
    ]
    skipped = campaign_messages(http, campaign_id=first, status="skipped")
    assert [m["email"] for m in skipped] == ["p1@example.com", "p3@example.com"]
    assert [m["campaign_id"] for m in campaign_messages(http, email="P2@example.com")] == [
        first,
        second,
    ]
    assert ok(http.get("/_sandbox/campaign-messages/summary")) == {
        "campaigns": {
            first: {"name": "Spring", "sent": 3, "skipped": 2},
            second: {"name": "Spring again", "sent": 3, "skipped": 2},
        }
    }
    emails = http.get("/_sandbox/campaign-messages/emails", params={"campaign_id": first})
    assert emails.headers["Content-Type"].startswith("text/plain")
    assert emails.text == "p0@example.com\np2@example.com\np4@example.com\n"
    assert http.get("/_sandbox/campaign-messages", params={"status": "lost"}).status_code == 400
    assert http.get("/_sandbox/campaign-messages", params={"limit": "-1"}).status_code == 400


def test_an_engagement_naming_the_campaign_unsubscribes_from_its_message(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    member(sandbox, spring, ADA, consent=SUBSCRIBED)
    campaign_id = email_campaign(http, spring)
    (sent,) = campaign_messages(http)

    engagement = {"email": ADA, "type": "unsubscribed", "campaign_id": campaign_id}
    ok(http.post("/_sandbox/engagement", json=engagement), 202)
    email_campaign(http, spring, name="Next")

    assert [m["reason"] for m in campaign_messages(http)] == [
        None,
        "unsubscribed from email marketing",
    ]
    unknown = {**engagement, "message_id": str(sent["id"] + 1)}
    assert http.post("/_sandbox/engagement", json=unknown).status_code == 400


def test_the_campaign_values_report_counts_a_simulated_campaigns_recipients(
    http: httpx.Client, sandbox: Sandbox, spring: str
) -> None:
    member(sandbox, spring, ADA, consent=SUBSCRIBED)
    member(sandbox, spring, "never@example.com")
    campaign_id = email_campaign(http, spring)
    event = {
        "properties": {},
        "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": ADA}}},
    }
    ok(http.post("/api/events", json={"data": {"type": "event", "attributes": event}}), 202)
    report = {
        "type": "campaign-values-report",
        "attributes": {
            "statistics": ["recipients", "delivered"],
            "timeframe": {"key": "last_30_days"},
            "conversion_metric_id": metric_id("Placed Order"),
        },
    }

    answer = ok(http.post("/api/campaign-values-reports", json={"data": report}))

    (result,) = answer["data"]["attributes"]["results"]
    assert result["groupings"]["campaign_id"] == campaign_id
    assert result["statistics"] == {"recipients": 1, "delivered": 0}  # no engagement seeded
