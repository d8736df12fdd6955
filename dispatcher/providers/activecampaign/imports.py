"""Bulk contact import (POST /import/bulk_import, GET /import/info) for a full contact sync.

A completed batch names its successes by contact id and its failures by email; an address on
the account's exclusion list is skipped, named neither way. When a batch accounts for fewer
people than it was sent, the successes' emails are read (GET /contacts?ids[]=, a hundred a
request) and the people left over are reported refused as skipped, one by one, so that the
sync counts them failed instead of losing the whole batch as unknown.

Profiles only: consent goes by `plan_consent` afterwards (an import cannot subscribe a contact
to a list it unsubscribed from). A campaign's import also subscribes each contact to the
campaign's list (`subscribe`), which is how the campaign reaches them. An import is an upsert
on email, so importing a chunk again after a lost answer changes nothing but the contacts'
update times. Automations are not run.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.providers.activecampaign import bodies
from dispatcher.providers.activecampaign.fields import FieldIds
from dispatcher.providers.activecampaign.http import ApiHttp, as_id, encode, records
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
SKIPPED = "skipped by ActiveCampaign's import (on the account's exclusion list, for one)"
REMEMBERED = 1_000
IDS_PER_LOOKUP = 100  # contacts a page of GET /contacts holds at most


class Imports:
    def __init__(self, api: ApiHttp, fields: FieldIds) -> None:
        self._api = api
        self._fields = fields
        self._sent: Recent[str, tuple[str, ...]] = Recent(REMEMBERED)  # batch -> emails

    async def start(self, contacts: Sequence[ImportContact], list_id: str | None = None) -> str:
        """The batch id; with `list_id`, each contact is subscribed to that list (a
        campaign's; one who unsubscribed from it stays so). More contacts than
        `limits.import_profiles` allow is a caller bug (ValueError); a body over its bytes
        is refused before it is sent, naming no contact (PermanentProviderError
        `too_large`: the caller splits the batch)."""
        limits = LIMITS.import_profiles
        assert limits is not None
        if not contacts or len(contacts) > limits.max_items:
            raise ValueError(f"{len(contacts)} contacts in one import; 1 to {limits.max_items}")
        profiles = [contact.profile for contact in contacts]
        ids = await self._fields.ids(
            bodies.import_titles(profiles), START_IMPORT, bodies.import_json_titles(profiles)
        )
        body = {
            "contacts": [bodies.import_contact(profile, ids, list_id) for profile in profiles],
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
        self._sent.put(batch, tuple(profile.email for profile in profiles))
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
        listed = _listed(reply.get("success"))
        succeeded = [i for i in map(as_id, listed) if i]
        failures = [ImportFailure(email, REFUSED) for email in _emails(reply.get("failure"))]
        done = str(reply.get("status", "")).lower() == COMPLETED
        sent = self._sent.get(batch) or ()
        # Successes that are not ids (a changed answer) cannot be read back: then the
        # shortfall stays unknown, and the sync loses the batch rather than guess.
        readable = len(succeeded) == len(listed)
        if done and readable and len(succeeded) + len(failures) < len(sent):
            failures += await self._skipped(sent, succeeded, failures)
        if done:
            self._sent.forget(batch)
        return ImportStatus(
            job_id=batch,
            done=done,
            total=max(len(sent), len(listed) + len(failures)),
            completed=len(listed),
            failed=len(failures),
            failures=tuple(failures),
        )

    async def _skipped(
        self, sent: Sequence[str], succeeded: Sequence[str], failures: Sequence[ImportFailure]
    ) -> list[ImportFailure]:
        """The people of a completed batch it names neither way."""
        accounted = {_key(f.email) for f in failures}
        for start in range(0, len(succeeded), IDS_PER_LOOKUP):
            ids = list(succeeded[start : start + IDS_PER_LOOKUP])
            reply = await self._api.call(
                "GET",
                "/contacts",
                operation=IMPORT_STATUS,
                params={"ids[]": ids, "limit": IDS_PER_LOOKUP},
            )
            accounted |= {_key(str(c.get("email", ""))) for c in records(reply, "contacts")}
        return [ImportFailure(email, SKIPPED) for email in sent if _key(email) not in accounted]


def _key(email: str) -> str:
    return email.strip().lower()


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
