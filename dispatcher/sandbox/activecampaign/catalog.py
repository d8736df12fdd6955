"""The account's custom fields, lists, tags and automations.

From shared/PROVIDERS-API.md: POST /fields 201, a duplicate title 422 duplicate ("There is
already a field with this title"); POST /fieldRels 201 (relid 0: all lists); GET /fields
pages 100 by default; POST /lists 200 (name, stringid, sender_url, sender_reminder required;
channel email or sms); POST /tags 201, names compared ignoring case, duplicates refused; GET
/tags?search= matches contained text; GET /automations. From ActiveCampaign's reference page
"Retrieve all lists": GET /lists pages 20 by default (at most 100), filters by `filters[name]`
and answers email lists only unless `filters[channel]` is sms or all.

Beyond the page (the model decides): the created field is answered as `field` beside the
documented `fieldOptions`, `fieldRels` and `meta`; field titles are compared ignoring case; a
list's stringid must be unique (422 duplicate); `filters[name]` matches the whole name ignoring
case (ActiveCampaign documents the filter, not how it matches); GET /lists/{id} of an unknown
list is 404 "No Result found for List with id N"; missing attributes are 422 field_missing."""

from __future__ import annotations

from dispatcher.sandbox.activecampaign.body import Call, optional_text, page, ref, required_text
from dispatcher.sandbox.activecampaign.errors import duplicate, invalid, related_missing
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

FIELD_TYPES = frozenset(
    {"text", "textarea", "date", "datetime", "dropdown", "listbox", "radio", "checkbox"}
    | {"hidden", "number"}
)
FIELDS_PAGE = 100
CHANNELS = frozenset({"email", "sms"})


def list_fields(account: Account, call: Call) -> Answer:
    rows = list(account.fields)
    perstag = call.query.get("filters[perstag]")
    if perstag is not None:
        rows = [row for row in rows if row["perstag"] == perstag.upper()]
    selected, meta = page(rows, call.query, FIELDS_PAGE)
    ids = {row["id"] for row in selected}
    rels = [public(rel) for rel in account.field_rels if rel["field"] in ids]
    return 200, {
        "fields": [public(r) for r in selected],
        "fieldOptions": [],
        "fieldRels": rels,
        "meta": meta,
    }


def create_field(account: Account, call: Call) -> Answer:
    given = call.resource("field")
    title = required_text(given, "title", "/field").strip()
    field_type = required_text(given, "type", "/field")
    if field_type not in FIELD_TYPES:
        raise invalid("/field/type", f"type must be one of {sorted(FIELD_TYPES)}")
    if account.fields.first(title_key=title.lower()):
        raise duplicate("/field/title", "There is already a field with this title")
    stamp = timestamp(call.now)
    perstag = optional_text(given, "perstag", "/field") or _perstag(title)
    row = {"title": title, "title_key": title.lower(), "type": field_type, "perstag": perstag}
    row |= {
        "descript": optional_text(given, "descript", "/field"),
        "defval": optional_text(given, "defval", "/field"),
    }
    row |= {
        "visible": optional_text(given, "visible", "/field", "1"),
        "ordernum": str(len(account.fields) + 1),
    }
    field = public(account.fields.insert(row | {"cdate": stamp, "udate": stamp}))
    return 201, {"field": field, "fieldOptions": [], "fieldRels": [], "meta": {}}


def _perstag(title: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in title.upper())


def relate_field(account: Account, call: Call) -> Answer:
    given = call.resource("fieldRel")
    field_id = ref(given.get("field"))
    relid = ref(given.get("relid", 0))
    if field_id is None or account.fields.get(field_id) is None:
        raise related_missing("/fieldRel/field", "Field")
    if relid is None or (relid != "0" and account.lists.get(relid) is None):
        raise related_missing("/fieldRel/relid", "List")
    row = {"field": field_id, "relid": relid, "dorder": "0", "cdate": timestamp(call.now)}
    return 201, {"fieldRel": public(account.field_rels.insert(row))}


def list_lists(account: Account, call: Call) -> Answer:
    channel = call.query.get("filters[channel]")
    shown = {"sms": {"sms"}, "all": CHANNELS}.get(channel or "", {"email"})
    rows = [row for row in account.lists if row["channel"] in shown]
    name = call.query.get("filters[name]")
    if name is not None:
        rows = [row for row in rows if row["name"].lower() == name.lower()]
    selected, meta = page(rows, call.query)
    return 200, {"lists": [public(r) for r in selected], "meta": meta}


def get_list(account: Account, call: Call) -> Answer:
    return 200, {"list": public(account.lists.need(call.params[0]))}


def create_list(account: Account, call: Call) -> Answer:
    given = call.resource("list")
    row: Row = {
        name: required_text(given, name, "/list")
        for name in ("name", "stringid", "sender_url", "sender_reminder")
    }
    if account.lists.first(stringid=row["stringid"]):
        raise duplicate("/list/stringid", "There is already a list with this stringid")
    row["channel"] = optional_text(given, "channel", "/list", "email")
    if row["channel"] not in CHANNELS:
        raise invalid("/list/channel", f"channel must be one of {sorted(CHANNELS)}")
    row["cdate"] = row["udate"] = timestamp(call.now)
    return 200, {"list": public(account.lists.insert(row))}


def list_tags(account: Account, call: Call) -> Answer:
    search = call.query.get("search", call.query.get("filters[search][contains]", ""))
    rows = [row for row in account.tags if search.lower() in row["tag_key"]]
    if "filters[search][eq]" in call.query:
        wanted = call.query["filters[search][eq]"].lower()
        rows = [row for row in rows if row["tag_key"] == wanted]
    selected, meta = page(rows, call.query)
    return 200, {"tags": [public(r) for r in selected], "meta": meta}


def create_tag(account: Account, call: Call) -> Answer:
    given = call.resource("tag")
    name = required_text(given, "tag", "/tag").strip()
    if account.tags.first(tag_key=name.lower()):
        raise duplicate("/tag/tag", "There is already a tag with this name")
    row = {
        "tag": name,
        "tag_key": name.lower(),
        "tagType": optional_text(given, "tagType", "/tag", "contact"),
    }
    row |= {
        "description": optional_text(given, "description", "/tag"),
        "cdate": timestamp(call.now),
    }
    return 201, {"tag": public(account.tags.insert(row))}


def list_automations(account: Account, call: Call) -> Answer:
    selected, meta = page(list(account.automations), call.query)
    return 200, {"automations": [public(r) for r in selected], "meta": meta}


ROUTES = [
    route("GET", "/api/3/fields", list_fields),
    route("POST", "/api/3/fields", create_field),
    route("POST", "/api/3/fieldRels", relate_field),
    route("GET", "/api/3/lists", list_lists),
    route("GET", "/api/3/lists/{id}", get_list),
    route("POST", "/api/3/lists", create_list),
    route("GET", "/api/3/tags", list_tags),
    route("POST", "/api/3/tags", create_tag),
    route("GET", "/api/3/automations", list_automations),
]
