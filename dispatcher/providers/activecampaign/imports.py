"""Bulk contact import (POST /import/bulk_import, GET /import/info) for a full contact sync.

Profiles only: consent goes by `plan_consent` afterwards (an import cannot subscribe a contact
to a list it unsubscribed from). An import is an upsert on email, so importing a chunk again
after a lost answer changes nothing but the contacts' update times. Automations are not run.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.providers.activecampaign import bodies
from dispatcher.providers.activecampaign.fields import FieldIds
from dispatcher.providers.activecampaign.http import ApiHttp, as_id, encode
from dispatcher.providers.activecampaign.limits import (
    IMPORT_BUCKETS,
    LIMITS,
    SINGLE_IMPORT_BUCKETS,
)
from dispatcher.providers.activecampaign.memory import Recent
from dispatcher.providers.base import (
    IMPORT_STATUS,
    START_IMPORT,
    ImportContact,
    ImportFailure,
    ImportStatus,
)
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

COMPLETED = "completed"
REFUSED = "refused by ActiveCampaign's import"
REMEMBERED = 1_000


class Imports:
    def __init__(self, api: ApiHttp, fields: FieldIds) -> None:
        self._api = api
        self._fields = fields
        self._sizes: Recent[str, int] = Recent(REMEMBERED)

    async def start(self, contacts: Sequence[ImportContact]) -> str:
        """The batch id. More contacts than `limits.import_profiles` allow is a caller bug
        (ValueError); a body over its bytes is refused before it is sent, naming no contact
        (PermanentProviderError `too_large`: the caller splits the batch)."""
        limits = LIMITS.import_profiles
        assert limits is not None
        if not contacts or len(contacts) > limits.max_items:
            raise ValueError(f"{len(contacts)} contacts in one import; 1 to {limits.max_items}")
        profiles = [contact.profile for contact in contacts]
        ids = await self._fields.ids(
            bodies.import_titles(profiles), START_IMPORT, bodies.import_json_titles(profiles)
        )
        body = {
            "contacts": [bodies.import_contact(profile, ids) for profile in profiles],
            "exclude_automations": True,
        }
        size = len(encode(body, "POST /import/bulk_import"))
        if limits.max_bytes is not None and size > limits.max_bytes:
            raise PermanentProviderError(
                f"ActiveCampaign POST /import/bulk_import: {size} bytes of contacts; "
                f"a call takes {limits.max_bytes}",
                code="too_large",
            )
        # ActiveCampaign counts single-contact imports against a smaller bucket of their own.
        buckets = SINGLE_IMPORT_BUCKETS if len(contacts) == 1 else IMPORT_BUCKETS
        reply = await self._api.call(
            "POST", "/import/bulk_import", operation=START_IMPORT, body=body, buckets=buckets
        )
        batch = as_id((reply or {}).get("batchId"))
        if not batch:
            raise RetryableProviderError(
                f"ActiveCampaign bulk import answered without a batchId: {reply}",
                code="invalid_response",
            )
        self._sizes.put(batch, len(contacts))
        return batch

    async def status(self, batch: str) -> ImportStatus:
        reply = await self._api.call(
            "GET",
            "/import/info",
            operation=IMPORT_STATUS,
            params={"batchId": batch},
            allow_missing=True,
        )
        if reply is None:
            raise PermanentProviderError(f"no ActiveCampaign import {batch!r}", code="not_found")
        succeeded = _listed(reply.get("success"))
        failures = tuple(ImportFailure(email, REFUSED) for email in _emails(reply.get("failure")))
        processed = len(succeeded) + len(failures)
        return ImportStatus(
            job_id=batch,
            done=str(reply.get("status", "")).lower() == COMPLETED,
            total=max(self._sizes.get(batch) or 0, processed),
            completed=len(succeeded),
            failed=len(failures),
            failures=failures,
        )


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _emails(value: object) -> list[str]:
    """Failed contacts: emails as text, or objects naming one."""
    emails = []
    for item in _listed(value):
        if isinstance(item, dict):
            item = item.get("email", "")
        if isinstance(item, str) and item:
            emails.append(item)
    return emails
