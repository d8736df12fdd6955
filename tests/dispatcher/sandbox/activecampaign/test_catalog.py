"""Custom fields, field relations, lists, tags and automations."""

from __future__ import annotations

import httpx

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import answer, create_field, create_list


def test_fields_are_created_with_string_ids_and_listed_by_page(api: httpx.Client) -> None:
    ids = [create_field(api, f"Field {n}") for n in range(3)]

    listed = answer(api.get("/fields"), 200)
    paged = answer(api.get("/fields", params={"limit": 1, "offset": 2}), 200)
    by_tag = answer(api.get("/fields", params={"filters[perstag]": "FIELD_1"}), 200)

    assert ids == ["1", "2", "3"]
    assert [f["title"] for f in listed["fields"]] == ["Field 0", "Field 1", "Field 2"]
    assert listed["meta"]["total"] == "3"
    assert [f["id"] for f in paged["fields"]] == ["3"]
    assert [f["id"] for f in by_tag["fields"]] == ["2"]


def test_a_duplicate_field_title_is_422_duplicate(api: httpx.Client) -> None:
    create_field(api, "City")

    refused = answer(api.post("/fields", json={"field": {"title": "city", "type": "text"}}), 422)

    (error,) = refused["errors"]
    assert (error["title"], error["code"]) == (
        "There is already a field with this title",
        "duplicate",
    )


def test_a_field_needs_a_title_and_a_known_type(api: httpx.Client) -> None:
    missing = answer(api.post("/fields", json={"field": {"type": "text"}}), 422)
    wrong = answer(api.post("/fields", json={"field": {"title": "A", "type": "colour"}}), 422)

    assert missing["errors"][0]["code"] == "field_missing"
    assert missing["errors"][0]["source"] == {"pointer": "/field/title"}
    assert wrong["errors"][0]["code"] == "field_invalid"


def test_field_rels_link_a_field_to_a_list_or_to_all(api: httpx.Client) -> None:
    field_id, list_id = create_field(api, "City"), create_list(api)

    to_all = answer(api.post("/fieldRels", json={"fieldRel": {"field": field_id, "relid": 0}}), 201)
    to_list = answer(
        api.post("/fieldRels", json={"fieldRel": {"field": field_id, "relid": list_id}}), 201
    )
    unknown = answer(api.post("/fieldRels", json={"fieldRel": {"field": "9", "relid": 0}}), 422)

    assert (to_all["fieldRel"]["relid"], to_list["fieldRel"]["relid"]) == ("0", list_id)
    assert unknown["errors"][0]["code"] == "related_missing"
    assert len(answer(api.get("/fields"), 200)["fieldRels"]) == 2


def test_lists_are_created_200_and_need_their_sender_fields(api: httpx.Client) -> None:
    list_id = create_list(api, "Newsletter")

    listed = answer(api.get("/lists"), 200)
    refused = answer(api.post("/lists", json={"list": {"name": "No sender"}}), 422)
    duplicate = {
        "name": "Again",
        "stringid": "newsletter",
        "sender_url": "u",
        "sender_reminder": "r",
    }

    assert [(x["id"], x["name"]) for x in listed["lists"]] == [(list_id, "Newsletter")]
    assert refused["errors"][0]["code"] == "field_missing"
    assert answer(api.post("/lists", json={"list": duplicate}), 422)["errors"][0]["code"] == (
        "duplicate"
    )


def test_tags_are_unique_ignoring_case_and_searched_by_contained_text(api: httpx.Client) -> None:
    created = answer(api.post("/tags", json={"tag": {"tag": "VIP customer"}}), 201)["tag"]
    answer(api.post("/tags", json={"tag": {"tag": "newsletter"}}), 201)

    refused = answer(api.post("/tags", json={"tag": {"tag": "vip CUSTOMER"}}), 422)
    found = answer(api.get("/tags", params={"search": "vip"}), 200)

    assert created["id"] == "1" and created["tagType"] == "contact"
    assert refused["errors"][0]["code"] == "duplicate"
    assert [t["tag"] for t in found["tags"]] == ["VIP customer"]


def test_automations_are_seeded_and_a_control_adds_one(
    api: httpx.Client, raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    seeded = answer(api.get("/automations"), 200)
    added = answer(raw.post("/_sandbox/automations", json={"name": "Win-back"}), 201)
    also = ac.add_automation("Birthday")

    listed = answer(api.get("/automations"), 200)["automations"]
    assert [a["id"] for a in seeded["automations"]] == ["1", "2"]
    assert seeded["meta"]["total"] == "2"
    assert added["automation"]["id"] == "3" and also == "4"
    assert [a["name"] for a in listed][2:] == ["Win-back", "Birthday"]
    assert all(a["entered"] == "0" for a in listed), "counters are strings"
    assert raw.post("/_sandbox/automations", json={}).status_code == 400
