"""What the providers' campaign-send tests share: a recipient's preference link, a template
variable, and an email campaign send with fallbacks, quotes and the unsubscribe link."""

from __future__ import annotations

from typing import Any

from dispatcher.providers.base import CampaignSend, TemplateVariable


def link(email: str) -> str:
    return f"https://prefs.example/p/{email.split('@')[0]}?s=a&t=1"


def var(*path: str, fallback: str | None = None) -> TemplateVariable:
    return TemplateVariable(tuple(path), fallback)


def email_send(list_id: str, *, extra_text: str = "", **fields: Any) -> CampaignSend:
    """An email send to the list; `extra_text` goes into the body before the link."""
    values: dict[str, Any] = {
        "name": "cmp-1 part A",
        "list_id": list_id,
        "channel": "email",
        "subject": ("Hi ", var("first_name", fallback='you "there"'), " & co"),
        "body": (
            "<p>Hello ",
            var("first_name", fallback='you "there"'),
            ", tier ",
            var("custom", "tier", fallback="none"),
            *((extra_text,) if extra_text else ()),
            '</p><a href="',
            var("unsubscribe_url"),
            '">Preferences</a>',
        ),
        "send_at": None,
        "from_email": "news@shop.example",
        "from_label": "Shop",
        "reply_to": "help@shop.example",
    }
    return CampaignSend(**(values | fields))
