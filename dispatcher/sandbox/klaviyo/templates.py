"""The account's email templates, as POST /api/templates makes them (campaign_routes.py serves
them). Klaviyo holds at most 1,000 templates an account; the 1,001st is refused. A campaign
message assigned a template keeps its own copy of the html and text, so deleting the template
afterwards changes no campaign.

Ids are six letters and digits, as Klaviyo's template ids look."""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass
from typing import Any

TEMPLATES = "/api/templates"
MAX_TEMPLATES = 1000
EDITOR_TYPES = ("CODE", "USER_DRAGGABLE", "SYSTEM_DRAGGABLE")
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 6


@dataclass(frozen=True)
class TemplateRecord:
    id: str
    name: str
    editor_type: str
    html: str | None
    text: str | None
    created: str
    updated: str

    def resource(self, base_url: str) -> dict[str, Any]:
        attributes = {
            "name": self.name,
            "editor_type": self.editor_type,
            "html": self.html,
            "text": self.text,
            "created": self.created,
            "updated": self.updated,
        }
        links = {"self": f"{base_url}/api/templates/{self.id}/"}
        return {"type": "template", "id": self.id, "attributes": attributes, "links": links}


class TemplateLimitReached(Exception):
    """The account holds MAX_TEMPLATES already."""


class TemplateBook:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._templates: dict[str, TemplateRecord] = {}
        self._random = random.Random(seed)

    def create(
        self, name: str, editor_type: str, html: str | None, text: str | None, at: str
    ) -> TemplateRecord:
        """A new template; TemplateLimitReached when the account is full."""
        with self._lock:
            if len(self._templates) >= MAX_TEMPLATES:
                raise TemplateLimitReached
            record = TemplateRecord(self._new_id(), name, editor_type, html, text, at, at)
            self._templates[record.id] = record
            return record

    def get(self, template_id: str) -> TemplateRecord | None:
        with self._lock:
            return self._templates.get(template_id)

    def delete(self, template_id: str) -> bool:
        with self._lock:
            return self._templates.pop(template_id, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._templates)

    def _new_id(self) -> str:
        while True:
            template_id = "".join(self._random.choices(_ID_ALPHABET, k=_ID_LENGTH))
            if template_id not in self._templates:
                return template_id
