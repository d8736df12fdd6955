"""ActiveCampaign's webhook endpoints in the sandbox: create with string ids and
ActiveCampaign's 422s, list, read, delete, the 25 event names, and the account's 5/s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from dispatcher.sandbox.activecampaign.webhooks import EVENTS
from tests.dispatcher.sandbox.activecampaign.conftest import API_KEY, answer, create_list

URL = "https://hooks.example/webhooks/activecampaign/s3cret"


def webhook(**fields: Any) -> dict[str, Any]:
    given = {"name": "ours", "url": URL, "events": ["sent", "open"], "sources": ["public"]}
    return {"webhook": {k: v for k, v in (given | fields).items() if v is not None}}


def test_create_answers_201_with_string_ids(api: httpx.Client) -> None:
    created = answer(api.post("/webhooks", json=webhook(events=["open", "sent", "open"])), 201)

    hook = created["webhook"]
    assert hook["id"] == "1" and hook["listid"] == "0"
    assert (hook["name"], hook["url"]) == ("ours", URL)
    assert (hook["events"], hook["sources"]) == (["open", "sent"], ["public"])
    assert hook["cdate"].endswith("+00:00") and hook["links"] == {}


def test_list_read_and_delete(api: httpx.Client, ac: ActiveCampaignSandbox) -> None:
    list_id = create_list(api)
    first = answer(api.post("/webhooks", json=webhook()), 201)["webhook"]
    second = answer(api.post("/webhooks", json=webhook(listid=int(list_id))), 201)["webhook"]
    assert second["listid"] == list_id

    listed = answer(api.get("/webhooks"), 200)
    assert listed["webhooks"] == [first, second] and listed["meta"]["total"] == "2"
    assert answer(api.get("/webhooks/2"), 200) == {"webhook": second}

    assert answer(api.delete("/webhooks/1"), 200) == {}
    assert [w["id"] for w in answer(api.get("/webhooks"), 200)["webhooks"]] == ["2"]
    for gone in (api.get("/webhooks/1"), api.delete("/webhooks/1")):
        assert answer(gone, 404) == {"message": "No Result found for Webhook with id 1"}
    assert [w["id"] for w in ac.view("webhooks")] == ["2"]


def test_the_event_list_has_the_25_names(api: httpx.Client) -> None:
    listed = answer(api.get("/webhook/events"), 200)

    assert listed["meta"] == {"total": 25}  # a number here, unlike other totals
    assert listed["webhookEvents"] == list(EVENTS) and len(set(EVENTS)) == 25
    assert {"sent", "open", "click", "bounce", "unsubscribe", "sms_unsub"} <= set(EVENTS)


@pytest.mark.parametrize(
    ("fields", "code", "pointer"),
    [
        ({"name": None}, "field_missing", "/webhook/name"),
        ({"url": None}, "field_missing", "/webhook/url"),
        ({"url": "hooks.example/x"}, "field_invalid", "/webhook/url"),
        ({"url": "ftp://hooks.example/x"}, "field_invalid", "/webhook/url"),
        ({"url": "https://hooks.example:8443/x"}, "field_invalid", "/webhook/url"),
        ({"events": None}, "field_missing", "/webhook/events"),
        ({"events": []}, "field_missing", "/webhook/events"),
        ({"events": "sent"}, "field_invalid", "/webhook/events"),
        ({"events": ["sent", "spam"]}, "field_invalid", "/webhook/events"),
        ({"sources": None}, "field_missing", "/webhook/sources"),
        ({"sources": ["everyone"]}, "field_invalid", "/webhook/sources"),
        ({"listid": "x"}, "field_invalid", "/webhook/listid"),
        ({"listid": 42}, "related_missing", "/webhook/listid"),
    ],
)
def test_a_bad_webhook_is_activecampaigns_422(
    api: httpx.Client, fields: dict[str, Any], code: str, pointer: str
) -> None:
    (error,) = answer(api.post("/webhooks", json=webhook(**fields)), 422)["errors"]

    assert (error["code"], error["source"]) == (code, {"pointer": pointer})
    assert answer(api.get("/webhooks"), 200)["webhooks"] == []


def test_without_the_wrapper_it_is_422_missing(api: httpx.Client) -> None:
    (error,) = answer(api.post("/webhooks", json={"name": "x"}), 422)["errors"]

    assert error["source"] == {"pointer": "/webhook"}


def test_http_on_any_port_and_https_on_443_are_taken(api: httpx.Client) -> None:
    for url in ("http://127.0.0.1:8091/w", "https://hooks.example:443/w", "http://h.example/w"):
        assert answer(api.post("/webhooks", json=webhook(url=url)), 201)["webhook"]["url"] == url


def test_webhook_calls_count_in_the_accounts_5_a_second(raw: httpx.Client) -> None:
    token = {"Api-Token": API_KEY}
    statuses = [raw.get("/api/3/webhook/events", headers=token).status_code for _ in range(5)]
    refused = raw.post("/api/3/webhooks", json=webhook(), headers=token)

    assert statuses == [200] * 5
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert raw.get("/_sandbox/throttled").json()["buckets"]["api"]["refused"] == 1


def test_a_reset_forgets_the_webhooks(api: httpx.Client, raw: httpx.Client) -> None:
    answer(api.post("/webhooks", json=webhook()), 201)

    assert raw.delete("/_sandbox/requests").status_code == 204
    assert len(answer(api.get("/webhooks"), 200)["webhooks"]) == 1, "the account's: kept"
    assert raw.post("/_sandbox/reset").status_code == 204

    assert answer(api.get("/webhooks"), 200)["webhooks"] == []
