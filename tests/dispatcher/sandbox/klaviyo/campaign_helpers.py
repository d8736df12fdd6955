"""Driving the Klaviyo sandbox's campaigns over HTTP, as the dispatcher's client does: a
template, a campaign for a list with one message, the template assigned, a send job."""

from __future__ import annotations

from typing import Any

import httpx

SUBSCRIBED = {"email": "SUBSCRIBED"}
HTML = (
    '<p>Hi {{ first_name|default:"friend" }},</p>'
    '<p><a href="https://shop.example/sale">Sale</a></p>'
    '<a href="{{ person|lookup:"marketing_preferences_url" }}">Unsubscribe</a>'
)
SUBJECT = 'Spring for {{ first_name|default:"you" }}'


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    """The first JSON:API error of a refusal with `status`."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["errors"][0]
    return error


def template_body(html: str | None = HTML, **attributes: Any) -> dict[str, Any]:
    fields = {"name": "Spring", "editor_type": "CODE", "html": html, **attributes}
    fields = {k: v for k, v in fields.items() if v is not None}
    return {"data": {"type": "template", "attributes": fields}}


def create_template(http: httpx.Client, html: str = HTML) -> str:
    template_id: str = ok(http.post("/api/templates", json=template_body(html)), 201)["data"]["id"]
    return template_id


def definition(channel: str = "email", subject: str = SUBJECT, body: str = "") -> dict[str, Any]:
    """A campaign message's definition on `channel` (email: the subject; sms: the body;
    mobile_push: the subject as title and the body)."""
    if channel == "email":
        content = {"subject": subject, "from_email": "shop@example.com", "from_label": "Shop"}
        return {"channel": "email", "label": "Spring", "content": content}
    if channel == "sms":
        return {"channel": "sms", "content": {"body": body}}
    return {"channel": channel, "content": {"title": subject, "body": body}}


def campaign_body(
    list_ids: list[str],
    *,
    name: str = "Spring",
    message: dict[str, Any] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    messages = [{"type": "campaign-message", "attributes": {"definition": message or definition()}}]
    fields = {
        "name": name,
        "audiences": {"included": list_ids},
        "campaign-messages": {"data": messages},
        **attributes,
    }
    return {"data": {"type": "campaign", "attributes": fields}}


def create_campaign(http: httpx.Client, list_ids: list[str], **fields: Any) -> tuple[str, str]:
    """(campaign id, its message's id)."""
    data = ok(http.post("/api/campaigns", json=campaign_body(list_ids, **fields)), 201)["data"]
    (message,) = data["relationships"]["campaign-messages"]["data"]
    return data["id"], message["id"]


def assign_body(message_id: str, template_id: str) -> dict[str, Any]:
    template = {"data": {"type": "template", "id": template_id}}
    return {
        "data": {
            "type": "campaign-message",
            "id": message_id,
            "relationships": {"template": template},
        }
    }


def assign(http: httpx.Client, message_id: str, template_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = ok(
        http.post(
            "/api/campaign-message-assign-template", json=assign_body(message_id, template_id)
        )
    )
    return answer


def send_job(http: httpx.Client, campaign_id: str) -> httpx.Response:
    body = {"data": {"type": "campaign-send-job", "id": campaign_id}}
    return http.post("/api/campaign-send-jobs", json=body)


def email_campaign(
    http: httpx.Client, list_id: str, *, html: str = HTML, subject: str = SUBJECT, **fields: Any
) -> str:
    """An email campaign for the list, its template assigned, its send job made: its id."""
    template_id = create_template(http, html)
    campaign_id, message_id = create_campaign(
        http, [list_id], message=definition("email", subject), **fields
    )
    assign(http, message_id, template_id)
    ok(send_job(http, campaign_id), 202)
    return campaign_id


def campaign_messages(http: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    answer = ok(http.get("/_sandbox/campaign-messages", params=query))
    assert answer["total"] >= len(answer["messages"])
    found: list[dict[str, Any]] = answer["messages"]
    return found


def campaign(http: httpx.Client, campaign_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = ok(http.get(f"/api/campaigns/{campaign_id}"))["data"]["attributes"]
    return attributes
