"""The fake account's lists, as POST /api/lists makes them: id, name, opt-in process, when made.

Who is in a list is kept with each profile's consent (consent.py, `lists`): a subscribe job
naming a list, an import job with lists, a planted profile and the list relationship calls
(list_routes.py) all change that one set. A list id a job or a planted profile names needs
no record here (the sandbox does not check a subscribe job's list); the list endpoints do
(an unknown list is 404 there).

Ids are six letters and digits, as Klaviyo's list ids look. Klaviyo lets several lists
share a name, and so does the sandbox. BEYOND (the page says only that the account default
applies): a list made without an `opt_in_process` is double opt-in, this account's default.
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass
from typing import Any

ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 6
DEFAULT_OPT_IN_PROCESS = "double_opt_in"
LIST_RELATIONSHIPS = ("profiles", "tags", "flow-triggers")


@dataclass(frozen=True)
class ListRecord:
    seq: int  # creation order: the order of equal `created` times
    id: str
    name: str
    opt_in_process: str
    created: str
    updated: str

    def resource(self, base_url: str) -> dict[str, Any]:
        """The list as Klaviyo's list resource."""
        attributes = {
            "name": self.name,
            "created": self.created,
            "updated": self.updated,
            "opt_in_process": self.opt_in_process,
        }
        return list_resource(self.id, attributes, base_url)


def list_resource(list_id: str, attributes: dict[str, Any], base_url: str) -> dict[str, Any]:
    self_url = f"{base_url}/api/lists/{list_id}/"
    relationships = {
        name: {
            "links": {"self": f"{self_url}relationships/{name}/", "related": f"{self_url}{name}/"}
        }
        for name in LIST_RELATIONSHIPS
    }
    return {
        "type": "list",
        "id": list_id,
        "attributes": attributes,
        "relationships": relationships,
        "links": {"self": self_url},
    }


class ListStore:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._lists: dict[str, ListRecord] = {}
        self._random = random.Random(seed)

    def create(self, name: str, opt_in_process: str | None, at: str) -> ListRecord:
        with self._lock:
            list_id = self._new_id()
            record = ListRecord(
                len(self._lists),
                list_id,
                name,
                opt_in_process or DEFAULT_OPT_IN_PROCESS,
                at,
                at,
            )
            self._lists[list_id] = record
            return record

    def get(self, list_id: str) -> ListRecord | None:
        with self._lock:
            return self._lists.get(list_id)

    def all(self) -> list[ListRecord]:
        """Every list, in the order they were made."""
        with self._lock:
            return list(self._lists.values())

    def resource(self, list_id: str, base_url: str) -> dict[str, Any]:
        """The list's resource; a list id without a record (named by a job or a planted
        profile only) has no attributes to show."""
        record = self.get(list_id)
        if record is not None:
            return record.resource(base_url)
        unknown = dict.fromkeys(("name", "created", "updated", "opt_in_process"))
        return list_resource(list_id, unknown, base_url)

    def _new_id(self) -> str:
        while True:
            list_id = "".join(self._random.choices(ID_ALPHABET, k=ID_LENGTH))
            if list_id not in self._lists:
                return list_id
