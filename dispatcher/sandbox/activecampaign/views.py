"""What tests look at: the account's contacts (with their field values, list status, tags,
enrolments and whether they are on the exclusion list), tracked events, orders, imports, lists,
one list's members and the webhooks (with whether each is active); served under
/_sandbox/<name>."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from dispatcher.sandbox.activecampaign.store import Account, Row, public


def contacts(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """Each contact (?email= for one), with fields by id, lists {id: status}, tag names,
    automation enrolments and `excluded` (on the account's exclusion list)."""
    email = query.get("email")
    rows = [account.contact_by_email(email)] if email else list(account.contacts)
    return [_contact(account, row) for row in rows if row is not None]


def _contact(account: Account, row: Row) -> dict[str, Any]:
    contact_id = row["id"]
    tags = [account.tags.get(t["tag"]) for t in account.contact_tags.where(contact=contact_id)]
    return public(row) | {
        "fields": {v["field"]: v["value"] for v in account.field_values.where(contact=contact_id)},
        "lists": {m["list"]: m["status"] for m in account.contact_lists.where(contact=contact_id)},
        "tags": [tag["tag"] for tag in tags if tag is not None],
        "automations": [
            {"id": e["id"], "automation": e["automation"], "status": e["status"]}
            for e in account.contact_automations.where(contact=contact_id)
        ],
        "excluded": row["email_key"] in account.excluded,
    }


def events(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """Tracked events in arrival order (?event= for one name)."""
    wanted = query.get("event")
    return [asdict(e) for e in account.tracked_events if wanted is None or e.event == wanted]


def orders(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """Orders and carts with their products."""
    return [
        public(order)
        | {"products": [public(p) for p in account.ecom_order_products.where(orderid=order["id"])]}
        for order in account.ecom_orders
    ]


def automations(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    return [public(row) for row in account.automations]


def imports(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"batchId": b.batch_id, "contacts": b.size, "done": b.done}
        | {"success": b.success, "failure": b.failure}
        for b in account.imports.values()
    ]


def lists(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    return [public(row) for row in account.lists]


def members(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """The contacts with a status on the list ?list=<id> (any status: 1 subscribed, 2
    unsubscribed), in the order they were first put on it; [] for an unknown list."""
    found = []
    for membership in account.contact_lists.where(list=query.get("list", "")):
        contact = account.contacts.get(membership["contact"])
        if contact is not None:  # it is: erasing a contact erases its memberships
            dates = {name: membership[name] for name in ("status", "sdate", "udate")}
            found.append({"contact": contact["id"], "email": contact["email"]} | dates)
    return found


def webhooks(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """Each webhook as GET /api/3/webhooks shows it, and `active`: false once a delivery was
    answered 410 (webhook_events.py)."""
    return [
        public(row) | {"active": row["id"] not in account.inactive_webhooks}
        for row in account.webhooks
    ]


def campaigns(account: Account, query: dict[str, str]) -> list[dict[str, Any]]:
    """Each campaign as GET /api/3/campaigns shows it (campaigns.py)."""
    return [public(row) for row in account.campaigns]


VIEWS: dict[str, Callable[[Account, dict[str, str]], Any]] = {
    "contacts": contacts,
    "events": events,
    "orders": orders,
    "automations": automations,
    "imports": imports,
    "lists": lists,
    "members": members,
    "campaigns": campaigns,
    "webhooks": webhooks,
}
